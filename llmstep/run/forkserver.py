"""A fork server for local step processes: pay LangChain's import cost once per run.

A cold ``llmstep exec`` spends most of its time importing LangChain. The server is started
once per local run with a minimal environment (never the caller's), imports what the run's
payloads need, and then forks one process per step. Each step process is what the pod's process
would be: its own session, stdin from /dev/null, stdout and stderr to the step's log, its working
directory, *only* the step's environment (the inherited one is cleared), and it runs the very
same command, ``llmstep exec`` with the container's arguments, through ``llmstep.cli.main``.

Protocol (one Unix socket connection per step): the client sends one JSON line
``{"argv": [...], "env": {...}, "cwd": ..., "log": ...}``; the server answers the step's pid, then
its exit code, one line each. The server reaps its steps when SIGCHLD wakes its loop, so it
never starts a thread (forking a threaded process is unsafe) and forks once per step.

The server learns: a step that finishes tells it (over a pipe) which modules it had to import
itself, such as an API client's lazily loaded resources, and the server imports them too, so later
steps of the same kind start warm. Only module names cross; nothing of the step's environment.
The names are kept in the user's cache directory (one file per Python and llmstep version), so the
next run's server imports them before its first step.
"""

from __future__ import annotations

import gc
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

    def __init__(self, preload: list[str], key: str = "") -> None:
        self._dir = tempfile.mkdtemp(prefix="llmstep-fork-")
        self.path = os.path.join(self._dir, "sock")
        env = {"PATH": os.defpath, "LANG": "C.UTF-8", "PYTHONUNBUFFERED": "1", "HOME": self._dir}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "llmstep.run.forkserver", self.path, ",".join(preload), lessons_file(key)],
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


_SHARED: dict[str, ForkServer] = {}
_SHARED_LOCK = threading.Lock()


def shared_server(payload_classes: list[list[str]]) -> ForkServer:
    """The fork server for runs whose payloads use these classes, shared by the runs of this
    process: the first run starts it (in the background), later runs find it warm. It stops when
    this process exits, or by itself when this process is gone."""
    import atexit

    key = ".".join(sorted({".".join(c) for c in payload_classes}))
    with _SHARED_LOCK:
        server = _SHARED.get(key)
        if server is None or server.proc.poll() is not None:
            if not _SHARED:
                atexit.register(_close_shared)
            server = _SHARED[key] = ForkServer(preload_for(payload_classes), key=key)
        return server


def _close_shared() -> None:
    with _SHARED_LOCK:
        for server in _SHARED.values():
            server.close()
        _SHARED.clear()


def lessons_file(key: str) -> str:
    """Where learned module names persist for runs whose payloads use the same classes (``key``):
    ``$XDG_CACHE_HOME/llmstep`` (default ``~/.cache``); empty (nothing kept) without a usable home."""
    import hashlib

    from llmstep import __version__

    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    if not os.path.isabs(base):
        return ""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return os.path.join(base, "llmstep", f"forkserver-imports-py{version}-{__version__}-{digest}.txt")


# ---------------------------------------------------------------- server side


def _read_lessons(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as f:  # noqa: PTH123
            return [line.strip() for line in f if line.strip()]
    except OSError:
        return []


def _keep_lessons(path: str, names: set[str]) -> None:
    """Add ``names`` to the lessons file (written whole, atomically; a failure only costs speed)."""
    if not path or not names:
        return
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:  # noqa: PTH123
            f.write("\n".join(sorted(names | set(_read_lessons(path)))) + "\n")
        os.replace(tmp, path)
    except OSError:
        pass


def _serve(path: str, preload: list[str], lessons: str = "") -> None:
    for name in preload + _read_lessons(lessons):
        try:
            importlib.import_module(name)
            if name == "langchain_core.prompts":
                from langchain_core.prompts import ChatPromptTemplate  # noqa: F401 - resolve the lazy names
        except Exception:  # noqa: BLE001 - a missing optional package only costs speed
            continue
    from llmstep import cli

    # Objects imported so far move to a permanent generation the collector never walks, so forked
    # children do not touch (and copy) the whole preloaded heap at their first collection.
    gc.collect()
    gc.freeze()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(64)
    libraries = _library_paths()  # once here, not in every step
    learned, teach = os.pipe()  # steps write the modules they imported; the server imports them
    os.set_blocking(learned, False)
    reaped, wake = os.pipe()  # SIGCHLD wakes the loop, which reports exit codes
    os.set_blocking(reaped, False)
    os.set_blocking(wake, False)
    signal.set_wakeup_fd(wake, warn_on_full_buffer=False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    running: dict[int, socket.socket] = {}  # step pid -> the connection that waits for its exit code
    parent = os.getppid()
    print(READY, flush=True)
    while True:
        try:
            ready, _, _ = select.select([server, learned, reaped], [], [], 1.0)
        except InterruptedError:
            continue
        if os.getppid() != parent and not running:
            os._exit(0)  # the process that started this server is gone (killed without cleanup)
        if learned in ready:  # first: a step writes its lesson before it exits
            _keep_lessons(lessons, _learn(learned))
        if reaped in ready:
            _drain(reaped)
            _report_exits(running)
        if server in ready:
            conn, _ = server.accept()
            request = json.loads(conn.makefile("r").readline() or "{}")
            pid = os.fork()
            if pid == 0:  # the step: nothing of the server's stays open in it
                signal.set_wakeup_fd(-1)
                for fd in (server, *running.values()):
                    fd.close()
                for fd in (learned, reaped, wake):
                    os.close(fd)
                conn.close()
                _become_step(request, cli.main, teach, libraries)
            running[pid] = conn
            try:
                conn.sendall(f"{pid}\n".encode())
            except OSError:
                pass  # the client left; the step still runs to its end and is reaped


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass


def _report_exits(running: dict[int, socket.socket]) -> None:
    """Reap finished steps and send each one's exit code to the client waiting for it."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = running.pop(pid, None)
        if conn is not None:
            try:
                conn.sendall(f"{os.waitstatus_to_exitcode(status)}\n".encode())
            except OSError:
                pass
            conn.close()


def _learn(fd: int) -> set[str]:
    """Import what finished steps had to import themselves, then freeze it with the rest;
    return the names that imported."""
    data = b""
    try:
        while chunk := os.read(fd, 65536):
            data += chunk
    except BlockingIOError:
        pass
    names = {n for line in data.decode(errors="ignore").splitlines() for n in line.split(",") if n}
    imported = set()
    for name in sorted(names - set(sys.modules)):
        try:
            importlib.import_module(name)
            imported.add(name)
        except Exception:  # noqa: BLE001 - a module that will not import here only costs speed
            continue
    if imported:  # a full collection of the server's heap is not free: only when there is news
        gc.collect()
        gc.freeze()
    return imported


def _library_paths() -> tuple[str, ...]:
    """Where installed libraries live. Only their modules are learned: a project's own modules
    are imported afresh by every step, so an edit between runs is never hidden by a server that
    imported the old version."""
    import sysconfig

    return tuple({p for k, p in sysconfig.get_paths().items() if k in ("stdlib", "platstdlib", "purelib", "platlib")})


def _teach(fd: int, before: set[str], libraries: tuple[str, ...]) -> None:
    """Tell the server which library modules this step imported (lines under PIPE_BUF, so
    each write is atomic; a full pipe drops the lesson, which only costs speed)."""
    names = sorted(n for n in set(sys.modules) - before
                   if str(getattr(getattr(sys.modules.get(n), "__spec__", None), "origin", None) or "").startswith(libraries))  # fmt: skip
    line = ""
    try:
        os.set_blocking(fd, False)
        for name in names:
            if len(line) + len(name) + 2 > 4000:
                os.write(fd, (line + "\n").encode())
                line = ""
            line += name + ","
        if line:
            os.write(fd, (line + "\n").encode())
    except OSError:
        pass


def _become_step(request: dict[str, Any], main: Any, teach: int, libraries: tuple[str, ...]) -> None:
    code = 70
    before = set(sys.modules)
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
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
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
            _teach(teach, before, libraries)
        finally:
            os._exit(code)


if __name__ == "__main__":
    _serve(sys.argv[1], [m for m in sys.argv[2].split(",") if m], sys.argv[3] if len(sys.argv) > 3 else "")

