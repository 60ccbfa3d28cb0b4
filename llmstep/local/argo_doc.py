"""Read an Argo Workflow document and check that it stays inside what the local runner runs.

The subset is what llmstep generates: DAG and container templates (a DAG task may call a DAG),
input/output parameters and artifacts (``raw``, ``from``), ``{{workflow.parameters.*}}``,
``{{inputs.*}}``, ``{{tasks.X.outputs.*}}``, ``when``, ``withParam``/``withItems`` with
``{{item}}``/``{{item.field}}``, template ``parallelism``, ``failFast``, ``retryStrategy``,
``activeDeadlineSeconds`` and ``onExit``.
Anything else is rejected up front with the path of the field, never silently mis-run. Fields
that only place or decorate the pod (labels, resources, service account) are accepted and have
no local effect.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from llmstep.errors import WorkflowError
from llmstep.local import expr
from llmstep.local.attempts import seconds
from llmstep.render.argo_checks import check_workflow

# Allowed keys per object; a value of None means "accepted, not interpreted locally".
_WORKFLOW = {"apiVersion", "kind", "metadata", "spec", "status"}
_SPEC = {
    "entrypoint", "arguments", "templates", "onExit", "parallelism", "activeDeadlineSeconds",
    "serviceAccountName", "podGC", "ttlStrategy", "artifactRepositoryRef", "podMetadata",
    "imagePullSecrets", "nodeSelector", "tolerations", "securityContext", "workflowMetadata",
}
_TEMPLATE = {
    "name", "dag", "container", "inputs", "outputs", "retryStrategy", "activeDeadlineSeconds",
    "metadata", "nodeSelector", "tolerations", "serviceAccountName", "podSpecPatch", "parallelism", "failFast",
}
_DAG = {"tasks", "failFast"}
_TASK = {"name", "template", "arguments", "depends", "dependencies", "when", "withParam", "withItems"}
_CONTAINER = {"image", "command", "args", "env", "resources", "imagePullPolicy", "securityContext"}
_ENV = {"name", "value", "valueFrom"}
_IO = {"parameters", "artifacts"}
_PARAM = {"name", "value", "default", "valueFrom", "description", "enum"}
_ARTIFACT = {"name", "path", "raw", "from", "optional", "archive", "mode"}
_RETRY = {"limit", "retryPolicy", "backoff", "expression"}
_BACKOFF = {"duration", "factor", "maxDuration"}

_VAR = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")
_FROM = re.compile(r"\{\{\s*tasks\.[\w-]+\.outputs\.artifacts\.[\w-]+\s*\}\}")
_KNOWN_VARS = (
    re.compile(r"^workflow\.(name|status|failures|uid|namespace)$"),
    re.compile(r"^workflow\.parameters\.[\w-]+$"),
    re.compile(r"^inputs\.parameters\.[\w-]+$"),
    re.compile(r"^tasks\.[\w-]+\.outputs\.(parameters|artifacts)\.[\w-]+$"),
    re.compile(r"^tasks\.[\w-]+\.status$"),
    re.compile(r"^item(\.[\w-]+)?$"),
)


def check_document(doc: dict[str, Any]) -> None:
    """Raise WorkflowError naming the first field outside the supported subset."""
    if doc.get("kind") != "Workflow" or not str(doc.get("apiVersion", "")).startswith("argoproj.io/"):
        raise WorkflowError(
            f"expected an Argo Workflow (apiVersion argoproj.io/v1alpha1, kind Workflow), "
            f"found kind {doc.get('kind')!r}"
        )
    _keys(doc, _WORKFLOW, "")
    spec = doc.get("spec")
    if not isinstance(spec, dict) or not spec.get("templates"):
        raise WorkflowError("spec.templates is missing: the document has nothing to run")
    _keys(spec, _SPEC, "spec")
    _count(spec, "parallelism", "spec", minimum=0)
    _count(spec, "activeDeadlineSeconds", "spec", minimum=0)
    for i, param in enumerate(_list(spec.get("arguments", {}), "parameters", "spec.arguments")):
        _keys(param, _PARAM, f"spec.arguments.parameters[{i}]")
    _keys(spec.get("arguments") or {}, {"parameters"}, "spec.arguments")
    for i, template in enumerate(spec["templates"]):
        _template(template, f"spec.templates[{i}]")
    try:
        check_workflow(doc)
    except Exception as exc:
        raise WorkflowError(str(exc)) from exc
    for path, text in _strings(spec, "spec"):
        for var in _VAR.findall(text):
            if not any(p.match(var) for p in _KNOWN_VARS):
                raise WorkflowError(f"{path} uses {{{{{var}}}}}, which the local runner does not support")


def _template(t: dict[str, Any], where: str) -> None:
    _keys(t, _TEMPLATE, where)
    kinds = [k for k in ("dag", "container") if k in t]
    if len(kinds) != 1:
        raise WorkflowError(f"{where} ({t.get('name')!r}) must have exactly one of dag or container")
    for part in ("inputs", "outputs"):
        io = t.get(part) or {}
        _keys(io, _IO, f"{where}.{part}")
        for i, p in enumerate(_list(io, "parameters", f"{where}.{part}")):
            _keys(p, _PARAM, f"{where}.{part}.parameters[{i}]")
            if "valueFrom" in p:
                _keys(p["valueFrom"], {"path", "default"}, f"{where}.{part}.parameters[{i}].valueFrom")
        for i, a in enumerate(_list(io, "artifacts", f"{where}.{part}")):
            _keys(a, _ARTIFACT, f"{where}.{part}.artifacts[{i}]")
            if "raw" in a:
                _keys(a["raw"], {"data"}, f"{where}.{part}.artifacts[{i}].raw")
    _count(t, "parallelism", where, minimum=0)
    _count(t, "activeDeadlineSeconds", where, minimum=0)
    for flag in ("failFast",):
        if flag in t and not isinstance(t[flag], bool):
            raise WorkflowError(f"{where}.{flag} must be true or false, found {t[flag]!r}")
    if "retryStrategy" in t:
        _keys(t["retryStrategy"], _RETRY, f"{where}.retryStrategy")
        _count(t["retryStrategy"], "limit", f"{where}.retryStrategy", minimum=0)
        backoff = t["retryStrategy"].get("backoff") or {}
        _keys(backoff, _BACKOFF, f"{where}.retryStrategy.backoff")
        for key in ("duration", "maxDuration"):
            if key in backoff:
                seconds(backoff[key], f"{where}.retryStrategy.backoff.{key}")
        if "factor" in backoff:
            _positive(backoff["factor"], f"{where}.retryStrategy.backoff.factor")
        if "expression" in t["retryStrategy"]:
            expr.tokenize(t["retryStrategy"]["expression"])
    if "dag" in t:
        _keys(t["dag"], _DAG, f"{where}.dag")
        fans = {task.get("name") for task in _list(t["dag"], "tasks", f"{where}.dag") if "withParam" in task or "withItems" in task}
        for path, text in _strings(t["dag"], f"{where}.dag"):
            for var in _VAR.findall(text):
                if var.startswith("tasks.") and var.split(".")[1] in fans and ".outputs." in var:
                    raise WorkflowError(f"{path} uses {{{{{var}}}}}: the aggregated outputs of a task with "
                                        "withParam/withItems are not supported by the local runner")
        for i, task in enumerate(_list(t["dag"], "tasks", f"{where}.dag")):
            _keys(task, _TASK, f"{where}.dag.tasks[{i}]")
            _keys(task.get("arguments") or {}, _IO, f"{where}.dag.tasks[{i}].arguments")
            for j, a in enumerate(_list(task.get("arguments") or {}, "artifacts", f"{where}.dag.tasks[{i}].arguments")):
                _keys(a, {"name", "from", "raw"}, f"{where}.dag.tasks[{i}].arguments.artifacts[{j}]")
                if "from" in a and not _FROM.fullmatch(str(a["from"])):
                    raise WorkflowError(f"{where}.dag.tasks[{i}].arguments.artifacts[{j}].from must name an artifact of "
                                        f"this run, {{{{tasks.NAME.outputs.artifacts.NAME}}}}, found {a['from']!r}")
    else:
        c = t["container"]
        _keys(c, _CONTAINER, f"{where}.container")
        for i, e in enumerate(c.get("env") or []):
            _keys(e, _ENV, f"{where}.container.env[{i}]")
            if "valueFrom" in e:
                _keys(e["valueFrom"], {"secretKeyRef", "configMapKeyRef"}, f"{where}.container.env[{i}].valueFrom")
        argv = list(c.get("command") or []) + list(c.get("args") or [])
        if argv[:1] != ["llmstep"] or argv[1:2] not in (["exec"], ["diagnose"]):
            raise WorkflowError(
                f"{where}.container.command must run `llmstep exec ...` (or `llmstep diagnose`) locally, found {argv[:3]!r}"
            )


def _count(obj: dict[str, Any], key: str, where: str, minimum: int) -> None:
    """An integer field (Argo's IntOrString takes "3" too) of at least ``minimum``, checked before
    the run starts so a bad value never fails it half way."""
    if key not in obj or obj[key] is None:
        return
    value = obj[key]
    text = str(value).strip() if isinstance(value, (int, str)) and not isinstance(value, bool) else ""
    if not text.lstrip("-").isdigit() or int(text) < minimum:
        raise WorkflowError(f"{where}.{key} must be a whole number of at least {minimum}, found {value!r}")


def _positive(value: Any, where: str) -> None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if isinstance(value, bool) or not 0 < number < float("inf"):
        raise WorkflowError(f"{where} must be a positive number, found {value!r}")


def _keys(obj: Any, allowed: set[str], where: str) -> None:
    if not isinstance(obj, dict):
        raise WorkflowError(f"{where or 'document'} must be a mapping, found {type(obj).__name__}")
    for key in obj:
        if key not in allowed:
            raise WorkflowError(
                f"{where + '.' if where else ''}{key} is not supported by the local runner "
                f"(supported here: {', '.join(sorted(allowed))})"
            )


def _list(obj: dict[str, Any], key: str, where: str) -> list[Any]:
    value = obj.get(key) or []
    if not isinstance(value, list):
        raise WorkflowError(f"{where}.{key} must be a list")
    return value


def _strings(node: Any, path: str):
    if isinstance(node, str):
        yield path, node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _strings(value, f"{path}[{i}]")


def check_declared(declared: list[str], given: Iterable[str], where: str) -> None:
    """WorkflowError for a parameter given to a run that its document does not declare."""
    for name in given:
        if name not in declared:
            hint = "; --inputs needs a batch Workflow (llmstep compile --batch N)" if name == "inputs" else ""
            raise WorkflowError(f"parameter {name!r} is not declared in {where} ({', '.join(declared) or 'none'}){hint}")


def substitute(text: str, values: dict[str, str], where: str) -> str:
    """Replace ``{{name}}`` with ``values[name]``; WorkflowError for a name with no value."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise WorkflowError(f"{where}: {{{{{name}}}}} has no value here")
        return values[name]

    return _VAR.sub(one, text)
