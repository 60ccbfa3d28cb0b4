"""A Tekton PipelineRun's time: its ``spec.timeouts`` as the controller enforces them
(:class:`Deadlines`), and durations in the words Tekton's messages use (:func:`go_duration`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from llmstep.errors import WorkflowError
from llmstep.local.attempts import seconds


@dataclass(frozen=True)
class Deadlines:
    """A PipelineRun's ``spec.timeouts`` in seconds (0 or None: none), as Tekton's PipelineRun
    reconciler enforces them: on the run's time, never as a shorter TaskRun timeout.

    - ``pipeline`` passed: running TaskRuns are cancelled, tasks not started are skipped, and the
      ``finally`` tasks do not run; the PipelineRun fails with ``PipelineRunTimeout``.
    - ``tasks`` passed: the same for the regular tasks; the ``finally`` tasks then run, for
      ``finally`` seconds (else what ``pipeline`` leaves over ``tasks``).
    - a cancelled TaskRun is not retried.
    """

    pipeline: float | None = None
    tasks: float | None = None
    final: float | None = None

    @classmethod
    def of(cls, spec: Mapping[str, Any]) -> Deadlines:
        """The ``timeouts`` of a PipelineRun's spec; WorkflowError naming a bad one, with
        Tekton's own rules (none negative; ``tasks`` and ``finally`` within ``pipeline``)."""
        timeouts = spec.get("timeouts") or {}
        if not isinstance(timeouts, dict):
            raise WorkflowError(f"spec.timeouts must be a mapping of pipeline, tasks and finally, found {timeouts!r}")
        unknown = sorted(set(timeouts) - {"pipeline", "tasks", "finally"})
        if unknown:
            raise WorkflowError(f"spec.timeouts.{unknown[0]} is not a Tekton timeout (use pipeline, tasks or finally)")
        values = {key: seconds(value, f"spec.timeouts.{key}") for key, value in timeouts.items() if value is not None}
        for key, value in values.items():
            if value < 0:
                raise WorkflowError(f"spec.timeouts.{key}: {timeouts[key]!r} should be >= 0")
        pipeline = values.get("pipeline")
        if pipeline:
            for key in ("tasks", "finally"):
                if key in values and not 0 < values[key] <= pipeline:
                    raise WorkflowError(
                        f"spec.timeouts.{key}: {timeouts[key]!r} should be <= pipeline duration "
                        f"({timeouts['pipeline']!r}), and not 0"
                    )
            if values.get("tasks", 0) + values.get("finally", 0) > pipeline:
                raise WorkflowError(
                    f"spec.timeouts: tasks {timeouts['tasks']!r} + finally {timeouts['finally']!r} "
                    f"should be <= pipeline duration ({timeouts['pipeline']!r})"
                )
        return cls(pipeline or None, values.get("tasks") or None, values.get("finally") or None)

    def finally_budget(self) -> float | None:
        """Seconds the ``finally`` tasks get from their start (Tekton's ``FinallyTimeout``)."""
        if self.final:
            return self.final
        return self.pipeline - self.tasks if self.pipeline and self.tasks else None


def go_duration(value: float) -> str:
    """Seconds as Go's ``time.Duration.String()`` prints them (``5s``, ``1m30s``, ``1h0m0s``,
    ``500ms``): the words Tekton's messages use."""
    if value == 0:
        return "0s"
    if value < 1:
        return f"{value * 1000:g}ms"
    hours, rest = divmod(value, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{secs:.9f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{int(hours)}h{int(minutes)}m{text}"
    return f"{int(minutes)}m{text}" if minutes else text
