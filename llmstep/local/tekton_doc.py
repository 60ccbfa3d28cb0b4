"""Read a Tekton document set once: check that what its PipelineRun (or TaskRun) uses stays inside
what the local runner runs, and parse it into the typed :class:`PipelineRun` that
:mod:`llmstep.local.tekton` walks.

The set is checked first as Tekton's admission webhook checks it
(:func:`llmstep.render.tekton_checks.check_documents`). Then each task the run uses: its Task is in
the documents (llmstep's own Tasks are built in), its ``retries`` and ``timeout`` are well formed,
its Task has one step that uses only the fields the runner knows (:data:`STEP_KEYS`), and that
step runs ``llmstep exec`` or ``llmstep diagnose`` with its paths in its workspaces and results
(:mod:`llmstep.local.command`). The PipelineRun's workspaces are names (a Secret's items relative
paths) and its ``timeouts`` are Tekton's (:class:`~llmstep.local.tekton_time.Deadlines`).

A TaskRun runs as a one-task Pipeline whose params and workspaces pass straight through. The run
never reads the documents' dicts again: every field it uses is here, checked and typed (durations
in seconds), so a bad value fails before the first task, with its place, and never half way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmstep import contract
from llmstep.errors import WorkflowError
from llmstep.local.attempts import seconds
from llmstep.local.command import TEKTON_PLACES, check_prefixes
from llmstep.local.command import parse as parse_command
from llmstep.local.process import EnvVar
from llmstep.local.tekton_time import Deadlines
from llmstep.render.tekton import DIAGNOSE_TASK, TASK_NAME, diagnose_task, run_task
from llmstep.render.tekton_checks import check_documents

STEP_KEYS = frozenset({"name", "image", "command", "args", "env", "computeResources", "securityContext", "workingDir"})
"""The fields of a step the local runner runs (the others, ``script`` among them, it refuses)."""

_VAR = re.compile(r"\$\(([^)]+)\)")

Value = str | list[str]
"""A param's value: a string, or an array param's strings."""


# ---------------------------------------------------------------- the typed documents


@dataclass(frozen=True)
class Param:
    """A param a Pipeline or a Task declares, and its ``default`` (None: it has none)."""

    name: str
    default: Value | None = None


@dataclass(frozen=True)
class Step:
    """A Task's one step: its name (``""`` when it has none), image, command and args as one argv,
    and env."""

    name: str
    image: str
    argv: tuple[str, ...]
    env: tuple[EnvVar, ...] = ()


@dataclass(frozen=True)
class TaskSpec:
    """A Task's spec: the params, results and workspaces it declares, and its step."""

    step: Step
    params: tuple[Param, ...] = ()
    results: tuple[str, ...] = ()
    workspaces: tuple[str, ...] = ()


@dataclass(frozen=True)
class When:
    """A ``when`` expression: the task runs when ``input`` is (``in``) or is not (``notin``) one
    of ``values``, each substituted first."""

    input: str
    operator: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class PipelineTask:
    """A task of a Pipeline (or of its ``finally``): its Task, the params and workspaces it gives
    it, what it waits for and its settings.

    ``template`` is the name of the Task it refers to (``taskSpec`` for an inline one); ``deps``
    are its ``runAfter`` and the regular tasks whose results its params read; ``timeout`` is in
    seconds (None: none).
    """

    name: str
    display_name: str
    template: str
    task: TaskSpec
    params: tuple[tuple[str, Value], ...] = ()
    workspaces: tuple[tuple[str, str], ...] = ()
    deps: tuple[str, ...] = ()
    when: tuple[When, ...] = ()
    retries: int = 0
    timeout: float | None = None


@dataclass(frozen=True)
class Pipeline:
    """A Pipeline: its params, its tasks and its ``finally`` tasks, in the document's order, and
    the task its ``llmstep.dev/output-task`` annotation names."""

    tasks: tuple[PipelineTask, ...]
    final: tuple[PipelineTask, ...] = ()
    params: tuple[Param, ...] = ()
    output_task: str | None = None

    @property
    def uses(self) -> tuple[PipelineTask, ...]:
        """The regular tasks, then the ``finally`` ones."""
        return (*self.tasks, *self.final)

    @property
    def param_names(self) -> list[str]:
        return [p.name for p in self.params]


@dataclass(frozen=True)
class Workspace:
    """A workspace the run binds: a directory, or a Secret holding its listed ``items`` (key,
    path), or every key when it lists none."""

    name: str
    secret: bool = False
    items: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class PipelineRun:
    """A PipelineRun (or a TaskRun, as a one-task Pipeline) inside the local subset, checked and
    parsed once by :func:`parse`.

    ``documents`` are the dicts it was read from, kept for what looks at a document set as a whole
    (the payload classes a fork server preloads); the run walks the rest. ``output_task`` is the
    run's own ``llmstep.dev/output-task`` annotation.
    """

    documents: tuple[dict[str, Any], ...] = field(repr=False, compare=False)
    kind: str
    pipeline: Pipeline
    params: Mapping[str, Value] = field(default_factory=dict)
    workspaces: tuple[Workspace, ...] = ()
    deadlines: Deadlines = field(default_factory=Deadlines)
    namespace: str = "default"
    pipeline_name: str = "pipeline"
    output_task: str | None = None


# ---------------------------------------------------------------- checking and parsing


def split_documents(docs: list[dict[str, Any]], default_image: str) -> tuple[dict, dict, dict]:
    """(run, pipeline specs by name, task specs by name) of a document set; llmstep's own Tasks
    are built in."""
    runs = [d for d in docs if d.get("kind") in ("PipelineRun", "TaskRun")]
    if len(runs) != 1:
        raise WorkflowError(
            f"expected exactly one PipelineRun or TaskRun (or one Pipeline, which gets a run), found {len(runs)}"
        )
    tasks = {TASK_NAME: run_task(default_image)["spec"], DIAGNOSE_TASK: diagnose_task(default_image)["spec"]}
    tasks.update({str(_meta(d).get("name")): d.get("spec") for d in docs if d.get("kind") == "Task"})
    pipelines = {_meta(d).get("name"): d for d in docs if d.get("kind") == "Pipeline"}
    return runs[0], pipelines, tasks


def parse(docs: list[dict[str, Any]], default_image: str) -> PipelineRun:
    """The run of a document set as a :class:`PipelineRun`; WorkflowError naming the first field
    outside the supported subset or with a bad value."""
    run, pipelines, tasks = split_documents(docs, default_image)
    builtin = (
        []
        if any(d.get("kind") == "Task" and _meta(d).get("name") == TASK_NAME for d in docs)
        else [
            {"apiVersion": "tekton.dev/v1", "kind": "Task", "metadata": {"name": TASK_NAME}, "spec": tasks[TASK_NAME]}
        ]
    )
    try:
        check_documents([*docs, *builtin])
    except Exception as exc:
        raise WorkflowError(str(exc)) from exc
    spec, meta = run["spec"], _meta(run)
    output_task = None
    if run["kind"] == "PipelineRun":
        ref = spec.get("pipelineRef") or {}
        document = pipelines.get(ref.get("name")) if "pipelineSpec" not in spec else None
        if document is None and "pipelineSpec" not in spec:
            raise WorkflowError(f"PipelineRun references Pipeline {ref.get('name')!r}, which is not in the documents")
        pipeline_spec = spec["pipelineSpec"] if document is None else document["spec"]
        output_task = _annotations(document).get(contract.OUTPUT_TASK) if document else None
    else:
        pipeline_spec = _task_run_pipeline(spec, tasks)
    pipeline = _pipeline(pipeline_spec, tasks, output_task)
    given = {
        _name(p, f"spec.params[{i}]"): _value(_field(p, "value", f"spec.params[{i}]"))
        for i, p in enumerate(_list(spec, "params", "spec"))
    }
    return PipelineRun(
        documents=tuple(docs),
        kind=run["kind"],
        pipeline=pipeline,
        params=given,
        workspaces=tuple(
            _workspace(b, f"spec.workspaces[{i}]") for i, b in enumerate(_list(spec, "workspaces", "spec"))
        ),
        deadlines=Deadlines.of(spec),
        namespace=str(meta.get("namespace", "default")),
        pipeline_name=str((spec.get("pipelineRef") or {}).get("name", "pipeline")),
        output_task=_annotations(run).get(contract.OUTPUT_TASK),
    )


def _task_run_pipeline(spec: dict[str, Any], tasks: dict[str, Any]) -> dict[str, Any]:
    """A TaskRun as a one-task Pipeline whose params and workspaces pass straight through."""
    task_name = (spec.get("taskRef") or {}).get("name")
    task_spec = spec.get("taskSpec") or tasks.get(task_name or "")
    if task_spec is None:
        raise WorkflowError(f"TaskRun references Task {task_name!r}, which is not in the documents")
    arrays = {
        _name(p, f"spec.params[{i}]"): isinstance(p.get("value"), list)
        for i, p in enumerate(_list(spec, "params", "spec"))
    }
    workspaces = [_name(w, f"spec.workspaces[{i}]") for i, w in enumerate(_list(spec, "workspaces", "spec"))]
    return {
        "params": [{"name": name, "type": "array" if array else "string"} for name, array in arrays.items()],
        "workspaces": [{"name": name} for name in workspaces],
        "tasks": [
            {
                "name": task_name or "task",
                "taskSpec": task_spec,
                "params": [
                    {"name": name, "value": f"$(params.{name}[*])" if array else f"$(params.{name})"}
                    for name, array in arrays.items()
                ],
                "workspaces": [{"name": name, "workspace": name} for name in workspaces],
                **({"retries": spec["retries"]} if "retries" in spec else {}),
                **({"timeout": spec["timeout"]} if "timeout" in spec else {}),
            }
        ],
    }


def _pipeline(spec: dict[str, Any], tasks: dict[str, Any], output_task: str | None) -> Pipeline:
    regular = _list(spec, "tasks", "spec")
    regular_names = {str(use.get("name")) for use in regular if isinstance(use, dict)}
    parsed = {
        part: tuple(
            _pipeline_task(use, f"{part}[{i}]", tasks, regular_names if part == "tasks" else None)
            for i, use in enumerate(_list(spec, part, "spec"))
        )
        for part in ("tasks", "finally")
    }
    return Pipeline(
        tasks=parsed["tasks"],
        final=parsed["finally"],
        output_task=output_task,
        params=tuple(_param(p, f"Pipeline params[{i}]") for i, p in enumerate(_list(spec, "params", "Pipeline"))),
    )


def _pipeline_task(use: Any, where: str, tasks: dict[str, Any], regular: set[str] | None) -> PipelineTask:
    """A task of the Pipeline (``regular``: the names of the regular tasks, None for a finally one)."""
    if not isinstance(use, dict):
        raise WorkflowError(f"{where} must be a mapping, found {type(use).__name__}")
    name = _name(use, where)
    place = f"{where} ({name})"
    retries, timeout = _settings(use, place)
    ref = (use.get("taskRef") or {}).get("name")
    spec = use.get("taskSpec") or tasks.get(ref or "")
    if spec is None:
        raise WorkflowError(
            f"task {name}: Task {ref!r} is not in the documents; give its file too "
            "(llmstep run pipelinerun.yaml tasks.yaml)"
        )
    task = _task_spec(spec, f"task {name}")
    params = tuple(
        (_name(p, f"{place}.params[{j}]"), _value(_field(p, "value", f"{place}.params[{j}]")))
        for j, p in enumerate(_list(use, "params", place))
    )
    refs = {m.split(".")[1] for m in _VAR.findall(json.dumps(use.get("params") or [])) if m.startswith("tasks.")}
    deps = set(_strings(use, "runAfter", place)) | (refs & regular if regular is not None else set())
    return PipelineTask(
        name=name,
        display_name=str(use.get("displayName", name)),
        template=str(ref) if ref else "taskSpec",
        task=task,
        params=params,
        workspaces=tuple(
            (_name(b, f"{place}.workspaces[{j}]"), str(_field(b, "workspace", f"{place}.workspaces[{j}]")))
            for j, b in enumerate(_list(use, "workspaces", place))
        ),
        deps=tuple(sorted(deps)),
        when=tuple(_when(w, f"{place}.when[{j}]") for j, w in enumerate(_list(use, "when", place))),
        retries=retries,
        timeout=timeout,
    )


def _settings(use: dict[str, Any], where: str) -> tuple[int, float | None]:
    """A task's retries and timeout (seconds; None: none), checked with the field's place."""
    retries = use.get("retries")
    if retries is not None and (isinstance(retries, bool) or not isinstance(retries, int) or retries < 0):
        raise WorkflowError(f"{where}.retries must be a whole number of at least 0, found {retries!r}")
    timeout = seconds(use["timeout"], f"{where}.timeout") if use.get("timeout") else None
    return retries or 0, timeout or None


def _task_spec(spec: Any, where: str) -> TaskSpec:
    """A Task's spec: each step's command follows the one grammar, its paths in a workspace or a
    result; then the Task must have one step the runner knows how to run."""
    if not isinstance(spec, dict):
        raise WorkflowError(f"{where}: a Task's spec must be a mapping, found {type(spec).__name__}")
    steps = _list(spec, "steps", where)
    for step in steps:
        if isinstance(step, dict):
            argv = [str(a) for a in list(step.get("command") or []) + list(step.get("args") or [])]
            check_prefixes(parse_command(argv, where), where, TEKTON_PLACES)
    if len(steps) != 1 or not isinstance(steps[0], dict) or set(steps[0]) - STEP_KEYS:
        raise WorkflowError(f"{where}: the local runner runs Tasks with one step using {sorted(STEP_KEYS)}")
    step = steps[0]
    env = []
    for i, item in enumerate(_list(step, "env", f"{where} step")):
        at = f"{where} step env[{i}]"
        if not isinstance(item, dict):
            raise WorkflowError(f"{at} must be a mapping, found {type(item).__name__}")
        if "valueFrom" in item:
            env.append(EnvVar(_name(item, at), value_from=dict(item["valueFrom"] or {})))
        else:
            env.append(EnvVar(_name(item, at), value=str(item.get("value", ""))))
    return TaskSpec(
        step=Step(
            name=str(step.get("name") or ""),
            image=str(step.get("image", "")),
            argv=tuple(str(a) for a in _list(step, "command", where) + _list(step, "args", where)),
            env=tuple(env),
        ),
        params=tuple(_param(p, f"{where} params[{i}]") for i, p in enumerate(_list(spec, "params", where))),
        results=tuple(_name(r, f"{where} results[{i}]") for i, r in enumerate(_list(spec, "results", where))),
        workspaces=tuple(_name(w, f"{where} workspaces[{i}]") for i, w in enumerate(_list(spec, "workspaces", where))),
    )


def _when(when: Any, where: str) -> When:
    if not isinstance(when, dict):
        raise WorkflowError(f"{where} must be a mapping, found {type(when).__name__}")
    if "cel" in when:
        raise WorkflowError(f"{where}.cel is not supported by the local runner (use input, operator and values)")
    return When(
        input=str(_field(when, "input", where)),
        operator=str(when.get("operator")),
        values=tuple(str(v) for v in _list(when, "values", where)),
    )


def _workspace(binding: Any, where: str) -> Workspace:
    """A workspace binding of the run: its name and a Secret's item paths stay inside the folder
    they are joined to, as Kubernetes requires of workspace names and Secret item paths."""
    name = _name(binding, where)
    check_relative(name, f"workspace {name!r}", plain=True)
    if "secret" not in binding:
        return Workspace(name)
    items = []
    for i, item in enumerate(_list(binding["secret"] or {}, "items", f"{where}.secret")):
        key = str(_field(item, "key", f"{where}.secret.items[{i}]"))
        path = item.get("path", key)
        check_relative(path, f"workspace {name!r} item {key!r} path", plain=False)
        items.append((key, str(path)))
    return Workspace(name, secret=True, items=tuple(items))


def check_relative(path: Any, what: str, plain: bool) -> None:
    """WorkflowError unless ``path`` is a name (``plain``) or a relative path that stays inside the
    folder it is joined to (a workspace's name, a Secret item's path)."""
    parts = Path(str(path)).parts
    if (
        not isinstance(path, str)
        or not path
        or Path(path).is_absolute()
        or ".." in parts
        or (plain and len(parts) != 1)
    ):
        raise WorkflowError(f"{what} must be a relative path without '..' (found {path!r})")


def _param(param: Any, where: str) -> Param:
    name = _name(param, where)
    return Param(name, _value(param["default"]) if "default" in param else None)


def _value(value: Any) -> Value:
    """A param's value as Tekton reads it: an array's items and a string (other scalars as their text)."""
    if isinstance(value, list):
        return [v if isinstance(v, str) else str(v) for v in value]
    return value if isinstance(value, str) else str(value)


def _meta(doc: Any) -> dict[str, Any]:
    meta = doc.get("metadata") if isinstance(doc, dict) else None
    return meta if isinstance(meta, dict) else {}


def _annotations(doc: Any) -> dict[str, Any]:
    annotations = _meta(doc).get("annotations")
    return annotations if isinstance(annotations, dict) else {}


def _name(obj: Any, where: str) -> str:
    name = obj.get("name") if isinstance(obj, dict) else None
    if not isinstance(name, str) or not name:
        raise WorkflowError(f"{where}.name is missing: every entry here needs a name")
    return name


def _field(obj: Any, key: str, where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise WorkflowError(f"{where}.{key} is missing")
    return obj[key]


def _list(obj: Any, key: str, where: str) -> list[Any]:
    value = (obj.get(key) if isinstance(obj, dict) else None) or []
    if not isinstance(value, list):
        raise WorkflowError(f"{where}.{key} must be a list")
    return value


def _strings(obj: dict[str, Any], key: str, where: str) -> Iterable[str]:
    return (str(item) for item in _list(obj, key, where))
