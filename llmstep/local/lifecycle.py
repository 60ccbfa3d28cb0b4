"""How a local run ends, however it ends, and what a resume clears away first.

Whatever stops a run (its end, Ctrl-C, SIGTERM, an error, a full disk) leaves its record
finished and its lock released (:func:`finishing`). A run killed with -9 cannot do that: its
record reads as Failed once its lock is free (see :mod:`llmstep.local.records`), and each running
step's process is named in ``steps/<task>/pid``, so a resume first stops what is left of it
(:func:`stop_leftovers`) before a new attempt uses the same directory.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from llmstep import exitcodes
from llmstep.contract import Phase
from llmstep.local.records import PID, RunRecord


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled as Ctrl-C is (steps stopped, record finished), with its own exit code."""

    exit_code = exitcodes.EXIT_TERMINATED
    message = "terminated"


@contextlib.contextmanager
def finishing(record: RunRecord, launcher: Any, progress: Any) -> Iterator[None]:
    """Around a run's execution: the record is finished and released whatever ends it."""
    try:
        yield
    except KeyboardInterrupt as exc:
        _finish_anyway(record, getattr(exc, "message", "interrupted"), Phase.FAILED)
        raise
    except BaseException as exc:
        _finish_anyway(record, f"the run stopped: {type(exc).__name__}: {exc}", Phase.ERROR)
        raise
    finally:
        try:
            launcher.close()
            progress.finish(record)
        finally:
            record.release()


def _finish_anyway(record: RunRecord, message: str, phase: Phase) -> None:
    try:
        record.interrupted(message, phase)
    except OSError:
        pass  # the disk is full: once the lock is released, readers see the run as ended


def step_started(step_dir: Path, pid: int) -> None:
    """Name a step's process (a process group of its own) while it runs."""
    with contextlib.suppress(OSError):
        (step_dir / PID).write_text(f"{pid} {_start_time(pid)}", encoding="utf-8")


def step_ended(step_dir: Path) -> None:
    with contextlib.suppress(OSError):
        (step_dir / PID).unlink()


def stop_leftovers(record: RunRecord) -> list[int]:
    """Stop the step processes an earlier, killed attempt of this run left running (only the very
    processes it started: a pid reused since has another start time); return their pids."""
    stopped = []
    for pid_file in record.pid_files():
        try:
            pid_text, _, started = pid_file.read_text(encoding="utf-8").partition(" ")
            pid = int(pid_text)
        except (OSError, ValueError):
            pid = 0
        if pid > 1 and started and _start_time(pid) == started:
            _stop_group(pid)
            stopped.append(pid)
        pid_file.unlink(missing_ok=True)
    return stopped


def _start_time(pid: int) -> str:
    """When a process started (clock ticks since boot, from /proc), '' when it is not there."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rpartition(")")[2].split()[19]
    except (OSError, IndexError):
        return ""


def _stop_group(pid: int) -> None:
    for sig, grace in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if not _start_time(pid) or _zombie(pid):
                return
            time.sleep(0.05)


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rpartition(")")[2].split()[0] == "Z"
    except (OSError, IndexError):
        return True
