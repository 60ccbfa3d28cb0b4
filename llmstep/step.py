"""``llmstep.Step``: an explicit step boundary with per-step settings."""

from __future__ import annotations

import re
from typing import Any

from langchain_core.runnables import Runnable, RunnableBinding
from langchain_core.runnables.base import coerce_to_runnable

from llmstep.errors import CompileError
from llmstep.plan import StepSettings

_DURATION = re.compile(r"^(\d+)(s|m|h)?$")
_UNITS = {None: 1, "s": 1, "m": 60, "h": 3600}
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
        **kwargs: Any,
    ) -> None:
        settings = StepSettings(
            image=_check_image(image),
            retries=_check_retries(retries),
            backoff=_check_backoff(backoff),
            timeout=parse_duration(timeout, "timeout"),
            resources=_check_resources(resources),
        )
        if name is not None and not (isinstance(name, str) and name.strip()):
            raise CompileError(f"Step(name=...) must be a non-empty string, got {name!r}")
        bound: Runnable = coerce_to_runnable(runnable)
        super().__init__(bound=bound, step_name=name, step_settings=settings, step_secrets=_check_secrets(secrets),
                         **kwargs)  # fmt: skip

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
    else:
        match = _DURATION.match(str(value).strip())
        if not match:
            raise CompileError(f"Step({field}={value!r}) is not a duration; use seconds or '90s', '5m', '1h'")
        seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise CompileError(f"Step({field}=...) must be {'>= 0' if allow_zero else 'positive'}, got {value!r}")
    return seconds


def _check_secrets(secrets: Any) -> tuple[str, ...]:
    # Environment variable names, which are also valid Secret keys ([-._a-zA-Z0-9]+).
    if isinstance(secrets, str) or not all(isinstance(k, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k)
                                           for k in secrets):  # fmt: skip
        raise CompileError(f"Step(secrets=...) must be a list of environment variable names, got {secrets!r}")
    return tuple(sorted(set(secrets)))


def _check_image(image: str | None) -> str | None:
    if image is not None and (not isinstance(image, str) or not image.strip() or " " in image):
        raise CompileError(f"Step(image=...) must be an image reference like 'repo/name:tag', got {image!r}")
    return image


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
