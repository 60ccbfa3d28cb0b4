"""The engine-neutral plan: what every renderer and runner works from. Pure data.

A step's input is a *shape* (:mod:`llmstep.shapes`): its leaves are the step's *sources*,
each of which arrives as one file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llmstep import contract
from llmstep.errors import CompileError
from llmstep.shapes import CHAIN_INPUT, is_single, shape_sources

DATA_MODES = ("artifacts", "parameters")


@dataclass(frozen=True)
class SecretKeyRef:
    """An environment variable's value from a key of a Kubernetes Secret (``valueFrom.secretKeyRef``).
    Locally, the value is the variable of the same name in your environment or ``--secrets FILE``."""

    name: str
    key: str


@dataclass(frozen=True)
class ConfigMapKeyRef:
    """An environment variable's value from a key of a ConfigMap (``valueFrom.configMapKeyRef``).
    Locally, the value is the variable of the same name in your environment or ``--secrets FILE``."""

    name: str
    key: str


EnvValue = str | SecretKeyRef | ConfigMapKeyRef


@dataclass(frozen=True)
class StepSettings:
    """Per-step settings from ``llmstep.Step``; ``None`` means the plan default."""

    image: str | None = None
    retries: int = 0
    backoff: str = "5s"
    timeout: int | None = None
    resources: dict[str, Any] | None = None
    env: tuple[tuple[str, EnvValue], ...] = ()
    """The step's environment (``Step(env=...)`` over ``compile(env=...)``), in order."""


@dataclass(frozen=True)
class PlanStep:
    """One Runnable that runs as one container.

    ``name`` is a DNS label (template and Tekton task name); ``display`` is the readable,
    unique name shown in the Argo UI (the DAG task name); ``path`` locates the Runnable in the
    user's chain (``chain.steps[2]``).
    """

    name: str
    display: str
    path: str
    runnable: str
    payload: dict[str, Any]
    shape: list
    secrets: tuple[str, ...] = ()
    settings: StepSettings = field(default_factory=StepSettings)

    @property
    def sources(self) -> list[str]:
        return shape_sources(self.shape)

    @property
    def depends(self) -> list[str]:
        """Names of the steps this one waits for."""
        return [s for s in self.sources if s != CHAIN_INPUT]

    @property
    def single_input(self) -> bool:
        """True when the whole input is one source: it arrives as ``input.json``."""
        return is_single(self.shape)


@dataclass(frozen=True)
class Plan:
    """A compiled chain: steps in topological order and the step that yields the result."""

    name: str
    steps: tuple[PlanStep, ...]
    output: str
    image: str
    secret: str = contract.DEFAULT_SECRET
    data: str = "artifacts"
    description: str = ""
    on_failure: Any = None
    """``llmstep.Diagnose`` settings for a failure hook (exit handler / finally task), or None."""
    value_classes: tuple[type, ...] = ()
    """The classes values between steps may name (pydantic models, dataclasses, enums): the chain's own
    and those declared with ``value_types``; every payload lists them."""

    def __post_init__(self) -> None:
        if self.data not in DATA_MODES:
            raise CompileError(f"data={self.data!r} is not one of {', '.join(DATA_MODES)}")
        seen: set[str] = set()
        for step in self.steps:
            for dep in step.depends:
                if dep not in seen:
                    raise CompileError(f"step {step.name!r} reads {dep!r}, which does not run before it")
            if step.name in seen or step.name == CHAIN_INPUT:
                raise CompileError(f"step name {step.name!r} is used twice")
            seen.add(step.name)
        if self.output not in seen:
            raise CompileError(f"output step {self.output!r} is not in the plan")

    def step(self, name: str) -> PlanStep:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)

    @property
    def secret_keys(self) -> list[str]:
        """Every secret key any step needs, sorted."""
        return sorted({key for step in self.steps for key in step.secrets})
