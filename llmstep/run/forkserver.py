"""A fork server for local step processes: pay LangChain's import cost once per run.

A cold ``llmstep exec`` spends most of its time importing LangChain. The server is started
once per local run with a minimal environment (never the caller's), imports what the run's
payloads need, and then forks one process per step. Each step process is what the pod's process
would be: its own session, stdin from /dev/null, stdout and stderr to the step's log, its working
directory, *only* the step's environment (the inherited one is cleared), and it runs the very
same command, ``llmstep exec`` with the container's arguments, through ``llmstep.cli.main``.

Protocol (one Unix socket connection per step): the client sends one JSON line
``{"argv": [...], "env": {...}, "cwd": ..., "log": ...}``; the server answers the step's pid, then
its exit code, one line each. A forked "waiter" does the waiting, so the server itself never
starts a thread (forking a threaded process is unsafe).
"""

from __future__ import annotations

import importlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

READY = "llmstep-forkserver ready"


class ForkServer:
    """Client side: starts the server process and asks it for step processes."""

    def __init__(self, preload: list[str]) -> None:
        self._dir = tempfile.mkdtemp(prefix="llmstep-fork-")
        self.path = os.path.join(self._dir, "sock")
        env = {"PATH": os.defpath, "LANG": "C.UTF-8", "PYTHONUNBUFFERED": "1", "HOME": self._dir}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "llmstep.run.forkserver", self.path, ",".join(preload)],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            start_new_session=True, text=True,
        )  # fmt: skip
        self._ready: bool | None = None  # known once the first step needs the server
        self._lock = threading.Lock()

    def wait_ready(self) -> bool:
        """Whether the server came up; the caller falls back to cold starts when it did not.
        Starting returns at once, so the imports overlap with the caller's own work."""
        with self._lock:
            if self._ready is None:
                line = self.proc.stdout.readline() if self.proc.stdout else ""
                self._ready = line.strip() == READY
            return self._ready

    def spawn(self, argv: list[str], env: dict[str, str], cwd: str, log: str) -> Step:
        """Start a step process; the returned handle knows its pid and brings its exit code."""
        if not self.wait_ready():
            raise OSError("the llmstep fork server did not start")
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(self.path)
        conn.sendall((json.dumps({"argv": argv, "env": env, "cwd": cwd, "log": log}) + "\n").encode())
        step = Step(conn)
        pid = step.read_line(timeout=30)
        if not pid:
            conn.close()
            raise OSError("the llmstep fork server did not start the step")
        step.pid = int(pid)
        return step

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        if self.proc.stdout:
            self.proc.stdout.close()
        shutil.rmtree(self._dir, ignore_errors=True)


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


def preload_for(payload_classes: list[list[str]]) -> list[str]:
    """Modules worth importing before forking, from the class ids the run's payloads use."""
    modules = [
        "llmstep.cli", "llmstep.executor", "llmstep.serde", "langchain_core.load", "langchain_core.prompts",
        "langchain_core.messages", "langchain_core.output_parsers", "langchain_core.runnables",
        "langchain_core.callbacks", "langchain_core.documents", "langchain_core.prompt_values",
    ]  # fmt: skip
    flat = {part for class_id in payload_classes for part in class_id}
    if "openai" in flat or any(p.startswith("langchain_openai") for p in flat):
        modules += ["langchain_openai", "langchain_openai.chat_models"]
    if "offline" in flat:
        modules.append("llmstep.offline")
    return modules


# ---------------------------------------------------------------- server side


def _serve(path: str, preload: list[str]) -> None:
    for name in preload:
        try:
            importlib.import_module(name)
            if name == "langchain_core.prompts":
                from langchain_core.prompts import ChatPromptTemplate  # noqa: F401 - resolve the lazy names
        except Exception:  # noqa: BLE001 - a missing optional package only costs speed
            continue
    from llmstep import cli

    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(64)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    print(READY, flush=True)
    while True:
        conn, _ = server.accept()
        _reap()
        request = json.loads(conn.makefile("r").readline() or "{}")
        if os.fork() == 0:  # the waiter
            server.close()
            _wait_for_step(conn, request, cli.main)
        conn.close()


def _reap() -> None:
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass


def _wait_for_step(conn: socket.socket, request: dict[str, Any], main: Any) -> None:
    pid = os.fork()
    if pid == 0:
        _become_step(request, main)
    conn.sendall(f"{pid}\n".encode())
    _, status = os.waitpid(pid, 0)
    try:
        conn.sendall(f"{os.waitstatus_to_exitcode(status)}\n".encode())
    finally:
        os._exit(0)


def _become_step(request: dict[str, Any], main: Any) -> None:
    code = 70
    try:
        os.setsid()
        null = os.open(os.devnull, os.O_RDONLY)
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        import random

        random.seed()  # forked children must not share a random sequence
        code = main(request["argv"])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - report, then exit like a crashed process
        import traceback

        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


if __name__ == "__main__":
    _serve(sys.argv[1], [m for m in sys.argv[2].split(",") if m])

