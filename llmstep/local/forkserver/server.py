"""The server loop: import once, fork one process per step, report exit codes, learn."""

from __future__ import annotations

import gc
import importlib
import json
import os
import select
import signal
import socket
import sys
import time
from typing import Any

from llmstep.local.forkserver import tls
from llmstep.local.forkserver.child import _become_step
from llmstep.local.forkserver.lessons import _keep_lessons, _learn, _library_paths, _read_lessons
from llmstep.local.forkserver.protocol import FRESH, LISTENING, STALE
from llmstep.local.forkserver.tls import _prepare_tls


def _serve(path: str, preload: list[str], lessons: str = "", idle: float = 0.0, parent: int = 0) -> None:
    """Serve steps on ``path``. With ``idle`` 0 the server ends with ``parent``, the client that
    started it (its pid, given by it: read here, after a slow start, it could already be init's)."""
    parent = parent or os.getppid()

    def orphaned() -> bool:
        return idle <= 0 and os.getppid() != parent

    if orphaned():
        return  # the client died before this process even began
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)  # first: clients connect at once, and wait for their answer until the imports are done
    server.listen(64)
    info = os.stat(path)
    bound = (info.st_ino, info.st_ctime_ns)  # this socket file, not a later one at the same path
    if idle > 0 and os.fork():
        os._exit(0)  # persistent: the starting process reaps this one at once; the server is nobody's child
    from llmstep.local.forkserver import registry

    registry.describe(path, preload, idle)

    def stop(*_: Any) -> None:  # stopped: no stale socket left
        _let_go(path, bound)
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    print(LISTENING, flush=True)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 1)  # nothing more goes to the process that started it
    for name in preload + _read_lessons(lessons):
        if orphaned():  # its client died while it was starting: end now, not never
            _let_go(path, bound)
            os._exit(0)
        try:
            importlib.import_module(name)
            if name == "langchain_core.prompts":
                from langchain_core.prompts import ChatPromptTemplate  # noqa: F401 - resolve the lazy names
        except Exception:  # a missing optional package only costs speed
            continue
    from llmstep.executor import main as executor

    _warm(executor)
    # Objects imported so far move to a permanent generation the collector never walks, so forked
    # children do not touch (and copy) the whole preloaded heap at their first collection.
    gc.collect()
    gc.freeze()
    files = _module_files()  # what "fresh" means: every imported module file as it was when imported
    libraries = _library_paths()  # once here, not in every step
    learned, teach = os.pipe()  # steps write the modules they imported; the server imports them
    os.set_blocking(learned, False)
    reaped, wake = os.pipe()  # SIGCHLD wakes the loop, which reports exit codes
    os.set_blocking(reaped, False)
    os.set_blocking(wake, False)
    signal.set_wakeup_fd(wake, warn_on_full_buffer=False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    running: dict[int, socket.socket] = {}  # step pid -> the connection that waits for its exit code
    last, listening = time.monotonic(), True
    while True:
        try:
            watched: list[socket.socket | int] = [server, learned, reaped] if listening else [learned, reaped]
            ready, _, _ = select.select(watched, [], [], 1.0)
        except InterruptedError:
            continue
        if not running and (not listening or (idle > 0 and time.monotonic() - last > idle) or orphaned()):
            if listening:  # a stale or stopped server let go of its socket already: a newer one may have it now
                _let_go(path, bound)
            os._exit(0)  # stale or stopped, idle too long, or the process it served is gone
        if learned in ready:  # first: a step writes its lesson before it exits
            news = _learn(learned)
            if news:
                _keep_lessons(lessons, news)
                files = _module_files()
        if reaped in ready:
            _drain(reaped)
            _report_exits(running)
            last = time.monotonic()
        if listening and server in ready:
            conn, _ = server.accept()
            last = time.monotonic()
            registry.used(path)
            request = json.loads(conn.makefile("r").readline() or "{}")
            if "argv" not in request:  # {"check": true} from a new client, or {"stop": true}
                fresh = bool(request.get("check")) and _unchanged(files)
                if not fresh:  # let the next server have the socket (before answering); end after the running steps
                    _let_go(path, bound)
                    server.close()
                    listening = False
                try:
                    conn.sendall(f"{FRESH if fresh else STALE}\n".encode())
                except OSError:
                    pass
                conn.close()
                continue
            tls.prepare_for(request.get("env") or {})
            pid = os.fork()
            if pid == 0:  # the step: nothing of the server's stays open in it
                signal.set_wakeup_fd(-1)
                for sock in ([server] if listening else []) + list(running.values()):
                    sock.close()
                for fd in (learned, reaped, wake, null):
                    os.close(fd)
                conn.close()
                _become_step(request, executor.process_main, teach, libraries)
            running[pid] = conn
            try:
                conn.sendall(f"{pid}\n".encode())
            except OSError:
                pass  # the client left; the step still runs to its end and is reaped


def _warm(executor: Any) -> None:
    """Work every step would repeat after the fork, done once before it: ``llmstep exec``'s
    parser, and the machine facts HTTP clients send with each request (``platform.platform()``
    runs ``uname -p`` in a subprocess the first time a process asks)."""
    import ctypes  # noqa: F401 - each step makes itself its descendants' subreaper with it
    import platform

    from llmstep.executor import reaper  # noqa: F401

    executor.parser()
    platform.platform()
    _prepare_tls()


def _module_files() -> dict[str, int]:
    """The modification time of every module file imported here."""
    files = {}
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if isinstance(file, str):
            try:
                files[file] = os.stat(file).st_mtime_ns
            except OSError:
                continue
    return files


def _unchanged(files: dict[str, int]) -> bool:
    """Whether no imported module file has changed since (an upgraded library, an edited llmstep)."""
    for file, mtime in files.items():
        try:
            if os.stat(file).st_mtime_ns != mtime:
                return False
        except OSError:
            return False
    return True


def _let_go(path: str, bound: tuple[int, int]) -> None:
    """Remove this server's socket file (and its description), unless a newer server has bound
    the name since."""
    try:
        info = os.stat(path)
        if (info.st_ino, info.st_ctime_ns) == bound:
            os.unlink(path)
            from llmstep.local.forkserver import registry

            registry.forget(path)
    except OSError:
        pass


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
