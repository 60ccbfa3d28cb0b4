"""Runnable -> Plan: walk the LCEL structure and apply the decomposition rules.

- ``RunnableSequence``: each element is a step, in order; nested sequences flatten.
- ``RunnableParallel`` / dict literal: one step per branch; the consumer assembles the dict.
- ``RunnablePassthrough``: no step; ``.assign(k=r)``: a step for ``r``, merged by the consumer.
- ``llmstep.Step``: one step for everything inside it, with its settings.
- Everything else: one step.

A chain whose result is not a single step's output (it ends in a parallel map, an assign or a
passthrough) gets one final ``result`` step that assembles it.
"""

from __future__ import annotations

import re
from typing import Any

from langchain_core.runnables import (
    Runnable,
    RunnableParallel,
    RunnablePassthrough,
    RunnableSequence,
)
from langchain_core.runnables.base import coerce_to_runnable
from langchain_core.runnables.passthrough import RunnableAssign

from llmstep import __version__, pickling, serde
from llmstep.errors import CompileError
from llmstep.naming import CHAIN_NAME_MAX, NameAllocator, chain_name
from llmstep.plan import Plan, PlanStep, StepSettings
from llmstep.step import Step

DEFAULT_IMAGE = f"llmstep:{__version__}"
"""The step image ``compile`` uses unless told otherwise; ``images/`` builds it under this tag."""

DEFAULT_SECRET = "llm-credentials"


def compile_plan(
    chain: Any,
    *,
    name: str | None = None,
    image: str | None = None,
    allow_pickle: bool = False,
    data: str = "artifacts",
    secret: str = DEFAULT_SECRET,
    on_failure: Any = None,
) -> Plan:
    """Turn any Runnable (or dict / function LangChain can coerce) into a Plan."""
    if on_failure is not None:
        from llmstep.diagnose import Diagnose

        if not isinstance(on_failure, Diagnose):
            raise CompileError(f"on_failure must be llmstep.Diagnose(...), got {type(on_failure).__name__}")
    try:
        runnable = coerce_to_runnable(chain)
    except Exception as exc:  # noqa: BLE001 - LangChain raises TypeError or ValueError
        raise CompileError(f"compile() needs a Runnable, got {type(chain).__name__}: {exc}") from exc
    if not secret or not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", secret):
        raise CompileError(f"secret={secret!r} is not a valid Kubernetes Secret name")
    builder = _Builder(allow_pickle=allow_pickle, secret=secret)
    shape = builder.walk(runnable, ["input"], "chain", prefix="")
    if shape[0] != "step":
        builder.add_step(RunnablePassthrough(), shape, "chain", display="result")
        shape = ["step", builder.steps[-1].name]
    wf_name = chain_name(name) if name is not None else _derive_name(builder.steps)
    return Plan(
        name=wf_name,
        steps=tuple(builder.steps),
        output=shape[1],
        image=image or DEFAULT_IMAGE,
        secret=secret,
        data=data,
        description=_describe(builder.steps),
        on_failure=on_failure,
    )


class _Builder:
    def __init__(self, *, allow_pickle: bool, secret: str) -> None:
        self.allow_pickle = allow_pickle
        self.secret = secret
        self.steps: list[PlanStep] = []
        self.names = NameAllocator()

    def walk(self, runnable: Runnable, shape: list, path: str, *, prefix: str) -> list:
        """Add the steps for ``runnable`` fed by ``shape``; return the shape of its output."""
        if isinstance(runnable, Step):
            return self.add_step(runnable.bound, shape, path, prefix=prefix, step=runnable)
        if isinstance(runnable, RunnableSequence):
            for i, element in enumerate(runnable.steps):
                shape = self.walk(element, shape, f"{path}.steps[{i}]", prefix=prefix)
            return shape
        if isinstance(runnable, RunnableParallel):
            return ["dict", self._branches(runnable, shape, path, prefix)]
        if isinstance(runnable, RunnableAssign):
            return ["merge", shape, self._branches(runnable.mapper, shape, f"{path}.mapper", prefix)]
        if type(runnable) is RunnablePassthrough and runnable.func is None and runnable.afunc is None:
            return shape
        return self.add_step(runnable, shape, path, prefix=prefix)

    def _branches(self, parallel: RunnableParallel, shape: list, path: str, prefix: str) -> dict:
        if not parallel.steps__:
            raise CompileError(f"{path} is an empty parallel map; give it at least one branch")
        return {
            key: self.walk(branch, shape, f"{path}.steps__[{key!r}]", prefix=f"{prefix}{key}-")
            for key, branch in parallel.steps__.items()
        }

    def add_step(
        self,
        runnable: Runnable,
        shape: list,
        path: str,
        *,
        prefix: str = "",
        display: str | None = None,
        step: Step | None = None,
    ) -> list:
        settings = step.step_settings if step is not None else StepSettings()
        label = display or (step.step_name if step is not None and step.step_name else None)
        if label is None:
            label = prefix + runnable.get_name()
        display_name, name = self.names.allocate(label)
        payload = {
            "llmstep": serde.FORMAT_VERSION,
            "name": name,
            "runnable": _qualname(runnable),
            "inputs": shape,
            "secret_name": self.secret,
            **self._encode(runnable, path),
        }
        self.steps.append(
            PlanStep(
                name=name,
                display=display_name,
                path=path,
                runnable=payload["runnable"],
                payload=payload,
                shape=shape,
                secrets=tuple(payload["secrets"]),
                settings=settings,
            )
        )
        return ["step", name]

    def _encode(self, runnable: Runnable, path: str) -> dict[str, Any]:
        dumped, reason = serde.dump_langchain(runnable)
        if dumped is not None:
            return serde.langchain_fields(dumped)
        if not self.allow_pickle:
            raise CompileError(
                f"{path} ({runnable.get_name()}) cannot be serialized: {reason}. "
                "Pass allow_pickle=True (or --allow-pickle) to send it by value with cloudpickle, "
                "or wrap a serializable part in llmstep.Step"
            )
        where = f"{path} ({runnable.get_name()})"
        return serde.pickle_fields(pickling.dumps(runnable, where=where))


def _qualname(runnable: Runnable) -> str:
    cls = type(runnable)
    return f"{cls.__module__}.{cls.__qualname__}"


def _derive_name(steps: list[PlanStep]) -> str:
    """A workflow name from the chain's first and last steps, e.g. ``chatprompttemplate-stroutputparser``."""
    first, last = steps[0].name, steps[-1].name
    joined = first if first == last else f"{first}-{last}"
    return chain_name(joined[:CHAIN_NAME_MAX].rstrip("-"))


def _describe(steps: list[PlanStep]) -> str:
    lines = [f"llmstep chain of {len(steps)} step(s):", ""]
    lines += [f"- `{s.display}`: {s.runnable.rsplit('.', 1)[-1]} ({s.path})" for s in steps[:50]]
    if len(steps) > 50:
        lines.append(f"- … and {len(steps) - 50} more")
    return "\n".join(lines)


def single_step(runnable: Runnable, *, allow_pickle: bool = False, secret: str = DEFAULT_SECRET, name: str | None = None) -> PlanStep:
    """One Runnable as one step fed by the call's input, not decomposed (``KubernetesRunnable``)."""
    builder = _Builder(allow_pickle=allow_pickle, secret=secret)
    builder.add_step(runnable, ["input"], "runnable", display=name)
    return builder.steps[0]
