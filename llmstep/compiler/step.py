"""``llmstep.Step``: an explicit step boundary with per-step settings."""

from __future__ import annotations

import re
from typing import Any

from langchain_core.runnables import Runnable, RunnableBinding
from langchain_core.runnables.base import coerce_to_runnable

from llmstep import contract
from llmstep.errors import CompileError
from llmstep.plan import RateLimit, StepSettings

_DURATION = re.compile(r"^(\d+)(s|m|h)?$")
_UNITS = {None: 1, "s": 1, "m": 60, "h": 3600}
MAX_SECONDS = (2**63 - 1) // 10**9
"""The longest duration Go's time.Duration holds (Tekton's timeouts are parsed into one)."""
_RESOURCE_KEYS = {"requests", "limits"}


class Step(RunnableBinding):
    """Run ``runnable`` (and everything inside it) as one step, with its own settings.

    Invoked in-process it behaves exactly like the Runnable it wraps.

    Args:
        runnable: any Runnable (or a dict / function that LangChain coerces to one).
        name: the step's name in the workflow (Argo task, Tekton task).
        image: the container image for this step instead of the workflow default.
        retries: how many times to retry a failed step, with exponential backoff.
        timeout: seconds (or ``"90s"``, ``"5m"``, ``"1h"``) before the step is stopped.
        resources: Kubernetes container resources, either ``{"requests": ..., "limits": ...}``
            or a flat ``{"cpu": ..., "memory": ...}`` used as both requests and limits.
        secrets: keys of the Kubernetes Secret this step gets besides the model keys LangChain
            records (``["ACME_API_KEY"]``). Wherever the Runnable holds the compile-time value of
            such an environment variable (a header, a query parameter), its LangChain JSON
            records it by id, and the step reads it from the Secret (a pickled step cannot
            carry a secret at all).
        env: the step's environment variables: ``{"NAME": "value"}``, or a value from a key of a
            ConfigMap or Secret, ``llmstep.ConfigMapKeyRef("settings", "region")``,
            ``llmstep.SecretKeyRef("acme", "token")``. Rendered as the container's ``env`` on Argo and
            Tekton; locally a reference's value is the variable of the same name in your environment
            (or ``--secrets FILE``). Over ``compile(env=...)`` for the same name.
        rate_limit: how the step's model requests retry "rate limited" and "overloaded" answers
            (429, 503, 529): ``llmstep.RateLimit(max_attempts=, max_wait=)``; by default
            ``RateLimit()``. A step still rate limited at the end exits 75, which ``retries``
            retries. ``False`` turns it off: the model client's own retries apply, as outside llmstep.
    """

    step_name: str | None = None
    step_settings: Any = None
    step_secrets: tuple[str, ...] = ()

    def __init__(
        self,
        runnable: Any,
        *,
        name: str | None = None,
        image: str | None = None,
        retries: int = 0,
        backoff: str = "5s",
        timeout: int | str | None = None,
        resources: dict[str, Any] | None = None,
        secrets: list[str] | tuple[str, ...] = (),
        env: dict[str, Any] | None = None,
        rate_limit: RateLimit | bool | None = None,
        **kwargs: Any,
    ) -> None:
        settings = StepSettings(
            env=check_env(env, "Step(env=...)") + _rate_limit_env(rate_limit),
            image=_check_image(image),
            retries=_check_retries(retries),
            backoff=_check_backoff(backoff),
            timeout=parse_duration(timeout, "timeout"),
            resources=_check_resources(resources),
        )
        if name is not None and not (isinstance(name, str) and name.strip()):
            raise CompileError(f"Step(name=...) must be a non-empty string, got {name!r}")
        bound: Runnable = coerce_to_runnable(runnable)
        # RunnableBinding.__init__ takes **other_kwargs, but mypy reads the pydantic model's synthesized signature
        super().__init__(
            bound=bound,
            step_name=name,
            step_settings=settings,  # type: ignore[call-arg]
            step_secrets=_check_secrets(secrets),
            **kwargs,
        )

    @classmethod
    def is_lc_serializable(cls) -> bool:
        return False

    def get_name(self, suffix: str | None = None, *, name: str | None = None) -> str:
        return self.step_name or self.bound.get_name(suffix, name=name)


def parse_duration(value: int | str | None, field: str, *, allow_zero: bool = False) -> int | None:
    """Seconds from ``30``, ``"30"``, ``"90s"``, ``"5m"`` or ``"1h"``; CompileError otherwise."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise CompileError(f"Step({field}=...) must be seconds or a duration like '5m', got {value!r}")
    if isinstance(value, int):
        seconds = value
    elif isinstance(value, float):
        raise CompileError(
            f"Step({field}={value!r}) must be whole seconds (Argo's activeDeadlineSeconds and Tekton's "
            "timeout take no fractions) or a duration like '90s', '5m', '1h'"
        )
    else:
        match = _DURATION.match(str(value).strip())
        if not match:
            raise CompileError(f"Step({field}={value!r}) is not a duration; use seconds or '90s', '5m', '1h'")
        seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise CompileError(f"Step({field}=...) must be {'>= 0' if allow_zero else 'positive'}, got {value!r}")
    if seconds > MAX_SECONDS:
        raise CompileError(
            f"Step({field}={value!r}) is longer than a Kubernetes duration can hold "
            f"({MAX_SECONDS} seconds, about 292 years); give a shorter one or none"
        )
    return seconds


def _check_secrets(secrets: Any) -> tuple[str, ...]:
    # Environment variable names, which are also valid Secret keys ([-._a-zA-Z0-9]+).
    if isinstance(secrets, str) or not all(
        isinstance(k, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k) for k in secrets
    ):
        raise CompileError(f"Step(secrets=...) must be a list of environment variable names, got {secrets!r}")
    return tuple(sorted(set(secrets)))


_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
IMAGE_REFERENCE = re.compile(
    rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*(?::[\w][\w.-]{{0,127}})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?"
)
"""An image reference as container runtimes parse it (the grammar of distribution/reference)."""


def check_image(image: Any, field: str = "Step(image=...)") -> str | None:
    """``image`` if it is a valid image reference (or None); CompileError naming ``field`` if not."""
    if image is None:
        return None
    name = image.split("@")[0].rsplit(":", 1)[0] if isinstance(image, str) else ""
    if not isinstance(image, str) or not IMAGE_REFERENCE.fullmatch(image) or len(name) > 255:
        raise CompileError(
            f"{field} must be an image reference like 'registry.example.com/team/name:tag' "
            f"(lower-case path, optional :tag and @sha256:digest), got {image!r}"
        )
    return image


_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")


def check_env(env: Any, field: str) -> tuple[tuple[str, Any], ...]:
    """``env`` as ordered pairs; CompileError naming ``field`` and the variable when it is wrong."""
    from llmstep.compiler.leaks import secret_name
    from llmstep.plan import ConfigMapKeyRef, SecretKeyRef

    if env is None:
        return ()
    if not isinstance(env, dict):
        raise CompileError(f"{field} must be a dict of NAME: value, got {type(env).__name__}")
    pairs = []
    for name, value in env.items():
        if not isinstance(name, str) or not _ENV_NAME.fullmatch(name):
            raise CompileError(
                f"{field}: {name!r} is not a valid environment variable name (letters, digits, '_', '-', '.')"
            )
        if name.startswith("LLMSTEP_"):
            raise CompileError(f"{field}: {name} is reserved for llmstep's own use; choose another name")
        if isinstance(value, (SecretKeyRef, ConfigMapKeyRef)):
            for part in (value.name, value.key):
                if not isinstance(part, str) or not part:
                    raise CompileError(f"{field}: {name} refers to {value!r}; give a non-empty name and key")
        elif not isinstance(value, str):
            raise CompileError(
                f"{field}: {name} must be a string, a ConfigMapKeyRef or a SecretKeyRef, got "
                f"{type(value).__name__}; write numbers as strings ('3')"
            )
        elif secret_name(name) and value:
            raise CompileError(
                f"{field}: {name} looks like a credential, and a literal value would be written "
                f"into the Workflow in plain text; keep it in a Secret: "
                f"{name}=llmstep.SecretKeyRef('SECRET', 'KEY')"
            )
        pairs.append((name, value))
    return tuple(pairs)


def _rate_limit_env(rate_limit: Any) -> tuple[tuple[str, Any], ...]:
    """The env entry that carries ``Step(rate_limit=...)`` to the step (none for the default)."""
    if rate_limit is None or rate_limit is True:
        return ()
    if rate_limit is False:
        return ((contract.RATE_LIMIT_ENV, "off"),)
    if not isinstance(rate_limit, RateLimit):
        raise CompileError(f"Step(rate_limit=...) must be llmstep.RateLimit(...) or False, got {rate_limit!r}")
    return ((contract.RATE_LIMIT_ENV, rate_limit.env_value),)


def _check_image(image: str | None) -> str | None:
    return check_image(image)


def _check_retries(retries: int) -> int:
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise CompileError(f"Step(retries=...) must be a whole number >= 0, got {retries!r}")
    return retries


def _check_backoff(backoff: str) -> str:
    parse_duration(backoff, "backoff", allow_zero=True)
    return str(backoff) if not isinstance(backoff, int) else f"{backoff}s"


def _check_resources(resources: dict[str, Any] | None) -> dict[str, Any] | None:
    if resources is None:
        return None
    if not isinstance(resources, dict) or not resources:
        raise CompileError(f"Step(resources=...) must be a non-empty dict, got {resources!r}")
    if resources.keys() <= _RESOURCE_KEYS:
        parts = resources
    elif resources.keys() & _RESOURCE_KEYS:
        raise CompileError(
            "Step(resources=...) mixes requests/limits with flat keys; use either "
            "{'requests': {...}, 'limits': {...}} or {'cpu': ..., 'memory': ...}"
        )
    else:
        parts = {"requests": resources, "limits": resources}
    out: dict[str, Any] = {}
    for part, values in parts.items():
        if not isinstance(values, dict):
            raise CompileError(f"Step(resources={{'{part}': ...}}) must be a dict of quantities")
        for key, qty in values.items():
            if not isinstance(qty, (str, int)) or isinstance(qty, bool):
                raise CompileError(f"Step(resources) {part}.{key}={qty!r} is not a quantity like '500m' or '1Gi'")
        out[part] = {k: str(v) for k, v in values.items()}
    return out
