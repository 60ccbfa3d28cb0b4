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


def local_argv(argv: list[str], data_dir: Path) -> list[str]:
    """The container's ``llmstep exec --data-dir /llmstep`` as a local command on ``data_dir``."""
    local = [sys.executable, "-m", "llmstep", *argv[1:]]
    if "--data-dir" in local:
        local[local.index("--data-dir") + 1] = str(data_dir)
    return local


class Launcher:
    """Runs step processes; :meth:`stop` kills every one still running."""

    def __init__(self) -> None:
        self._procs: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()
        self.stopping = threading.Event()

    def run(self, argv: list[str], env: Mapping[str, str], log_path: Path, timeout: float | None) -> Outcome:
        if self.stopping.is_set():
            return Outcome(130, interrupted=True)
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

    def stop(self) -> None:
        self.stopping.set()
        with self._lock:
            procs = list(self._procs)
        for proc in procs:
            _kill(proc)


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
