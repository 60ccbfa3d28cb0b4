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

import base64
import dataclasses
import json
import re
import warnings
from collections.abc import Mapping
from typing import Any

from langchain_core.runnables import Runnable, RunnableParallel, RunnablePassthrough, RunnableSequence
from langchain_core.runnables.base import coerce_to_runnable
from langchain_core.runnables.passthrough import RunnableAssign

from llmstep import __version__, contract, payloads, serde, shapes, valueclasses
from llmstep.compiler import graphs, leaks, leaks_pickled, pickling, valuetypes
from llmstep.compiler.naming import NameAllocator, chain_name
from llmstep.compiler.step import Step, check_env, check_image
from llmstep.errors import CompileError, CredentialsWarning
from llmstep.naming import CHAIN_NAME_MAX
from llmstep.plan import Plan, PlanStep, StepSettings

DEFAULT_IMAGE = f"llmstep:{__version__}"
"""The step image ``compile`` uses unless told otherwise; ``images/`` builds it under this tag."""

DEFAULT_SECRET = contract.DEFAULT_SECRET


def compile_plan(
    chain: Any,
    *,
    name: str | None = None,
    image: str | None = None,
    allow_pickle: bool = False,
    data: str = "artifacts",
    secret: str = DEFAULT_SECRET,
    on_failure: Any = None,
    environ: Mapping[str, str] | None = None,
    stacklevel: int = 2,
    value_types: Any = (),
    env: Any = None,
) -> Plan:
    """Turn any Runnable (or dict / function LangChain can coerce) into a Plan.

    ``environ`` is the compile-time environment: the values of its secret-named variables are
    refused anywhere in a payload, and a model key given in code is compared with it. A key
    given in code is a ``CredentialsWarning`` at ``stacklevel`` (as in ``warnings.warn``, counted from
    here: 2 is the caller)."""
    if on_failure is not None:
        from llmstep.diagnose.settings import Diagnose

        if not isinstance(on_failure, Diagnose):
            raise CompileError(f"on_failure must be llmstep.Diagnose(...), got {type(on_failure).__name__}")
    try:
        runnable = coerce_to_runnable(chain)
    except Exception as exc:  # LangChain raises TypeError or ValueError
        raise CompileError(f"compile() needs a Runnable, got {type(chain).__name__}: {exc}") from exc
    check_image(image, "image")
    if not secret or not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", secret):
        raise CompileError(f"secret={secret!r} is not a valid Kubernetes Secret name")
    builder = _Builder(
        allow_pickle=allow_pickle,
        secret=secret,
        environ=environ,
        value_types=value_types,
        env=check_env(env, "compile(env=...)"),
    )
    if on_failure is not None:
        findings = leaks.scan_settings(on_failure, "on_failure", builder.env_values)
        if findings:
            raise leaks.refusal(
                "on_failure (Diagnose)",
                findings,
                secret,
                pickled=False,
                advice=(
                    f"The diagnosis step reads its model key ({on_failure.key}) from the Kubernetes Secret "
                    f"{secret!r}; give the settings without credentials."
                ),
            )
    shape = builder.walk(runnable, shapes.chain_input(), "chain", prefix="")
    builder.warn_inline(stacklevel)
    graphs.warn_one_step(builder.graph_notes, stacklevel)
    output = shapes.output_step(shape)
    if output is None:
        builder.add_step(RunnablePassthrough(), shape, "chain", display="result")
        output = builder.steps[-1].name
    classes = builder.declare_values()
    wf_name = chain_name(name) if name is not None else _derive_name(builder.steps)
    return Plan(
        name=wf_name,
        steps=tuple(builder.steps),
        output=output,
        image=image or DEFAULT_IMAGE,
        secret=secret,
        data=data,
        description=_describe(builder.steps),
        on_failure=on_failure,
        value_classes=classes,
    )


class _Builder:
    def __init__(
        self,
        *,
        allow_pickle: bool,
        secret: str,
        environ: Mapping[str, str] | None = None,
        value_types: Any = (),
        env: tuple = (),
    ) -> None:
        self.allow_pickle = allow_pickle
        self.env = env
        self.values = valuetypes.Collector(value_types)
        self.secret = secret
        self.environ = dict(environ or {})
        self.env_values = leaks.secret_env(self.environ)
        self.inline: list[leaks.InlineKey] = []
        self.steps: list[PlanStep] = []
        self.names = NameAllocator()
        self.graph_notes: list[str] = []

    def warn_inline(self, stacklevel: int) -> None:
        """One CredentialsWarning per secret id given in code with another value than the environment's."""
        by_id: dict[str, list[leaks.InlineKey]] = {}
        for key in self.inline:
            by_id.setdefault(key.secret_id, []).append(key)
        for keys in by_id.values():
            warnings.warn(
                leaks.in_code_warning(keys, self.environ, self.secret), CredentialsWarning, stacklevel=stacklevel + 1
            )

    def walk(self, runnable: Runnable, shape: list, path: str, *, prefix: str) -> list:
        """Add the steps for ``runnable`` fed by ``shape``; return the shape of its output."""
        if isinstance(runnable, Step):
            return self.add_step(runnable.bound, shape, path, prefix=prefix, step=runnable)
        if isinstance(runnable, RunnableSequence):
            for i, element in enumerate(runnable.steps):
                shape = self.walk(element, shape, f"{path}.steps[{i}]", prefix=prefix)
            return shape
        if isinstance(runnable, RunnableParallel):
            return shapes.dict_of(self._branches(runnable, shape, path, prefix))
        if isinstance(runnable, RunnableAssign):
            return shapes.merged(shape, self._branches(runnable.mapper, shape, f"{path}.mapper", prefix))
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
        settings = self._with_env(settings, path)
        label = display or (step.step_name if step is not None and step.step_name else None)
        if label is None:
            label = prefix + (run_name(runnable) or runnable.get_name())
        display_name, name = self.names.allocate(label)
        valuetypes.check_output(runnable, f"step {display_name!r} ({path}, {runnable.get_name()})")
        self.graph_notes += filter(None, [graphs.one_step_note(runnable, display_name)])
        self.values.runnable(runnable)
        payload = {
            "llmstep": serde.FORMAT_VERSION,
            "name": name,
            "runnable": _qualname(runnable),
            shapes.KEY: shape,
            "secret_name": self.secret,
            **self._encode(runnable, path, step.step_secrets if step is not None else ()),
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
        return shapes.step_output(name)

    def _encode(self, runnable: Runnable, path: str, declared: tuple[str, ...] = ()) -> dict[str, Any]:
        where = f"{path} ({runnable.get_name()})"
        inline, unrecorded = leaks.model_secrets(runnable, path)
        dumped, reason = payloads.dump_langchain(runnable)
        if dumped is not None:
            dumped = self._by_id(dumped, declared)
            findings = leaks.scan_dump(dumped, path, self.env_values)
        elif unrecorded:
            findings = unrecorded  # the reason it cannot be LangChain JSON, and never a pickle
        elif not self.allow_pickle:
            raise CompileError(
                f"{where} cannot be serialized: {graphs.unserializable_reason(runnable, reason)}. "
                "Pass allow_pickle=True (or --allow-pickle) to send it by value with cloudpickle, "
                "or wrap a serializable part in llmstep.Step"
            )
        else:
            findings = leaks_pickled.scan_object(runnable, path, self.env_values)
        if findings:
            advice = leaks.UNRECORDED_ADVICE.format(secret=self.secret) if findings is unrecorded else ""
            raise leaks.refusal(where, findings, self.secret, pickled=dumped is None, advice=advice)
        if dumped is not None:
            fields = payloads.langchain_fields(dumped)
            text = json.dumps(fields["data"], ensure_ascii=False).encode("utf-8")
        else:
            fields = payloads.pickle_fields(pickling.dumps(runnable, where=where))
            text = base64.b64decode(fields["data"])
        fields["secrets"] = sorted({*fields["secrets"], *declared})
        # The last net: no known secret value in the payload's bytes, whatever path it took.
        known = {value: f"the value of the environment variable {name}" for value, name in self.env_values.items()}
        known |= {k.value: f"the key given in code at {k.path}" for k in inline}
        hits = leaks.in_bytes(text, known)
        if hits:
            found = [leaks.Finding(path, f"its serialized payload contains {hit}") for hit in hits]
            raise leaks.refusal(where, found, self.secret, pickled=dumped is None)
        self.inline += [k for k in inline if self.environ.get(k.secret_id) != k.value]
        return fields

    def _with_env(self, settings: StepSettings, path: str) -> StepSettings:
        """The step's env over the chain's (``compile(env=...)``), checked for known secret values."""
        own = dict(settings.env)
        merged = tuple((k, v) for k, v in self.env if k not in own) + settings.env
        for name, value in merged:
            if isinstance(value, str) and value.strip() in self.env_values:
                raise CompileError(
                    f"{path}: env {name} holds the value of the environment variable {self.env_values[value.strip()]}, "
                    f"a secret, which would be written into the Workflow in plain text; use "
                    f"llmstep.SecretKeyRef('{self.secret}', '{self.env_values[value.strip()]}')"
                )
        return dataclasses.replace(settings, env=merged) if merged != settings.env else settings

    def declare_values(self) -> tuple[type, ...]:
        """Record in every payload the value classes the chain vouches for (see :mod:`llmstep.valueclasses`);
        those from the user's own code travel by value, which needs ``allow_pickle``."""
        classes = {valueclasses.class_path(c): c for c in self.values.classes}
        if not classes:
            return ()
        field: dict[str, Any] = {"classes": sorted(classes)}
        local = {p: c for p, c in classes.items() if _by_value(c)}
        if local:
            if not self.allow_pickle:
                names = ", ".join(sorted(c.__qualname__ for c in local.values()))
                raise CompileError(
                    f"the chain passes values of {names}, defined in your own code, between steps; the steps "
                    "get such classes by value with cloudpickle: pass allow_pickle=True (or --allow-pickle), "
                    "or install their module in the step image"
                )
            blob = pickling.dumps(local, where="the chain's value classes")
            known = {value: f"the value of the environment variable {name}" for value, name in self.env_values.items()}
            hits = leaks.in_bytes(blob, known)
            if hits:
                found = [leaks.Finding("value_types", f"the pickled value classes contain {hit}") for hit in hits]
                raise leaks.refusal("the chain's value classes", found, self.secret, pickled=True)
            pickled = payloads.pickle_fields(blob)
            field["pickle"] = {k: pickled[k] for k in ("data", "sha256", "python")} | {"classes": sorted(local)}
        for step in self.steps:
            step.payload["values"] = field
        return tuple(classes.values())

    def _by_id(self, dumped: dict, declared: tuple[str, ...]) -> dict:
        """``dumped`` with every string equal to a declared key's compile-time value recorded by id
        (``{"lc": 1, "type": "secret", "id": [KEY]}``), as LangChain records a model's own key."""
        values = {self.environ[k]: k for k in declared if self.environ.get(k)}
        if not values:
            return dumped

        def replace(node: Any) -> Any:
            if isinstance(node, str) and node in values:
                return {"lc": 1, "type": "secret", "id": [values[node]]}
            if isinstance(node, dict):
                return {key: replace(value) for key, value in node.items()}
            if isinstance(node, list):
                return [replace(value) for value in node]
            return node

        return replace(dumped)


def _by_value(cls: type) -> bool:
    return (
        cls.__module__ in ("__main__", "__mp_main__")
        or "<locals>" in cls.__qualname__
        or pickling.is_user_module(cls.__module__)
    )


def run_name(runnable: Runnable) -> str | None:
    """The name LangSmith gives a Runnable's run: the ``run_name`` of its outermost binding that
    sets one (``.with_config(run_name=...)``; an outer config overrides an inner one when invoked)."""
    from langchain_core.runnables.base import RunnableBindingBase

    while isinstance(runnable, RunnableBindingBase):
        name = (runnable.config or {}).get("run_name")
        if isinstance(name, str) and name.strip():
            return name
        runnable = runnable.bound
    return None


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


def single_step(
    runnable: Runnable,
    *,
    allow_pickle: bool = False,
    secret: str = DEFAULT_SECRET,
    name: str | None = None,
    environ: Mapping[str, str] | None = None,
    stacklevel: int = 2,
    value_types: Any = (),
) -> PlanStep:
    """One Runnable as one step fed by the call's input, not decomposed (``KubernetesRunnable``)."""
    builder = _Builder(allow_pickle=allow_pickle, secret=secret, environ=environ, value_types=value_types)
    builder.add_step(runnable, shapes.chain_input(), "runnable", display=name)
    builder.declare_values()
    builder.warn_inline(stacklevel)
    return builder.steps[0]
