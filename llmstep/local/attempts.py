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

from llmstep import contract
from llmstep.errors import WorkflowError
from llmstep.local.lifecycle import step_ended, step_started
from llmstep.local.process import DEADLINE_MESSAGE, Launcher
from llmstep.local.progress import Progress
from llmstep.local.records import RunRecord, now


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
    ``retry(exit_code, phase, duration)`` says whether the engine would retry."""

    name: str
    template: str
    prepare: Callable[[Path], Attempt]
    collect: Callable[[Path], dict[str, Any]]
    retries: int = 0
    timeout: float | None = None
    retry: Callable[[int, str, float], bool] = lambda code, phase, duration: phase == "Failed"
    backoff: Callable[[int], float] = lambda attempt: 0.0
    exit_handler: bool = False
    slot: Callable[[], AbstractContextManager[Any]] = contextlib.nullcontext
    """Held while the step's process runs (a parallelism limit counts running steps, as Argo counts pods)."""


def run_step(step: StepRun, record: RunRecord, launcher: Launcher, progress: Progress) -> str:
    """Run ``step`` until it succeeds or its retries are spent; record and return its phase."""
    step_dir = record.step_dir(step.name)
    log_path = step_dir / "log.txt"
    started = now()
    attempt = 0
    while True:
        attempt += 1
        data_dir = step_dir / "data"
        shutil.rmtree(data_dir, ignore_errors=True)
        data_dir.mkdir()
        node = record.update_node(step.name, displayName=step.name, templateName=step.template, phase="Running",
                                  startedAt=started, attempts=attempt, exitHandler=step.exit_handler)
        progress.changed(step.name, node)
        try:
            run = step.prepare(data_dir)
        except WorkflowError as exc:
            return _done(record, progress, step.name, "Error", str(exc), None, {})
        with open(log_path, "ab") as log:
            log.write(f"--- attempt {attempt} at {now()}\n".encode())
        with step.slot():
            began = time.monotonic()
            try:
                outcome = launcher.run(run.argv, run.env, log_path, step.timeout, lambda pid: step_started(step_dir, pid))
            finally:
                step_ended(step_dir)
            duration = time.monotonic() - began
        if outcome.interrupted:
            return _done(record, progress, step.name, "Failed", "interrupted", outcome.exit_code, {})
        if outcome.timed_out:
            phase, message = "Failed", DEADLINE_MESSAGE
        elif outcome.exit_code == 0:
            phase, message = "Succeeded", ""
        else:
            phase, message = "Failed", error_message(run.data_dir or data_dir, outcome.exit_code)
        outputs: dict[str, Any] = {}
        if phase == "Succeeded":
            try:
                outputs = step.collect(data_dir)
            except WorkflowError as exc:
                phase, message = "Error", str(exc)
        if phase == "Succeeded" or attempt > step.retries or not step.retry(outcome.exit_code, phase, duration):
            return _done(record, progress, step.name, phase, message, outcome.exit_code, outputs)
        time.sleep(step.backoff(attempt))


def _done(record: RunRecord, progress: Progress, name: str, phase: str, message: str,
          exit_code: int | None, outputs: dict[str, Any]) -> str:
    node = record.update_node(name, phase=phase, message=message, exitCode=exit_code, finishedAt=now(), outputs=outputs)
    progress.changed(name, node)
    return phase


def error_message(data_dir: Path, exit_code: int) -> str:
    """The step's own account of its failure (error.json), else its exit code."""
    import json

    try:
        error = json.loads((data_dir / contract.ERROR).read_text(encoding="utf-8"))
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
