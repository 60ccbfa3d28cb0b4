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
class RateLimit:
    """How a model step retries the model's "rate limited" and "overloaded" answers (HTTP 429, 503,
    529): ``Step(rate_limit=RateLimit(max_attempts=8, max_wait=120))``.

    Each such answer is retried with capped exponential backoff and full jitter, waiting at least
    what the server's ``Retry-After`` (or ``retry-after-ms``) asks; the step gives up after
    ``max_attempts`` requests for one model call (the first included) or when the next wait would
    take its waiting past ``max_wait`` seconds, and then exits 75
    (:data:`llmstep.exitcodes.EXIT_RATE_LIMITED`), which ``retries=`` retries. Other errors are
    not retried inside the step. ``Step(rate_limit=False)`` leaves the model client's own retries
    as they are.
    """

    max_attempts: int = contract.RATE_LIMIT_ATTEMPTS
    max_wait: float = contract.RATE_LIMIT_WAIT

    def __post_init__(self) -> None:
        import math

        attempts, wait = self.max_attempts, self.max_wait
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise CompileError(f"RateLimit(max_attempts=...) must be a whole number >= 1, got {attempts!r}")
        if isinstance(wait, bool) or not isinstance(wait, (int, float)) or not math.isfinite(wait) or wait < 0:
            raise CompileError(f"RateLimit(max_wait=...) must be seconds >= 0, got {wait!r}")

    @property
    def env_value(self) -> str:
        """The value of :data:`llmstep.contract.RATE_LIMIT_ENV` that carries it to the step."""
        return contract.rate_limit_value(self.max_attempts, float(self.max_wait))


@dataclass(frozen=True)
class StepSettings:
    """Per-step settings from ``llmstep.Step``; ``None`` means the plan default."""

    image: str | None = None
    retries: int = 0
    backoff: str = "5s"
    timeout: int | None = None
    resources: dict[str, Any] | None = None
    env: tuple[tuple[str, EnvValue], ...] = ()
    """The step's environment (``Step(env=...)`` over ``compile(env=...)``), in order; a
    ``Step(rate_limit=...)`` other than the default is one more entry
    (:data:`llmstep.contract.RATE_LIMIT_ENV`), so it reaches the step on every engine."""


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
