"""A local run's state, typed: :class:`RunState` and its :class:`NodeState` nodes.

This is what ``status.json`` holds, in the shape of Argo's ``status`` (its keys are Argo's, in
camelCase)::

    {"engine", "phase", "startedAt", "finishedAt", "message", "resumedAt", "arguments",
     "outputTask", "batch", "history", "nodes": {TASK: {"id", "displayName", "templateName",
     "type", "phase", "startedAt", "finishedAt", "message", "exitCode", "attempts", "exitHandler",
     "outputs": {"parameters": [{"name", "value"}], "artifacts": [{"name", "path", "localPath"}]}}}}

:meth:`RunState.from_json` reads it (refusing what is not a record, with the reason) and
:meth:`RunState.to_json` writes it back: a field that is None is not written, and keys this
version does not know are kept as they were. The runners, the record, the progress reporters and
the CLI read and change these objects, never the dicts.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmstep.contract import ACTIVE, Phase
from llmstep.local import values


class NotARecord(ValueError):
    """What makes a status.json not a run record (hand edited, cut short)."""


@dataclass
class Parameter:
    """An output parameter (a Tekton result)."""

    name: str
    value: Any
    """The text (a stored value's reference while the record's big values are not read back)."""


@dataclass
class Artifact:
    """An output artifact: a file of the step's."""

    name: str
    path: str
    """Where the step wrote it, in the step's own places."""
    local_path: str
    """Where it is on this machine."""


@dataclass
class Outputs:
    """What a step produced: Argo's output parameters (Tekton's results) and artifacts."""

    parameters: list[Parameter] = field(default_factory=list)
    artifacts: list[Artifact] = field(default_factory=list)

    def parameter(self, name: str) -> Any:
        """The value of the parameter ``name``, None without one."""
        return next((p.value for p in self.parameters if p.name == name), None)

    def artifact(self, name: str) -> Artifact | None:
        return next((a for a in self.artifacts if a.name == name), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "parameters": [{"name": p.name, "value": p.value} for p in self.parameters],
            "artifacts": [{"name": a.name, "path": a.path, "localPath": a.local_path} for a in self.artifacts],
        }

    @classmethod
    def from_json(cls, data: Any, where: str) -> Outputs:
        if not isinstance(data, dict):
            raise NotARecord(f"{where} is {type(data).__name__}, not dict")
        params, arts = data.get("parameters") or [], data.get("artifacts") or []
        if not isinstance(params, list) or not all(
            isinstance(p, dict) and isinstance(p.get("name"), str) for p in params
        ):
            raise NotARecord(f"{where}.parameters is not a list of named parameters")
        if not isinstance(arts, list) or not all(
            isinstance(a, dict) and all(isinstance(a.get(k), str) for k in ("name", "path", "localPath")) for a in arts
        ):
            raise NotARecord(f"{where}.artifacts is not a list of artifacts with a name, a path and a localPath")
        return cls(
            [Parameter(p["name"], p.get("value")) for p in params],
            [Artifact(a["name"], a["path"], a["localPath"]) for a in arts],
        )


# (key in status.json, attribute, type): the order status.json lists them in
_NODE_KEYS = (
    ("id", "id", str),
    ("displayName", "display_name", str),
    ("templateName", "template_name", str),
    ("type", "type", str),
    ("phase", "phase", str),
    ("startedAt", "started_at", str),
    ("finishedAt", "finished_at", str),
    ("message", "message", str),
    ("exitCode", "exit_code", int),
    ("attempts", "attempts", int),
    ("exitHandler", "exit_handler", bool),
    ("outputs", "outputs", dict),
)


@dataclass
class NodeState:
    """One node of a run: a step (Argo's ``Pod``), an item group (``TaskGroup``) or a nested
    ``DAG``; ``None`` is a field the node does not have (yet)."""

    id: str
    display_name: str
    phase: Phase = Phase.PENDING
    template_name: str | None = None
    type: str | None = None
    """``TaskGroup`` or ``DAG``; None for a step (Argo's ``Pod``)."""
    started_at: str | None = None
    finished_at: str | None = None
    message: str | None = None
    exit_code: int | None = None
    attempts: int | None = None
    exit_handler: bool | None = None
    outputs: Outputs | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    """Keys of the node this version does not know: kept as they were."""

    @property
    def is_step(self) -> bool:
        return self.type in (None, "Pod")

    @property
    def ended(self) -> bool:
        return self.phase not in ACTIVE

    def output(self, name: str = "output") -> str | None:
        """The text of the output ``name``: its artifact's file, else its parameter."""
        if self.outputs is None:
            return None
        artifact = self.outputs.artifact(name)
        if artifact is not None:
            return Path(artifact.local_path).read_text(encoding="utf-8")
        return self.outputs.parameter(name)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, attr, _ in _NODE_KEYS:
            value = getattr(self, attr)
            if value is not None:
                out[key] = value.to_json() if isinstance(value, Outputs) else str(value) if key == "phase" else value
        return out | self.extra

    @classmethod
    def from_json(cls, task: str, data: Any) -> NodeState:
        if not isinstance(data, dict):
            raise NotARecord(f"node {task!r} is not an object")
        fields: dict[str, Any] = {}
        for key, attr, kind in _NODE_KEYS:
            value = data.get(key)
            if value is None:
                continue
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise NotARecord(f"node {task!r}: {key} is {type(value).__name__}, not {kind.__name__}")
            fields[attr] = value
        fields["phase"] = _phase(fields.get("phase", Phase.PENDING), f"node {task!r}: phase")
        if "outputs" in fields:
            fields["outputs"] = Outputs.from_json(fields["outputs"], f"node {task!r}: outputs")
        fields.setdefault("id", task)
        fields.setdefault("display_name", task)
        extra = {k: v for k, v in data.items() if k not in {key for key, _, _ in _NODE_KEYS}}
        return cls(**fields, extra=extra)


_RUN_KEYS = (
    ("engine", "engine", str),
    ("phase", "phase", str),
    ("startedAt", "started_at", str),
    ("finishedAt", "finished_at", str),
    ("message", "message", str),
    ("resumedAt", "resumed_at", str),
    ("arguments", "arguments", dict),
    ("outputTask", "output_task", str),
    ("batch", "batch", bool),
    ("history", "history", list),
    ("nodes", "nodes", dict),
)
_NEVER_NULL = {"phase", "startedAt", "finishedAt", "message", "arguments", "nodes"}


@dataclass
class RunState:
    """A run: its phase, the arguments it was given, and its nodes by task name, in the order
    they were created (the documents' order), which ``llmstep show`` lists them by."""

    engine: str = "argo"
    phase: Phase = Phase.PENDING
    started_at: str | None = None
    finished_at: str | None = None
    message: str | None = None
    resumed_at: str | None = None
    arguments: dict[str, Any] = field(default_factory=dict)
    output_task: str | None = None
    """The task whose output is the chain's result."""
    batch: bool | None = None
    """A batch run: its result is a list, one item per input."""
    history: list[dict[str, Any]] | None = None
    """The outcome of each earlier attempt of a resumed run: phase, message, finishedAt, failures."""
    nodes: dict[str, NodeState] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    """Keys this version does not know: kept as they were."""

    @property
    def ended(self) -> bool:
        return self.phase not in ACTIVE

    def steps(self) -> Iterator[tuple[str, NodeState]]:
        """The nodes that are steps (not item groups, not nested DAGs)."""
        return ((task, node) for task, node in self.nodes.items() if node.is_step)

    def usage(self) -> dict[str, dict[str, Any]]:
        """The run's tokens per model: the sum of its steps' ``usage`` outputs (see :mod:`llmstep.usage`)."""
        from llmstep import usage

        return usage.totals(node.outputs.parameter("usage") for _, node in self.steps() if node.outputs is not None)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, attr, _ in _RUN_KEYS:
            value = getattr(self, attr)
            if key == "nodes":
                out[key] = {task: node.to_json() for task, node in value.items()}
            elif value is not None:
                out[key] = str(value) if key == "phase" else value
        return out | self.extra

    @classmethod
    def from_json(cls, data: Any) -> RunState:
        """The state status.json holds; NotARecord saying what is wrong when it is not a record."""
        if not isinstance(data, dict):
            raise NotARecord(f"a JSON {type(data).__name__}, not an object")
        fields: dict[str, Any] = {}
        for key, attr, kind in _RUN_KEYS:
            if key in data and not isinstance(data[key], kind) and (data[key] is not None or key in _NEVER_NULL):
                raise NotARecord(f"{key} is {type(data[key]).__name__}, not {kind.__name__}")
            if data.get(key) is not None:
                fields[attr] = data[key]
        nodes = fields.get("nodes", {})
        bad = [k for k, v in nodes.items() if not isinstance(v, dict)]
        if bad:
            raise NotARecord(f"node {bad[0]!r} is not an object")
        bad = [k for k in nodes if not k or k in (".", "..") or Path(k).name != k]
        if bad:
            raise NotARecord(f"node name {bad[0]!r} is not a step folder's name")
        bad = [
            k for k, v in fields.get("arguments", {}).items() if not isinstance(v, (str, list)) and not values.is_ref(v)
        ]
        if bad:
            raise NotARecord(f"argument {bad[0]!r} is not text")
        fields["phase"] = _phase(fields.get("phase", Phase.PENDING), "phase")
        fields["nodes"] = {task: NodeState.from_json(task, node) for task, node in nodes.items()}
        extra = {k: v for k, v in data.items() if k not in {key for key, _, _ in _RUN_KEYS}}
        return cls(**fields, extra=extra)


def _phase(value: str, where: str) -> Phase:
    try:
        return Phase(value)
    except ValueError:
        raise NotARecord(f"{where} {value!r} is not a phase ({', '.join(Phase)})") from None
