"""The client side of a fork server: find the live server for a run's payload classes, or start
one, and ask it for step processes."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator

from llmstep.local.forkserver.paths import lessons_file, runtime_dir
from llmstep.local.forkserver.protocol import FRESH, STALE, Step, _connect, _send


class ForkServer:
    """Client side: finds the live server for these payload classes, or starts one, and asks it
    for step processes.

    With ``idle`` > 0 the server outlives this process: its socket is in :func:`runtime_dir`,
    named after the Python, llmstep's version, the payload classes and the lessons file, so the
    next run of any process finds it warm. It ends after ``idle`` seconds without work, and it
    answers "stale" (then lets go of the socket, and this client starts a new server) when a
    module file it imported has changed on disk since. With ``idle`` 0 the server lives in a
    private temporary directory and ends with this process.
    """

    def __init__(
        self,
        preload: list[str],
        key: str = "",
        idle: float = 0.0,
        *,
        runtime: str | None = None,
        cache: str | None = None,
    ) -> None:
        import hashlib

        from llmstep import __version__

        self._preload, self._lessons, self._idle = preload, lessons_file(key, cache), idle
        home = runtime_dir(runtime) if idle > 0 else None
        self.persistent = home is not None
        self._dir = None if home else tempfile.mkdtemp(prefix="llmstep-fork-")
        self._home = home or self._dir or ""
        if home:
            ident = json.dumps([sys.executable, sys.prefix, sys.version, __version__, key, self._lessons])
            self.path = os.path.join(home, f"fork-{hashlib.sha256(ident.encode()).hexdigest()[:16]}.sock")
        else:
            self.path = os.path.join(self._home, "sock")
        self.proc: subprocess.Popen[str] | None = None  # a server this client started that ends with it
        self._started: subprocess.Popen[str] | None = None  # a server this client started, until it listens
        self._ready: bool | None = None  # known once the first step needs the server
        self._lock = threading.Lock()
        self._asked = self._ask()

    def _ask(self) -> socket.socket | None:
        """Ask the listening server whether it is fresh, or start one (asked once it listens, when
        the first step needs it, so its imports overlap the caller's own work). Two processes that
        start a server at once race to bind the socket; the loser ends and both use the winner."""
        with _locked(os.path.join(self._home, "lock")) if self.persistent else contextlib.nullcontext():
            conn = _connect(self.path)
            if conn is None:
                self._start()
                return None
        return _send(conn, {"check": True})

    def _start(self) -> None:
        try:
            os.unlink(self.path)  # a socket left by a server that was killed
        except FileNotFoundError:
            pass
        if self.persistent:
            from llmstep.local.forkserver import registry

            registry.make_room(self._home)  # under the lock: at most MAX_SERVERS of this user's at once
        env = {"PATH": os.defpath, "LANG": "C.UTF-8", "PYTHONUNBUFFERED": "1", "HOME": self._home}
        self._started = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llmstep.local.forkserver",
                self.path,
                ",".join(self._preload),
                self._lessons,
                str(self._idle),
                str(os.getpid()),
            ],
            env=env,
            cwd="/",
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            text=True,
        )
        if not self.persistent:
            self.proc = self._started

    def _listened(self) -> None:
        """Wait until the server this client started has bound its socket (or lost the race)."""
        started, self._started = self._started, None
        if started is None:
            return
        if started.stdout:
            started.stdout.readline()
            started.stdout.close()
        if self.persistent:
            started.wait()  # a persistent server leaves its first process at once: it is nobody's child

    def wait_ready(self) -> bool:
        """Whether a fresh server is there; the caller falls back to cold starts when it is not."""
        with self._lock:
            for _ in range(2):
                if self._ready is not None:
                    break
                if self._asked is None and self._started is not None:
                    self._listened()
                    conn = _connect(self.path)
                    self._asked = _send(conn, {"check": True}) if conn else None
                conn, self._asked = self._asked, None
                answer = None
                if conn is not None:
                    try:
                        answer = Step(conn).read_line(timeout=120)
                    except OSError:
                        answer = ""
                    conn.close()
                if answer in (STALE, ""):  # it has let go of the socket (or just ended): start a new one
                    self._asked = self._ask()
                else:
                    self._ready = answer == FRESH
            self._ready = bool(self._ready)
            return self._ready

    def usable(self) -> bool:
        """Whether later runs in this process may keep using this client: a persistent server is
        asked again by each run (it may have idled out or gone stale since)."""
        return not self.persistent and self.proc is not None and self.proc.poll() is None

    def spawn(self, argv: list[str], env: dict[str, str], cwd: str, log: str) -> Step:
        """Start a step process; the returned handle knows its pid and brings its exit code."""
        if not self.wait_ready():
            raise OSError("the llmstep fork server did not start")
        conn = _connect(self.path)
        if conn is None or not _send(conn, {"argv": argv, "env": env, "cwd": cwd, "log": log}):
            raise OSError("the llmstep fork server has gone")
        step = Step(conn)
        pid = step.read_line(timeout=30)
        if not pid:
            conn.close()
            raise OSError("the llmstep fork server did not start the step")
        step.pid = int(pid)
        return step

    def close(self) -> None:
        """This process is done with the server: one that ends with its process is stopped; a
        persistent one stays for other runs until it idles out."""
        if self._asked is not None:
            self._asked.close()
            self._asked = None
        self._listened()
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        if self._dir:
            shutil.rmtree(self._dir, ignore_errors=True)

    def stop(self) -> None:
        """Ask the server to end once its running steps have, whoever started it."""
        self.close()
        conn = _connect(self.path)
        if conn is not None and _send(conn, {"stop": True}):
            try:
                Step(conn).read_line(timeout=10)
            except OSError:
                pass
            conn.close()


@contextlib.contextmanager
def _locked(path: str) -> Iterator[None]:
    """One process at a time decides whether to start a persistent server (one lock for them all:
    it is held only to connect or to start one)."""
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def preload_for(payload_classes: list[list[str]]) -> list[str]:
    """Modules worth importing before forking, from the class ids the run's payloads use."""
    modules = [
        "llmstep.executor.main",
        "llmstep.executor.step",
        "llmstep.serde",
        "langchain_core.load",
        "langchain_core.prompts",
        "langchain_core.messages",
        "langchain_core.output_parsers",
        "langchain_core.runnables",
        "langchain_core.callbacks",
        "langchain_core.documents",
        "langchain_core.prompt_values",
    ]
    flat = {part for class_id in payload_classes for part in class_id}
    if "openai" in flat or any(p.startswith("langchain_openai") for p in flat):
        modules += ["langchain_openai", "langchain_openai.chat_models"]
    if "offline" in flat:
        modules.append("llmstep.offline")
    return modules


_SHARED: dict[str, ForkServer] = {}

_SHARED_LOCK = threading.Lock()


def shared_server(
    payload_classes: list[list[str]], idle: float, *, runtime: str | None = None, cache: str | None = None
) -> ForkServer:
    """The fork server for runs whose payloads use these classes. The first run starts it (in the
    background) and later runs find it warm: in any process of this user while it has work at
    least every ``idle`` seconds, or, with an idle time of 0, in this process until it exits.
    ``runtime`` is where persistent servers' sockets go (:func:`runtime_dir`), ``cache`` where
    their lessons are kept."""
    import atexit

    key = ".".join(sorted({".".join(c) for c in payload_classes}))
    with _SHARED_LOCK:
        server = _SHARED.get(key)
        if server is None or not server.usable():
            if not _SHARED:
                atexit.register(_close_shared)
            if server is not None:
                server.close()
            server = _SHARED[key] = ForkServer(
                preload_for(payload_classes), key=key, idle=idle, runtime=runtime, cache=cache
            )
        return server


def _close_shared(stop: bool = False) -> None:
    """Let go of this process's servers (at exit); ``stop`` also ends persistent ones."""
    with _SHARED_LOCK:
        for server in _SHARED.values():
            server.stop() if stop else server.close()
        _SHARED.clear()
