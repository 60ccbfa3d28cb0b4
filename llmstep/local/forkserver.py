"""A fork server for local step processes: pay LangChain's import cost once, not once per step.

A cold ``llmstep exec`` spends most of its time importing LangChain. The server is started by
the first local run that needs it, with a minimal environment (never the caller's), imports what
the runs' payloads need, and then forks one process per step. It outlives that run (see
:class:`ForkServer`): later runs of any process of the user find it warm, until it has been idle
for ``LLMSTEP_FORKSERVER_IDLE`` seconds or a module file it imported changes. Each step process is what the pod's process
would be: its own session, stdin from /dev/null, stdout and stderr to the step's log, its working
directory, *only* the step's environment (the inherited one is cleared), and it runs the very
same command, ``llmstep exec`` with the container's arguments, through its own entry point
(:func:`llmstep.executor.main.main`; the server never builds the rest of the command line).

Protocol (one Unix socket connection per request): a new client first sends ``{"check": true}``
and gets ``fresh`` or ``stale``; for a step it sends ``{"argv": [...], "env": {...}, "cwd": ...,
"log": ...}`` and gets the step's pid, then its exit code, one line each; ``{"stop": true}``
ends the server after its running steps. The server reaps its steps when SIGCHLD wakes its loop, so it
never starts a thread (forking a threaded process is unsafe) and forks once per step.

The server learns: a step that finishes tells it (over a pipe) which modules it had to import
itself, such as an API client's lazily loaded resources, and the server imports them too, so later
steps of the same kind start warm. Only module names cross; nothing of the step's environment.
The names are kept in the user's cache directory (one file per Python and llmstep version), so the
next run's server imports them before its first step.

Work every step would repeat after the fork is done once before it: ``llmstep exec``'s parser, the
machine facts HTTP clients send, and the TLS contexts of openai's HTTP clients (each loads the CA
bundle; see :func:`_prepare_tls`).
"""

from __future__ import annotations

import contextlib
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
from collections.abc import Iterator
from typing import Any

LISTENING = "llmstep-forkserver listening"
FRESH, STALE = "fresh", "stale"
IDLE_ENV = "LLMSTEP_FORKSERVER_IDLE"
DEFAULT_IDLE = 300.0


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

    def __init__(self, preload: list[str], key: str = "", idle: float = 0.0) -> None:
        import hashlib

        from llmstep import __version__

        self._preload, self._lessons, self._idle = preload, lessons_file(key), idle
        home = runtime_dir() if idle > 0 else None
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
            from llmstep.local import forkservers

            forkservers.make_room(self._home)  # under the lock: at most MAX_SERVERS of this user's at once
        env = {"PATH": os.defpath, "LANG": "C.UTF-8", "PYTHONUNBUFFERED": "1", "HOME": self._home}
        self._started = subprocess.Popen(
            [sys.executable, "-m", "llmstep.local.forkserver", self.path, ",".join(self._preload), self._lessons,
             str(self._idle), str(os.getpid())],
            env=env, cwd="/", stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            start_new_session=True, text=True,
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


def idle_seconds() -> float:
    """How long a fork server waits for work before it ends (``LLMSTEP_FORKSERVER_IDLE``, default
    300): while it lives, runs in any process of this user fork their steps from it warm. 0: each
    process starts its own server, which ends with it."""
    raw = os.environ.get(IDLE_ENV, "").strip()
    if not raw:
        return DEFAULT_IDLE
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        from llmstep.errors import WorkflowError

        raise WorkflowError(f"{IDLE_ENV}={raw!r} is not a number of seconds: use for example 300, or 0 for a "
                            "fork server that ends with the process that started it")
    return value


def runtime_dir() -> str | None:
    """The directory for persistent servers' sockets: ``llmstep-<uid>`` under ``$XDG_RUNTIME_DIR``
    (else the temporary directory), mode 0700. None when it is not this user's alone; then each
    process starts its own server."""
    import stat

    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    path = os.path.join(base, f"llmstep-{os.getuid()}")
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return None
    try:
        info = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        return None
    return path


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
        "llmstep.executor.main", "llmstep.executor.step", "llmstep.serde", "langchain_core.load", "langchain_core.prompts",
        "langchain_core.messages", "langchain_core.output_parsers", "langchain_core.runnables",
        "langchain_core.callbacks", "langchain_core.documents", "langchain_core.prompt_values",
    ]
    flat = {part for class_id in payload_classes for part in class_id}
    if "openai" in flat or any(p.startswith("langchain_openai") for p in flat):
        modules += ["langchain_openai", "langchain_openai.chat_models"]
    if "offline" in flat:
        modules.append("llmstep.offline")
    return modules


_SHARED: dict[str, ForkServer] = {}
_SHARED_LOCK = threading.Lock()


def shared_server(payload_classes: list[list[str]]) -> ForkServer:
    """The fork server for runs whose payloads use these classes. The first run starts it (in the
    background) and later runs find it warm: in any process of this user while it has work at
    least every :func:`idle_seconds`, or, with an idle time of 0, in this process until it exits."""
    import atexit

    key = ".".join(sorted({".".join(c) for c in payload_classes}))
    idle = idle_seconds()
    with _SHARED_LOCK:
        server = _SHARED.get(key)
        if server is None or not server.usable():
            if not _SHARED:
                atexit.register(_close_shared)
            if server is not None:
                server.close()
            server = _SHARED[key] = ForkServer(preload_for(payload_classes), key=key, idle=idle)
        return server


def _close_shared(stop: bool = False) -> None:
    """Let go of this process's servers (at exit); ``stop`` also ends persistent ones."""
    with _SHARED_LOCK:
        for server in _SHARED.values():
            server.stop() if stop else server.close()
        _SHARED.clear()


def lessons_file(key: str) -> str:
    """Where learned module names persist for runs whose payloads use the same classes (``key``):
    the user's cache directory (:func:`llmstep.render.cache.user_dir`); empty (nothing kept) without one."""
    import hashlib

    from llmstep import __version__
    from llmstep.render.cache import user_dir

    folder = user_dir()
    if not folder:
        return ""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return os.path.join(folder, f"forkserver-imports-py{version}-{__version__}-{digest}.txt")


# ---------------------------------------------------------------- server side


def _read_lessons(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as f:
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
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("\n".join(sorted(names | set(_read_lessons(path)))) + "\n")
        os.replace(tmp, path)
    except OSError:
        pass


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
    from llmstep.local import forkservers

    forkservers.describe(path, preload, idle)

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
            forkservers.used(path)
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
            pid = os.fork()
            if pid == 0:  # the step: nothing of the server's stays open in it
                signal.set_wakeup_fd(-1)
                for sock in ([server] if listening else []) + list(running.values()):
                    sock.close()
                for fd in (learned, reaped, wake, null):
                    os.close(fd)
                conn.close()
                _become_step(request, executor.main, teach, libraries)
            running[pid] = conn
            try:
                conn.sendall(f"{pid}\n".encode())
            except OSError:
                pass  # the client left; the step still runs to its end and is reaped


def _warm(executor: Any) -> None:
    """Work every step would repeat after the fork, done once before it: ``llmstep exec``'s
    parser, and the machine facts HTTP clients send with each request (``platform.platform()``
    runs ``uname -p`` in a subprocess the first time a process asks)."""
    import platform

    executor.parser()
    platform.platform()
    _prepare_tls()


TLS_CONTEXTS = 2  # what one ChatOpenAI (or AzureChatOpenAI, OpenAIEmbeddings) builds: its sync and async clients


def _prepare_tls() -> None:
    """Make the TLS contexts of a step's HTTP clients here, once, if the server has imported the
    HTTP library that openai uses (``httpcore2``; steps teach it when they first need it).

    Each context loads the system's CA bundle, about 20 ms of CPU, and a ChatOpenAI step builds
    two before it sends anything, even to a plain-HTTP endpoint: together more than the rest of
    the step's own work. The contexts made here are handed out one each to the first callers in a
    step that ask for the default context: a caller may change what it gets (a client
    certificate), so no context is ever shared. A caller gets a new context as before when the
    step's environment names its own CAs (``SSL_CERT_FILE``, ``SSL_CERT_DIR``), when it passes
    other arguments, when the prepared ones are used up, or when a CA file has changed since.
    Linux only: OpenSSL's contexts are plain memory that a forked child may use.
    """
    if sys.platform != "linux":  # macOS and Windows: httpcore2 verifies with the system trust store (truststore)
        return
    httpcore2: Any = sys.modules.get("httpcore2")  # a module only when some library imported it
    make = getattr(httpcore2, "default_ssl_context", None)
    if make is None or hasattr(make, "prepared"):
        return
    httpcore2.default_ssl_context = _handing_out(make, TLS_CONTEXTS, _ca_files())


def _ca_files() -> list[str]:
    """The CA files and directories a default context may load: OpenSSL's compiled-in places and
    ``httpcore2``'s own candidates."""
    import ssl

    paths = ssl.get_default_verify_paths()
    candidates = getattr(sys.modules.get("httpcore2._ssl"), "CA_FILE_CANDIDATES", [])
    return [p for p in dict.fromkeys([paths.openssl_cafile, paths.openssl_capath, *candidates]) if p]


def _stamps(paths: list[str]) -> list[tuple[int, int] | None]:
    stamps: list[tuple[int, int] | None] = []
    for path in paths:
        try:
            info = os.stat(path)
            stamps.append((info.st_ino, info.st_mtime_ns))
        except OSError:
            stamps.append(None)
    return stamps


def _handing_out(make: Any, count: int, files: list[str]) -> Any:
    """``make`` (``httpcore2.default_ssl_context``) with ``count`` of its contexts made now, each
    returned once, to a caller that asks for exactly what was made."""
    try:
        ready = [make(_trust_env=False) for _ in range(count)]  # the default when no SSL_CERT_* names other CAs
    except Exception:  # no prepared contexts only costs speed
        return make
    made = _stamps(files)

    def default_ssl_context(*args: Any, **kwargs: Any) -> Any:
        own = kwargs.get("_trust_env", True) and (os.environ.get("SSL_CERT_FILE") or os.environ.get("SSL_CERT_DIR"))
        if ready and not args and set(kwargs) <= {"_trust_env"} and not own and _stamps(files) == made:
            with contextlib.suppress(IndexError):  # another thread took the last one
                return ready.pop()
        return make(*args, **kwargs)

    default_ssl_context.prepared = ready  # type: ignore[attr-defined]
    default_ssl_context.__wrapped__ = make  # type: ignore[attr-defined]
    return default_ssl_context


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
            from llmstep.local import forkservers

            forkservers.forget(path)
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
        except Exception:  # a module that will not import here only costs speed
            continue
    if imported:  # a full collection of the server's heap is not free: only when there is news
        _prepare_tls()
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
                   if str(getattr(getattr(sys.modules.get(n), "__spec__", None), "origin", None) or "").startswith(libraries))
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
    except BaseException:  # report, then exit like a crashed process
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
    _serve(sys.argv[1], [m for m in sys.argv[2].split(",") if m], sys.argv[3], float(sys.argv[4]),
           int(sys.argv[5]) if len(sys.argv) > 5 else 0)
