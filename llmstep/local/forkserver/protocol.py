"""What a fork server and its clients say to each other over its Unix socket (see
:mod:`llmstep.local.forkserver`): one JSON request per connection, answers one line each."""

from __future__ import annotations

import json
import select
import socket
import time
from typing import Any

LISTENING = "llmstep-forkserver listening"

FRESH, STALE = "fresh", "stale"


def _connect(path: str) -> socket.socket | None:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(path)
    except OSError:  # no server there, or a dead one's socket
        conn.close()
        return None
    return conn


def _send(conn: socket.socket, request: dict[str, Any]) -> socket.socket | None:
    try:
        conn.sendall((json.dumps(request) + "\n").encode())
    except OSError:
        conn.close()
        return None
    return conn


class Step:
    """A forked step process: its pid, and the connection that brings its exit code."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.pid = 0
        self._buf = b""

    def read_line(self, timeout: float | None) -> str | None:
        """One line from the server, or None if none arrives within ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([self.conn], [], [], left)
            if not ready:
                return None
            chunk = self.conn.recv(256)
            if not chunk:
                return ""  # the waiter is gone
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode()

    def wait(self, timeout: float | None) -> int | None:
        """The exit code, or None while the step is still running after ``timeout`` seconds."""
        line = self.read_line(timeout)
        if line is None:
            return None
        self.conn.close()
        return int(line) if line.strip() else -1
