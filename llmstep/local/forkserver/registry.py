"""The user's persistent fork servers (see :mod:`llmstep.local.forkserver`): which are alive, how
many may be, and stopping them (``llmstep fork-servers [--stop]``).

Each server describes itself in ``fork-<id>.json`` beside its socket ``fork-<id>.sock`` (its pid,
when it started, its idle time, what it preloaded); the file's modification time is when it was
last used. A client that starts a server first removes sockets no server listens on any more and,
when :data:`MAX_SERVERS` are alive, stops the least recently used (each holds LangChain's imports,
70 MiB or more: one per set of payload classes added up to half a GiB).
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import time
from dataclasses import dataclass

MAX_SERVERS = 3


@dataclass(frozen=True)
class ServerInfo:
    """A live fork server, as its socket and its description say (see :func:`list_servers`)."""

    socket: str
    pid: int | None  # None: a server that does not describe itself (an older llmstep)
    started: float | None
    idle: float | None
    used: float
    preload: tuple[str, ...]


def describe(socket_path: str, preload: list[str], idle: float) -> None:
    """Called by a server once it listens (after its fork: the pid is the server's own)."""
    info = {"pid": os.getpid(), "started": time.time(), "idle": idle, "preload": preload}
    with contextlib.suppress(OSError):
        tmp = f"{_described(socket_path)}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(info, f)
        os.replace(tmp, _described(socket_path))


def used(socket_path: str) -> None:
    with contextlib.suppress(OSError):
        os.utime(_described(socket_path))


def forget(socket_path: str) -> None:
    """A server that lets go of its socket removes its description (if it is its own)."""
    with contextlib.suppress(OSError, ValueError):
        with open(_described(socket_path), encoding="utf-8") as f:
            if json.load(f).get("pid") == os.getpid():
                os.unlink(_described(socket_path))


def list_servers(home: str | None) -> list[ServerInfo]:
    """The live servers in ``home`` (the runtime directory), least recently used first; sockets
    and descriptions no server stands behind any more are removed on the way."""
    if not home:
        return []
    found = []
    for sock in sorted(glob.glob(os.path.join(home, "fork-*.sock"))):
        info = _read(sock)
        pid = info.get("pid") if isinstance(info.get("pid"), int) else None
        if pid is None or not _is_server(pid):
            pid = None
            if not _answers(sock):
                for stale in (sock, _described(sock)):
                    with contextlib.suppress(OSError):
                        os.unlink(stale)
                continue
        try:
            last = os.stat(_described(sock)).st_mtime
        except OSError:
            last = 0.0
        found.append(
            ServerInfo(sock, pid, info.get("started"), info.get("idle"), last, tuple(info.get("preload") or ()))
        )
    for orphan in glob.glob(os.path.join(home, "fork-*.json")):
        if not os.path.exists(orphan[: -len(".json")] + ".sock"):
            with contextlib.suppress(OSError):
                os.unlink(orphan)
    return sorted(found, key=lambda s: s.used)


def stop(server: ServerInfo) -> None:
    """Ask a server to end: it lets go of its socket at once and ends after its running steps."""
    from llmstep.local.forkserver.protocol import Step, _connect, _send

    conn = _connect(server.socket)
    if conn is not None and _send(conn, {"stop": True}):
        with contextlib.suppress(OSError):
            Step(conn).read_line(timeout=10)
        conn.close()


def make_room(home: str, limit: int = MAX_SERVERS) -> None:
    """Before a new server starts: at most ``limit - 1`` others stay alive."""
    servers = list_servers(home)
    for server in servers[: max(0, len(servers) - (limit - 1))]:
        stop(server)


def _described(socket_path: str) -> str:
    return socket_path[: -len(".sock")] + ".json" if socket_path.endswith(".sock") else socket_path + ".json"


def _read(sock: str) -> dict:
    try:
        with open(_described(sock), encoding="utf-8") as f:
            info = json.load(f)
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def _is_server(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"llmstep.local.forkserver" in f.read()
    except OSError:
        return False


def _answers(sock: str) -> bool:
    """Whether a server listens on ``sock`` (asked whether it is fresh, which a fresh one stays)."""
    from llmstep.local.forkserver.protocol import Step, _connect, _send

    conn = _connect(sock)
    if conn is None:
        return False
    try:
        return _send(conn, {"check": True}) is not None and bool(Step(conn).read_line(timeout=30))
    except OSError:
        return False
    finally:
        conn.close()
