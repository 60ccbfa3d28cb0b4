"""One step of a local run, with its attempts: shared by the Argo and Tekton local runners.

Each attempt gets a fresh data directory, runs the step's process with a deadline, and is
judged; a failed attempt is retried while the engine's retry rules allow, after a backoff.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmstep import contract, jsonio
from llmstep.contract import Phase
from llmstep.errors import WorkflowError
from llmstep.local.lifecycle import step_ended, step_started
from llmstep.local.process import DEADLINE_MESSAGE, Launcher
from llmstep.local.progress import Progress
from llmstep.local.records import RunRecord, now
from llmstep.local.state import Outputs


@dataclass
class Attempt:
    """What a step needs to run once: the command, its env and where it keeps its files."""

    argv: list[str]
    env: dict[str, str]
    data_dir: Path | None = None  # where the step writes error.json, if not the scratch directory


@dataclass
class StepRun:
    """A step to run with retries. ``prepare(data_dir)`` places inputs and returns the
    Attempt; ``collect(data_dir)`` reads outputs after success (WorkflowError -> phase Error);
    ``retry(exit_code, phase, duration)`` says whether the engine would retry.

    ``max_duration`` is Argo's ``retryStrategy.backoff.maxDuration``: the seconds from the first
    attempt's start after which the step is not retried (and a retry is stopped when they end).
    ``deadline`` is an end for every attempt (a ``time.monotonic()`` value: the whole run's
    ``activeDeadlineSeconds``), which stops the step with ``deadline_message``."""

    name: str
    template: str
    prepare: Callable[[Path], Attempt]
    collect: Callable[[Path], Outputs]
    retries: int = 0
    timeout: float | None = None
    retry: Callable[[int, str, float], bool] = lambda code, phase, duration: phase == Phase.FAILED
    backoff: Callable[[int], float] = lambda attempt: 0.0
    max_duration: float | None = None
    deadline: float | None = None
    deadline_message: str = "Step exceeded its deadline"
    timeout_message: str = DEADLINE_MESSAGE
    """What a step stopped by its own ``timeout`` fails with (the engine's words)."""
    start_message: Callable[[str], str] = lambda error: error
    """What a step whose process could not start fails with (the engine's words around ``error``)."""
    exit_handler: bool = False
    slot: Callable[[], AbstractContextManager[Any]] = contextlib.nullcontext
    """Held while the step's process runs (a parallelism limit counts running steps, as Argo counts pods)."""


def run_step(step: StepRun, record: RunRecord, launcher: Launcher, progress: Progress) -> Phase:
    """Run ``step`` until it succeeds or its retries are spent; record and return its phase."""
    step_dir = record.step_dir(step.name)
    log_path = record.log_path(step.name)
    started = now()
    attempt = 0
    first: float | None = None  # when the first attempt's process started
    while True:
        attempt += 1
        data_dir = record.data_dir(step.name)
        shutil.rmtree(data_dir, ignore_errors=True)
        data_dir.mkdir()
        node = record.update_node(
            step.name,
            display_name=step.name,
            template_name=step.template,
            phase=Phase.RUNNING,
            started_at=started,
            attempts=attempt,
            exit_handler=step.exit_handler,
        )
        progress.changed(step.name, node)
        try:
            run = step.prepare(data_dir)
        except WorkflowError as exc:
            return _done(record, progress, step.name, Phase.ERROR, str(exc), None, Outputs())
        except OSError as exc:  # an input that is gone, a full disk: the step cannot start
            where = f" ({exc.filename})" if exc.filename else ""
            return _done(
                record,
                progress,
                step.name,
                Phase.ERROR,
                f"its inputs cannot be laid out: {exc.strerror or exc}{where}",
                None,
                Outputs(),
            )
        with open(log_path, "ab") as log:
            log.write(f"--- attempt {attempt} at {now()}\n".encode())
        with step.slot():
            began = time.monotonic()
            first = began if first is None else first
            ends = _ends(step, first if attempt > 1 else None)
            if ends is not None and ends[0] <= began:
                return _done(record, progress, step.name, Phase.FAILED, ends[1], None, Outputs())
            timeout = step.timeout if ends is None else min(step.timeout or float("inf"), ends[0] - began)
            try:
                outcome = launcher.run(run.argv, run.env, log_path, timeout, lambda pid: step_started(step_dir, pid))
            finally:
                step_ended(step_dir)
            duration = time.monotonic() - began
        if outcome.interrupted:
            return _done(record, progress, step.name, Phase.FAILED, "interrupted", outcome.exit_code, Outputs())
        if outcome.timed_out:
            by_end = ends is not None and (step.timeout is None or ends[0] < began + step.timeout)
            phase, message = Phase.FAILED, ends[1] if ends is not None and by_end else step.timeout_message
        elif outcome.start_error:
            phase, message = Phase.FAILED, step.start_message(outcome.start_error)
        elif outcome.exit_code == 0:
            phase, message = Phase.SUCCEEDED, ""
        else:
            phase, message = Phase.FAILED, error_message(run.data_dir or data_dir, outcome.exit_code)
        outputs = Outputs()
        if phase == Phase.SUCCEEDED:
            try:
                outputs = step.collect(data_dir)
            except WorkflowError as exc:
                phase, message = Phase.ERROR, str(exc)
        if phase == Phase.SUCCEEDED:
            return _done(record, progress, step.name, phase, message, outcome.exit_code, outputs)
        # Argo's order (processNodeRetries): the run's deadline, the max duration, then the policy and the limit
        if step.deadline is not None and time.monotonic() > step.deadline:
            return _done(record, progress, step.name, phase, message, outcome.exit_code, outputs)
        if step.max_duration is not None:
            limit = first + step.max_duration
            if time.monotonic() > limit:
                return _done(
                    record, progress, step.name, phase, "Max duration limit exceeded", outcome.exit_code, Outputs()
                )
            if time.monotonic() + step.backoff(attempt) > limit:
                return _done(
                    record,
                    progress,
                    step.name,
                    phase,
                    "Backoff would exceed max duration limit",
                    outcome.exit_code,
                    Outputs(),
                )
        if attempt > step.retries or not step.retry(outcome.exit_code, phase, duration):
            return _done(record, progress, step.name, phase, message, outcome.exit_code, outputs)
        time.sleep(step.backoff(attempt))


def _ends(step: StepRun, first: float | None) -> tuple[float, str] | None:
    """The earliest end this attempt has beyond its own timeout, with the message it stops the
    step with: the run's deadline, or (for a retry) the max duration from the first attempt."""
    ends = []
    if step.deadline is not None:
        ends.append((step.deadline, step.deadline_message))
    if first is not None and step.max_duration is not None:
        ends.append((first + step.max_duration, DEADLINE_MESSAGE))
    return min(ends) if ends else None


def _done(
    record: RunRecord,
    progress: Progress,
    name: str,
    phase: Phase,
    message: str,
    exit_code: int | None,
    outputs: Outputs,
) -> Phase:
    node = record.update_node(
        name, phase=phase, message=message, exit_code=exit_code, finished_at=now(), outputs=outputs
    )
    progress.changed(name, node)
    return phase


def error_message(data_dir: Path, exit_code: int) -> str:
    """The step's own account of its failure (error.json), else its exit code."""
    try:
        error = jsonio.loads((data_dir / contract.ERROR).read_text(encoding="utf-8"))
        return f"{contract.error_text(error)} (exit code {exit_code})"
    except (OSError, ValueError):
        return f"Error (exit code {exit_code})"


def seconds(text: Any, where: str) -> float:
    """Seconds from an engine duration: ``30``, ``"5s"``, ``"1m"``, ``"1h30m"``, ``"500ms"``."""
    import re

    value = str(text).strip()
    try:
        return float(value)
    except ValueError:
        pass
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise WorkflowError(f"{where}: {value!r} is not a duration like '5s' or '1m30s'")
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * units[u] for n, u in parts)
