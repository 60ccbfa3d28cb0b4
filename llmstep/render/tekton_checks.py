"""What Tekton's admission webhook checks and a schema cannot: names, declared params and
results, result references, workspace bindings, ``finally`` and ``when`` restrictions.

:func:`check_documents` takes every document of a set (a Task beside the Pipeline that uses it)
and raises RenderError naming the document and field of the first violation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from typing import Any

from llmstep.errors import RenderError
from llmstep.naming import DNS_LABEL, MAX
from llmstep.render.cycles import find_cycle

_VAR = re.compile(r"\$\((params|tasks|workspaces|results|context)\.([^)]*)\)")
_WHEN_OPERATORS = ("in", "notin")
_VOLUME_SOURCES = (
    "emptyDir",
    "persistentVolumeClaim",
    "volumeClaimTemplate",
    "configMap",
    "secret",
    "projected",
    "csi",
)


def check_documents(docs: Iterable[dict[str, Any]]) -> None:
    docs = list(docs)
    tasks = {
        d["metadata"]["name"]: d["spec"] for d in docs if d.get("kind") == "Task" and "name" in d.get("metadata", {})
    }
    pipelines = {
        d["metadata"]["name"]: d["spec"]
        for d in docs
        if d.get("kind") == "Pipeline" and "name" in d.get("metadata", {})
    }
    for doc in docs:
        kind = doc.get("kind")
        where = f"{kind} {doc.get('metadata', {}).get('name') or doc.get('metadata', {}).get('generateName', '?')}"
        _metadata_name(doc, where)
        spec = doc.get("spec") or {}
        if kind == "Task":
            check_task(spec, where)
        elif kind == "Pipeline":
            check_pipeline(spec, where, tasks)
        elif kind == "PipelineRun":
            _check_pipeline_run(spec, where, tasks, pipelines)
        elif kind == "TaskRun":
            _check_task_run(spec, where, tasks)


def _fail(where: str, message: str) -> None:
    raise RenderError(f"{where}: {message}")


def _label(name: Any, where: str, what: str) -> None:
    if not isinstance(name, str) or len(name) > MAX or not DNS_LABEL.match(name):
        _fail(where, f"{what} {name!r} must be a DNS label (lowercase letters, digits, '-', at most {MAX})")


_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _metadata_name(doc: dict[str, Any], where: str) -> None:
    meta = doc.get("metadata") or {}
    if "name" in meta:
        name = meta["name"]
        if not isinstance(name, str) or len(name) > 253 or not _SUBDOMAIN.match(name):
            _fail(where, f"metadata.name {name!r} must be a DNS subdomain (lowercase letters, digits, '-', '.')")
    elif "generateName" not in meta:
        _fail(where, "metadata needs name or generateName")


def _unique(items: list[dict[str, Any]], where: str, what: str) -> set[Any]:
    names: list[Any] = [i.get("name") for i in items]  # as written: a str, or what a later check rejects
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        _fail(where, f"{what} names repeat: {dup}")
    return set(names)


def _vars(node: Any) -> Iterable[tuple[str, str]]:
    if isinstance(node, str):
        yield from _VAR.findall(node)
    elif isinstance(node, dict):
        for value in node.values():
            yield from _vars(value)
    elif isinstance(node, list):
        for value in node:
            yield from _vars(value)


def check_task(spec: dict[str, Any], where: str, outer_params: AbstractSet[str] = frozenset()) -> None:
    params = _unique(spec.get("params") or [], where, "param")
    results = _unique(spec.get("results") or [], where, "result")
    workspaces = _unique(spec.get("workspaces") or [], where, "workspace")
    steps = spec.get("steps") or []
    if not steps:
        _fail(where, "a Task needs at least one step")
    for name in _unique(steps, where, "step"):
        _label(name, where, "step name")
    arrays = {p["name"] for p in spec.get("params") or [] if p.get("type") == "array"}
    for kind, rest in _vars(steps):
        ref = re.split(r"[.\[]", rest, maxsplit=1)[0]
        if kind == "params" and ref not in params | set(outer_params):
            _fail(where, f"$(params.{rest}) uses a param that is not declared")
        if kind == "results" and ref not in results:
            _fail(where, f"$(results.{rest}) uses a result that is not declared")
        if kind == "workspaces" and ref not in workspaces:
            _fail(where, f"$(workspaces.{rest}) uses a workspace that is not declared")
    for step in steps:
        for field in ("command", "args"):
            for item in step.get(field) or []:
                for array in arrays:
                    if f"$(params.{array}[*])" in item and item != f"$(params.{array}[*])":
                        _fail(where, f"step {step['name']}: array param {array} must be a whole {field} item")
        if "script" in step and step.get("command"):
            _fail(where, f"step {step['name']}: script and command cannot both be set")


def check_pipeline(spec: dict[str, Any], where: str, tasks: dict[str, dict[str, Any]]) -> None:
    params = _unique(spec.get("params") or [], where, "param")
    workspaces = _unique(spec.get("workspaces") or [], where, "workspace")
    regular = spec.get("tasks") or []
    final = spec.get("finally") or []
    if not regular:
        _fail(where, "a Pipeline needs at least one task")
    all_names = _unique(regular + final, where, "pipeline task")
    regular_names = {t["name"] for t in regular}
    for task in regular + final:
        is_final = task in final
        tw = f"{where} task {task.get('name')!r}"
        _label(task.get("name"), where, "pipeline task name")
        if is_final and task.get("runAfter"):
            _fail(tw, "finally tasks cannot use runAfter")
        for dep in task.get("runAfter") or []:
            if dep not in regular_names:
                _fail(tw, f"runAfter names {dep!r}, which is not a task of the pipeline")
        for when in task.get("when") or []:
            if "cel" in when:
                continue
            if when.get("operator") not in _WHEN_OPERATORS or not when.get("values"):
                _fail(tw, f"when needs operator in/notin and a non-empty values list: {when}")
        for kind, rest in _vars({k: v for k, v in task.items() if k not in ("taskSpec",)}):
            head = rest.split(".")[0]
            if kind == "params" and re.split(r"[.\[]", rest, maxsplit=1)[0] not in params:
                _fail(tw, f"$(params.{rest}) uses a pipeline param that is not declared")
            if kind == "tasks":
                if rest == "status" or rest.endswith(".status") or rest.endswith(".reason"):
                    if not is_final:
                        _fail(tw, f"$(tasks.{rest}) is only available in finally tasks")
                    if rest != "status" and head not in regular_names:
                        _fail(tw, f"$(tasks.{rest}) names a task that does not exist")
                elif head not in regular_names:
                    _fail(tw, f"$(tasks.{rest}) references a task that does not exist (or a finally task)")
                else:
                    _check_result_ref(rest, regular, tasks, tw)
        for binding in task.get("workspaces") or []:
            if binding.get("workspace") not in workspaces:
                _fail(
                    tw,
                    f"workspace binding {binding.get('name')!r} uses pipeline workspace {binding.get('workspace')!r}, which is not declared",
                )
        ref = (task.get("taskRef") or {}).get("name")
        task_spec = tasks.get(ref) if ref in tasks else task.get("taskSpec")
        if ref in tasks:
            _check_task_use(task, tasks[ref], tw)
        if task_spec is not None:
            _check_optional_workspaces(spec, task, task_spec, tw)
        if "taskSpec" in task:
            check_task(task["taskSpec"], tw, outer_params=params)
    _check_no_cycle(regular, where)
    for result in spec.get("results") or []:
        for kind, rest in _vars(result.get("value")):
            if kind == "tasks" and rest.split(".")[0] not in all_names:
                _fail(where, f"pipeline result {result.get('name')!r} references unknown task in $(tasks.{rest})")


def _check_no_cycle(regular: list[dict[str, Any]], where: str) -> None:
    """A task waits for its runAfter and for the tasks whose results it reads; Tekton's webhook
    refuses a Pipeline where these go round ("cycle detected", its DAG builder's words)."""
    edges = {}
    for task in regular:
        refs = {
            rest.split(".")[0]
            for kind, rest in _vars({k: v for k, v in task.items() if k != "taskSpec"})
            if kind == "tasks"
        }
        edges[task["name"]] = sorted(set(task.get("runAfter") or []) | refs)
    found = find_cycle(edges)
    if found:
        first = found[0]
        _fail(
            where,
            f'invalid value: cycle detected; task "{first}" depends on "{found[1]}" ({" -> ".join(found)}): spec.tasks',
        )


def _check_result_ref(rest: str, regular: list[dict[str, Any]], tasks: dict[str, dict[str, Any]], where: str) -> None:
    parts = rest.split(".")
    if len(parts) < 3 or parts[1] != "results":
        return
    producer = next(t for t in regular if t["name"] == parts[0])
    spec = tasks.get((producer.get("taskRef") or {}).get("name", "")) or producer.get("taskSpec")
    if spec is not None:
        declared = {r["name"] for r in spec.get("results") or []}
        if re.split(r"[\[]", parts[2])[0] not in declared:
            _fail(where, f"$(tasks.{rest}) reads a result that task {parts[0]!r} does not declare")


def _check_optional_workspaces(pipeline: dict[str, Any], use: dict[str, Any], task: dict[str, Any], where: str) -> None:
    """The controller fails a run (RequiredWorkspaceMarkedOptional) whose Pipeline binds an optional
    workspace to a Task workspace that is not optional."""
    optional = {w["name"] for w in pipeline.get("workspaces") or [] if w.get("optional")}
    required = {w["name"] for w in task.get("workspaces") or [] if not w.get("optional")}
    for binding in use.get("workspaces") or []:
        if binding.get("workspace") in optional and binding.get("name") in required:
            _fail(
                where,
                f"pipeline workspace {binding['workspace']!r} is marked optional, but the task requires its "
                f"workspace {binding['name']!r}; make the pipeline workspace required or the Task's optional",
            )


def _check_task_use(use: dict[str, Any], task: dict[str, Any], where: str) -> None:
    declared = {p["name"]: p for p in task.get("params") or []}
    given = {p["name"] for p in use.get("params") or []}
    for name in given - declared.keys():
        _fail(where, f"param {name!r} is not declared by the Task")
    for name, param in declared.items():
        if name not in given and "default" not in param:
            _fail(where, f"the Task's param {name!r} has no default and is not given")
    bound = {b["name"] for b in use.get("workspaces") or []}
    for ws in task.get("workspaces") or []:
        if ws["name"] not in bound and not ws.get("optional"):
            _fail(where, f"the Task's workspace {ws['name']!r} is not bound")
    for name in bound - {w["name"] for w in task.get("workspaces") or []}:
        _fail(where, f"workspace {name!r} is not declared by the Task")


def _check_bindings(bindings: list[dict[str, Any]], where: str) -> set[str]:
    names = _unique(bindings, where, "workspace binding")
    for binding in bindings:
        sources = [k for k in _VOLUME_SOURCES if k in binding]
        if len(sources) != 1:
            _fail(where, f"workspace binding {binding.get('name')!r} needs exactly one volume source, found {sources}")
    return names


def _check_pipeline_run(spec: dict[str, Any], where: str, tasks: dict, pipelines: dict) -> None:
    _unique(spec.get("params") or [], where, "param")
    bound = _check_bindings(spec.get("workspaces") or [], where)
    if ("pipelineRef" in spec) == ("pipelineSpec" in spec):
        _fail(where, "needs exactly one of pipelineRef or pipelineSpec")
    pipeline = spec.get("pipelineSpec") or pipelines.get((spec.get("pipelineRef") or {}).get("name", ""))
    if "pipelineSpec" in spec:
        check_pipeline(spec["pipelineSpec"], where + " pipelineSpec", tasks)
    if pipeline is not None:
        for ws in pipeline.get("workspaces") or []:
            if ws["name"] not in bound and not ws.get("optional"):
                _fail(where, f"the Pipeline's workspace {ws['name']!r} is not bound")
        declared = {p["name"]: p for p in pipeline.get("params") or []}
        given = {p["name"] for p in spec.get("params") or []}
        for name, param in declared.items():
            if name not in given and "default" not in param:
                _fail(where, f"the Pipeline's param {name!r} has no default and is not given")


def _check_task_run(spec: dict[str, Any], where: str, tasks: dict) -> None:
    _unique(spec.get("params") or [], where, "param")
    _check_bindings(spec.get("workspaces") or [], where)
    if ("taskRef" in spec) == ("taskSpec" in spec):
        _fail(where, "needs exactly one of taskRef or taskSpec")
    if "taskSpec" in spec:
        check_task(spec["taskSpec"], where + " taskSpec")
    task = spec.get("taskSpec") or tasks.get((spec.get("taskRef") or {}).get("name", ""))
    if task is not None:
        _check_task_use(spec, task, where)
