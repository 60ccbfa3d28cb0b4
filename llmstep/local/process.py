"""Start step processes the way a pod starts its container: a fresh process, its own session,
only the environment the pod would have, output to a log file; killed on timeout or stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmstep.diagnose.settings import ENDPOINT_ENV

if TYPE_CHECKING:
    from llmstep.local.forkserver import ForkServer

DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"


@dataclass(frozen=True)
class Outcome:
    """How a step's process ended: its exit code, and whether it was killed on timeout or on stop."""

    exit_code: int
    timed_out: bool = False
    interrupted: bool = False
    start_error: str = ""
    """Why the process never started (as a pod's container whose program cannot be exec'd)."""


START_FAILED = 1
"""The exit code of a container whose program could not be exec'd: runc writes ``exec PROGRAM:
argument list too long`` to the container's log and the container ends with 1 (reason ``Error``)."""


def exec_refusal(argv: list[str], env: Mapping[str, str]) -> str:
    """What Linux's ``execve`` refuses a pod's container with (empty when it starts): one argument
    or environment entry longer than ``MAX_ARG_STRLEN``, or all together over ``ARG_MAX`` (see
    :mod:`llmstep.contract`). A step run here (forked, or in a process whose limits differ) must
    not start where the pod would not."""
    from llmstep.contract import ARG_MAX, MAX_ARG_STRLEN

    strings = [*argv, *(f"{name}={value}" for name, value in env.items())]
    sizes = [len(text.encode("utf-8", "surrogateescape")) + 1 for text in strings]  # each with its NUL
    longest = max(range(len(sizes)), key=sizes.__getitem__)
    if sizes[longest] > MAX_ARG_STRLEN:
        what = (
            "argument " + str(longest)
            if longest < len(argv)
            else "environment variable " + strings[longest].split("=", 1)[0]
        )
        return (
            f"argument list too long: {what} is {sizes[longest] - 1} bytes; Linux starts no program with "
            f"one longer than {MAX_ARG_STRLEN - 1}"
        )
    total = sum(sizes) + 8 * (len(strings) + 2)  # and a pointer to each
    if total > ARG_MAX:
        return (
            f"argument list too long: the arguments and environment take {total} bytes; Linux starts no "
            f"program with more than {ARG_MAX}"
        )
    return ""


PASSTHROUGH = (
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    *ENDPOINT_ENV,
)
"""What a local step gets from this machine's environment besides its pod's: the way out (proxies,
CA bundles) and where the model is. Without the model's endpoint, a step that reads a key would
send it to the provider's default host instead of the one this machine is configured for."""


def base_env(home: Path, host: Mapping[str, str]) -> dict[str, str]:
    """What a step's container has before the template's env: a PATH, a HOME, a UTF-8 locale,
    and the :data:`PASSTHROUGH` variables of ``host`` (this machine's environment, as the entry
    point read it: :attr:`llmstep.local.options.RunOptions.environ`)."""
    return {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.defpath]),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        **{name: host[name] for name in PASSTHROUGH if host.get(name)},
    }


@dataclass(frozen=True)
class EnvVar:
    """A container's (Argo) or a step's (Tekton) env entry, as both documents write it: a ``value``
    (substituted) or a ``valueFrom`` (a Secret's or a ConfigMap's key, the mapping as written)."""

    name: str
    value: str = ""
    value_from: Mapping[str, Any] | None = None

    def entry(self) -> dict[str, Any]:
        """The entry as Kubernetes writes it (what :func:`env_from` reads)."""
        return {"name": self.name, "valueFrom": dict(self.value_from or {})}


def env_from(item: Mapping[str, Any], values: Mapping[str, str], where: str) -> str | None:
    """The local value of an env entry's ``valueFrom`` (a Secret's or a ConfigMap's key): the
    variable of the entry's name in ``values`` (your environment or ``--secrets FILE``), or of the
    key's name. None for a Secret key that is not there (the step says what it lacks); a WorkflowError
    naming the variable for a ConfigMap key, which Kubernetes too would refuse to start without."""
    ref = item.get("valueFrom") or {}
    kind = "secretKeyRef" if "secretKeyRef" in ref else "configMapKeyRef" if "configMapKeyRef" in ref else None
    if kind is None:
        from llmstep.errors import WorkflowError

        raise WorkflowError(
            f"{where}: env {item.get('name')} valueFrom must be a secretKeyRef or a configMapKeyRef locally"
        )
    name, key = str(item.get("name")), str(ref[kind].get("key", ""))
    for candidate in (name, key):
        if values.get(candidate):
            return values[candidate]
    if kind == "configMapKeyRef" and not ref[kind].get("optional"):
        from llmstep.errors import WorkflowError

        raise WorkflowError(
            f"{where}: env {name} comes from key {key!r} of ConfigMap {ref[kind].get('name')!r}; "
            f"locally, set {name} in your environment or in --secrets FILE"
        )
    return None


def local_argv(argv: list[str], data_dir: Path, root: str | None = None) -> list[str]:
    """The container's ``llmstep ...`` command as a local one: ``--data-dir`` points at
    ``data_dir``, and arguments that are paths under the container's ``root`` (``/llmstep``) are
    mapped into it."""
    local = [sys.executable, "-m", "llmstep", *argv[1:]]
    if "--data-dir" in local:
        local[local.index("--data-dir") + 1] = str(data_dir)
    if root:
        prefix = root.rstrip("/") + "/"
        local = [str(data_dir / a[len(prefix) :]) if a.startswith(prefix) else a for a in local]
    return local


class Launcher:
    """Runs step processes; :meth:`stop` kills every one still running.

    With a fork server, ``llmstep`` commands are forked from it (LangChain already imported)
    instead of started cold; everything else is started with ``subprocess``.
    """

    def __init__(self, forkserver: ForkServer | None = None, keep_server: bool = False) -> None:
        self.stopping = threading.Event()
        self.forkserver = forkserver
        self.keep_server = keep_server  # a shared server outlives this run (see forkserver.shared_server)

    def run(
        self,
        argv: list[str],
        env: Mapping[str, str],
        log_path: Path,
        timeout: float | None,
        on_start: Callable[[int], None] | None = None,
    ) -> Outcome:
        """Run one step's process to its end; ``on_start(pid)`` is told its pid once it runs."""
        if self.stopping.is_set():
            return Outcome(130, interrupted=True)
        refusal = exec_refusal(argv, env)
        if refusal:
            with open(log_path, "ab") as log:
                log.write(f"exec {argv[0]}: {refusal}\n".encode())
            return Outcome(START_FAILED, start_error=refusal)
        server = self.forkserver
        if server is not None and argv[:4] == [sys.executable, "-m", "llmstep", "exec"] and server.wait_ready():
            try:
                step = server.spawn(argv[4:], dict(env), str(log_path.parent), str(log_path))
            except OSError:
                pass  # the server has gone (stopped from elsewhere): a cold start is slower, never wrong
            else:
                return self._supervise(step.pid, step.wait, timeout, on_start)
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                argv,
                env=dict(env),
                cwd=str(log_path.parent),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        def poll(seconds: float) -> int | None:
            try:
                return proc.wait(timeout=seconds)
            except subprocess.TimeoutExpired:
                return None

        return self._supervise(proc.pid, poll, timeout, on_start)

    def _supervise(
        self,
        pid: int,
        poll: Callable[[float], int | None],
        timeout: float | None,
        on_start: Callable[[int], None] | None = None,
    ) -> Outcome:
        """Wait for the step (its own session: ``pid`` is its process group), stopping it on
        timeout or when the run is stopped. ``poll(seconds)`` is its exit code, or None."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if on_start is not None:
            on_start(pid)
        while True:
            code = poll(0.05)
            if code is not None:
                _end_group(pid)
                return Outcome(code)
            if self.stopping.is_set():
                _stop_group(pid, poll)
                return Outcome(130, interrupted=True)
            if deadline is not None and time.monotonic() > deadline:
                code = _stop_group(pid, poll)
                return Outcome(code if code is not None else -9, timed_out=True)

    def close(self) -> None:
        """Stop the fork server, if this launcher owns one (steps have finished or been stopped by then)."""
        if self.forkserver is not None and not self.keep_server:
            self.forkserver.close()
        self.forkserver = None

    def stop(self) -> None:
        """Stop the run: each step's supervising thread sees this within 50 ms and stops its
        process group."""
        self.stopping.set()


def _end_group(pid: int) -> None:
    """What is left of a step that ended (a background process in its group), killed as a pod's
    processes are when its container ends; what detached from the group the step stops itself
    (see llmstep.executor.reaper)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _stop_group(pid: int, poll: Callable[[float], int | None]) -> int | None:
    """Stop a step's process group like a pod deletion: TERM, a grace period, then KILL; its
    exit code once it is gone."""
    for sig, grace in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        code = poll(grace)
        if code is not None:
            return code
    return None
