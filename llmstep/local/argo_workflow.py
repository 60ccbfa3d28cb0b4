"""The typed Argo Workflow the local runner walks: templates, tasks, containers, retry strategies,
durations in seconds. :func:`llmstep.local.argo_doc.parse` checks a document against the supported
subset and builds these once; :mod:`llmstep.local.argo` never goes back to the document's dict.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from llmstep import contract
from llmstep.errors import WorkflowError
from llmstep.local import expr
from llmstep.local.process import EnvVar


@dataclass(frozen=True)
class Parameter:
    """A declared parameter (of the Workflow's arguments or a template's inputs) and its text,
    None when it has none (the run must be given one)."""

    name: str
    value: str | None


@dataclass(frozen=True)
class InputArtifact:
    """A template's input artifact: where the step reads it, and its ``raw`` text if it has one."""

    name: str
    path: str
    raw: str | None = None
    optional: bool = False


@dataclass(frozen=True)
class OutputParameter:
    """A template's output parameter, read from a file the step writes (``valueFrom.path``)."""

    name: str
    path: str
    default: str | None = None


@dataclass(frozen=True)
class OutputArtifact:
    """A template's output artifact: the file the step writes."""

    name: str
    path: str
    optional: bool = False


@dataclass(frozen=True)
class Container:
    """A container template's image, its command and args as one argv, and its env."""

    image: str
    argv: tuple[str, ...]
    env: tuple[EnvVar, ...] = ()

    @property
    def needs_network(self) -> bool:
        """Whether the step reads a Secret or a ConfigMap: the steps that call a model do."""
        return any(e.value_from is not None for e in self.env)


@dataclass(frozen=True)
class Retry:
    """A template's ``retryStrategy``, its durations in seconds.

    ``max_duration`` is not a cap on the wait (that is ``cap``): as Argo's controller reads it, it
    is how long after the first attempt started the step may still be retried (see
    :class:`~llmstep.local.attempts.StepRun`).
    """

    limit: int = 0
    policy: str = "OnFailure"
    expression: str | None = None
    duration: float = 0.0
    factor: int = 1
    max_duration: float | None = None
    cap: float | None = None

    def should_retry(self, exit_code: int, phase: str, duration: float) -> bool:
        """Whether an attempt that ended in ``phase`` is retried, as Argo's ``retryPolicy`` and
        ``expression`` (with ``lastRetry.*``) decide it."""
        if self.policy == "OnError" and phase != contract.Phase.ERROR:
            return False
        if self.policy == "OnFailure" and phase != contract.Phase.FAILED:
            return False
        if self.expression:
            last = {
                "lastRetry.exitCode": str(exit_code),
                "lastRetry.status": str(phase),
                "lastRetry.duration": str(int(duration)),
                "lastRetry.message": "",
            }
            return bool(expr.evaluate(self.expression, lambda n: last.get(n, expr.UNKNOWN)))
        return True

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1 for the first): Argo's
        ``duration * factor^(attempt - 1)``, where a factor of 0 leaves the duration as it is, and
        at most ``cap``."""
        delay = self.duration * (self.factor or 1) ** (attempt - 1)
        return delay if self.cap is None else min(delay, self.cap)


@dataclass(frozen=True)
class TaskArtifact:
    """An artifact a DAG task passes to its template: ``raw`` text, or ``from`` an earlier task."""

    name: str
    raw: str | None = None
    source: str | None = None


@dataclass(frozen=True)
class Task:
    """A DAG task: the template it calls, its arguments, what it waits for, and its fan-out.

    ``deps`` are the tasks it waits for; ``depends`` is its expression over their results (None
    for ``dependencies``, which wait for each to succeed).
    """

    name: str
    template: str
    parameters: tuple[tuple[str, str], ...] = ()
    artifacts: tuple[TaskArtifact, ...] = ()
    deps: tuple[str, ...] = ()
    depends: str | None = None
    when: str | None = None
    with_items: tuple[Any, ...] | None = None
    with_param: str | None = None


@dataclass(frozen=True)
class Dag:
    """A DAG template's tasks, in the document's order."""

    tasks: tuple[Task, ...]
    fail_fast: bool = True


@dataclass(frozen=True)
class Template:
    """A template: exactly one of ``dag`` and ``container``, its inputs and outputs and its
    settings (``deadline`` is ``activeDeadlineSeconds``)."""

    name: str
    dag: Dag | None = None
    container: Container | None = None
    parameters: tuple[Parameter, ...] = ()
    artifacts: tuple[InputArtifact, ...] = ()
    outputs: tuple[OutputParameter, ...] = ()
    output_artifacts: tuple[OutputArtifact, ...] = ()
    retry: Retry = field(default_factory=Retry)
    deadline: float | None = None
    parallelism: int | None = None


@dataclass(frozen=True)
class Workflow:
    """An Argo Workflow inside the local subset, checked and parsed once by :func:`parse`.

    ``document`` is the dict it was read from, kept for what looks at the document as a whole
    (the payload classes a fork server preloads, the run record's copy); the run walks the rest.
    """

    document: Mapping[str, Any] = field(repr=False, compare=False)
    templates: Mapping[str, Template]
    entrypoint: str
    on_exit: str | None = None
    parameters: tuple[Parameter, ...] = ()
    parallelism: int | None = None
    deadline: float | None = None
    namespace: str = "default"
    output_task: str | None = None
    batch: bool = False

    def template(self, name: str) -> Template:
        """The template of this name (:func:`parse` made sure every reference has one)."""
        return self.templates[name]

    @property
    def images(self) -> list[str]:
        """The images of the container templates."""
        return [t.container.image for t in self.templates.values() if t.container is not None]

    def arguments(self, overrides: Mapping[str, str]) -> dict[str, str]:
        """The workflow's parameters: ``overrides`` over the declared values; each needs a value."""
        values: dict[str, str] = {}
        for param in self.parameters:
            value = overrides.get(param.name, param.value)
            if value is None:
                raise WorkflowError(
                    f"parameter {param.name!r} has no value: pass -p {param.name}=... (for the chain input, JSON)"
                )
            values[param.name] = value
        return values
