"""Start step processes the way a pod starts its container: a fresh process, its own session,
only the environment the pod would have, output to a log file; killed on timeout or stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llmstep.run.forkserver import ForkServer, Step

DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    timed_out: bool = False
    interrupted: bool = False


def base_env(home: Path) -> dict[str, str]:
    """What a step's container has before the template's env: a PATH, a HOME, a UTF-8 locale."""
    return {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.defpath]),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
    }


def local_argv(argv: list[str], data_dir: Path, root: str | None = None) -> list[str]:
    """The container's ``llmstep ...`` command as a local one: ``--data-dir`` points at
    ``data_dir``, and arguments that are paths under the container's ``root`` (``/llmstep``) are
    mapped into it."""
    local = [sys.executable, "-m", "llmstep", *argv[1:]]
    if "--data-dir" in local:
        local[local.index("--data-dir") + 1] = str(data_dir)
    if root:
        prefix = root.rstrip("/") + "/"
        local = [str(data_dir / a[len(prefix):]) if a.startswith(prefix) else a for a in local]
    return local


class Launcher:
    """Runs step processes; :meth:`stop` kills every one still running.

    With a fork server, ``llmstep`` commands are forked from it (LangChain already imported)
    instead of started cold; everything else is started with ``subprocess``.
    """

    def __init__(self, forkserver: ForkServer | None = None) -> None:
        self._procs: set[subprocess.Popen[bytes]] = set()
        self._forked: set[int] = set()
        self._lock = threading.Lock()
        self.stopping = threading.Event()
        self.forkserver = forkserver

    def run(self, argv: list[str], env: Mapping[str, str], log_path: Path, timeout: float | None) -> Outcome:
        if self.stopping.is_set():
            return Outcome(130, interrupted=True)
        server = self.forkserver
        if server is not None and argv[:3] == [sys.executable, "-m", "llmstep"] and server.wait_ready():
            return self._run_forked(server, argv[3:], env, log_path, timeout)
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                argv, env=dict(env), cwd=str(log_path.parent), stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
            with self._lock:
                self._procs.add(proc)
            try:
                return self._wait(proc, timeout)
            finally:
                with self._lock:
                    self._procs.discard(proc)

    def _wait(self, proc: subprocess.Popen[bytes], timeout: float | None) -> Outcome:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                return Outcome(proc.wait(timeout=0.05))
            except subprocess.TimeoutExpired:
                pass
            if self.stopping.is_set():
                _kill(proc)
                return Outcome(130, interrupted=True)
            if deadline is not None and time.monotonic() > deadline:
                _kill(proc)
                return Outcome(proc.returncode if proc.returncode is not None else -9, timed_out=True)

    def _run_forked(self, server: ForkServer, args: list[str], env: Mapping[str, str], log_path: Path,
                    timeout: float | None) -> Outcome:  # fmt: skip
        step = server.spawn(args, dict(env), str(log_path.parent), str(log_path))
        with self._lock:
            self._forked.add(step.pid)
        try:
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                code = step.wait(0.1)
                if code is not None:
                    return Outcome(code)
                if self.stopping.is_set():
                    _kill_group(step.pid, step)
                    return Outcome(130, interrupted=True)
                if deadline is not None and time.monotonic() > deadline:
                    code = _kill_group(step.pid, step)
                    return Outcome(code if code is not None else -9, timed_out=True)
        finally:
            with self._lock:
                self._forked.discard(step.pid)

    def close(self) -> None:
        """Stop the fork server, if any (steps have finished or been stopped by then)."""
        if self.forkserver is not None:
            self.forkserver.close()
            self.forkserver = None

    def stop(self) -> None:
        self.stopping.set()
        with self._lock:
            procs = list(self._procs)
            forked = list(self._forked)
        for proc in procs:
            _kill(proc)
        for pid in forked:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(pid, sig)
                except ProcessLookupError:
                    break
                time.sleep(0.2)


def _kill_group(pid: int, step: Step) -> int | None:
    """Stop a forked step's process group like a pod deletion; its exit code once it is gone."""
    for sig, grace in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        code = step.wait(grace)
        if code is not None:
            return code
    return None


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """Stop the process group: TERM, then KILL after a grace period, like a pod's deletion."""
    for sig, grace in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=grace)
            break
        except subprocess.TimeoutExpired:
            continue
