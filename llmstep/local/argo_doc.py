"""Read an Argo Workflow document once: check that it stays inside what the local runner runs,
and parse it into the typed :class:`~llmstep.local.argo_workflow.Workflow` that
:mod:`llmstep.local.argo` walks.

The subset is what llmstep generates: DAG and container templates (a DAG task may call a DAG),
input/output parameters and artifacts (``raw``, ``from``), ``{{workflow.parameters.*}}``,
``{{inputs.*}}``, ``{{tasks.X.outputs.*}}``, ``when``, ``withParam``/``withItems`` with
``{{item}}``/``{{item.field}}``, template ``parallelism``, ``failFast``, ``retryStrategy``
(``backoff.maxDuration`` as the controller reads it: how long after the first attempt the step may
still be retried), ``activeDeadlineSeconds`` of a template and of the whole Workflow, and
``onExit``.
Anything else is rejected up front with the path of the field, never silently mis-run. Fields
that only place or decorate the pod (labels, resources, service account) are accepted and have
no local effect.

The run never reads the document's dict again: every field it uses is here, checked and typed
(numbers as numbers, durations in seconds), so a bad value fails before the first step, with its
path, and never half way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from llmstep import contract
from llmstep.errors import WorkflowError
from llmstep.local import expr
from llmstep.local.argo_workflow import (
    Container,
    Dag,
    EnvVar,
    InputArtifact,
    OutputArtifact,
    OutputParameter,
    Parameter,
    Retry,
    Task,
    TaskArtifact,
    Template,
    Workflow,
)
from llmstep.local.attempts import seconds
from llmstep.local.command import check_prefixes
from llmstep.local.command import parse as parse_command
from llmstep.render.argo_checks import check_workflow
from llmstep.render.cycles import find_cycle

# Allowed keys per object; a value of None means "accepted, not interpreted locally".
_WORKFLOW = {"apiVersion", "kind", "metadata", "spec", "status"}
_SPEC = {
    "entrypoint",
    "arguments",
    "templates",
    "onExit",
    "parallelism",
    "activeDeadlineSeconds",
    "serviceAccountName",
    "podGC",
    "ttlStrategy",
    "artifactRepositoryRef",
    "podMetadata",
    "imagePullSecrets",
    "nodeSelector",
    "tolerations",
    "securityContext",
    "workflowMetadata",
}
_TEMPLATE = {
    "name",
    "dag",
    "container",
    "inputs",
    "outputs",
    "retryStrategy",
    "activeDeadlineSeconds",
    "metadata",
    "nodeSelector",
    "tolerations",
    "serviceAccountName",
    "podSpecPatch",
    "parallelism",
    "failFast",
}
_DAG = {"tasks", "failFast"}
_TASK = {"name", "template", "arguments", "depends", "dependencies", "when", "withParam", "withItems"}
_CONTAINER = {"image", "command", "args", "env", "resources", "imagePullPolicy", "securityContext"}
_ENV = {"name", "value", "valueFrom"}
_IO = {"parameters", "artifacts"}
_PARAM = {"name", "value", "default", "valueFrom", "description", "enum"}
_ARTIFACT = {"name", "path", "raw", "from", "optional", "archive", "mode"}
_RETRY = {"limit", "retryPolicy", "backoff", "expression"}
_BACKOFF = {"duration", "factor", "maxDuration", "cap"}

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


def declared_parameters(doc: Mapping[str, Any]) -> list[str]:
    """The names of a Workflow's ``spec.arguments.parameters``, read without checking the rest
    (a Workflow for a cluster may use all of Argo)."""
    spec = doc.get("spec") if isinstance(doc, Mapping) else None
    arguments = spec.get("arguments") if isinstance(spec, Mapping) else None
    params = arguments.get("parameters") if isinstance(arguments, Mapping) else None
    return [str(p.get("name")) for p in params or [] if isinstance(p, Mapping)]


# ---------------------------------------------------------------- checking and parsing


def parse(doc: dict[str, Any]) -> Workflow:
    """The document as a :class:`Workflow`; WorkflowError naming the first field outside the
    supported subset or with a bad value."""
    if (
        not isinstance(doc, dict)
        or doc.get("kind") != "Workflow"
        or not str(doc.get("apiVersion", "")).startswith("argoproj.io/")
    ):
        kind = doc.get("kind") if isinstance(doc, dict) else type(doc).__name__
        raise WorkflowError(
            f"expected an Argo Workflow (apiVersion argoproj.io/v1alpha1, kind Workflow), found kind {kind!r}"
        )
    _keys(doc, _WORKFLOW, "")
    spec = doc.get("spec")
    if not isinstance(spec, dict) or not spec.get("templates"):
        raise WorkflowError("spec.templates is missing: the document has nothing to run")
    _keys(spec, _SPEC, "spec")
    parallelism = _count(spec, "parallelism", "spec", minimum=0)
    deadline = _count(spec, "activeDeadlineSeconds", "spec", minimum=0)
    _keys(spec.get("arguments") or {}, {"parameters"}, "spec.arguments")
    parameters = []
    for i, param in enumerate(_list(spec.get("arguments") or {}, "parameters", "spec.arguments")):
        where = f"spec.arguments.parameters[{i}]"
        _keys(param, _PARAM, where)
        value = param.get("value")
        parameters.append(
            Parameter(
                _name(param, where), None if value is None else value if isinstance(value, str) else json.dumps(value)
            )
        )
    templates = [_template(t, f"spec.templates[{i}]") for i, t in enumerate(_list(spec, "templates", "spec"))]
    if not isinstance(spec.get("entrypoint"), str) or not spec["entrypoint"]:
        raise WorkflowError("spec.entrypoint is missing: name the template the run starts with")
    try:
        check_workflow(doc)
    except Exception as exc:
        raise WorkflowError(str(exc)) from exc
    _check_recursion(templates)
    for path, text in _strings(spec, "spec"):
        for var in _VAR.findall(text):
            if not any(p.match(var) for p in _KNOWN_VARS):
                raise WorkflowError(f"{path} uses {{{{{var}}}}}, which the local runner does not support")
    meta = doc.get("metadata") or {}
    annotations = meta.get("annotations") or {} if isinstance(meta, dict) else {}
    return Workflow(
        document=doc,
        templates={t.name: t for t in templates},
        entrypoint=str(spec.get("entrypoint")),
        on_exit=spec.get("onExit") or None,
        parameters=tuple(parameters),
        parallelism=parallelism or None,
        deadline=None if deadline is None else float(deadline),
        namespace=str(meta.get("namespace", "default")) if isinstance(meta, dict) else "default",
        output_task=annotations.get(contract.OUTPUT_TASK) if isinstance(annotations, dict) else None,
        batch=isinstance(annotations, dict) and annotations.get(contract.BATCH_ANNOTATION) == "true",
    )


MAX_NESTING = 100
"""How deep templates may call templates: Argo's controller fails the node past it ("Maximum
recursion depth exceeded"), and so does the local runner."""


def _check_recursion(templates: list[Template]) -> None:
    """A template that calls itself, directly or through others, by tasks that always run would
    nest until Argo's recursion limit stops it, starting pods at every level on the way: refused
    before the run. A recursion that a task's when, depends or items can end runs (to
    MAX_NESTING)."""
    calls = {
        t.name: [
            task.template
            for task in t.dag.tasks
            if task.when is None and task.depends is None and task.with_items is None and task.with_param is None
        ]
        for t in templates
        if t.dag is not None
    }
    found = find_cycle(calls)
    if found:
        raise WorkflowError(
            f"template {found[0]!r} calls itself ({' -> '.join(found)}) by tasks that always run, so it never ends "
            f"(Argo fails it at its maximum recursion depth, {MAX_NESTING} levels down); give the task that "
            "recurses a when condition that ends it"
        )


def _template(t: Any, where: str) -> Template:
    _keys(t, _TEMPLATE, where)
    kinds = [k for k in ("dag", "container") if k in t]
    if len(kinds) != 1:
        raise WorkflowError(f"{where} ({t.get('name')!r}) must have exactly one of dag or container")
    name = _name(t, where)
    in_params, in_artifacts = _io(t.get("inputs") or {}, f"{where}.inputs")
    out_params, out_artifacts = _io(t.get("outputs") or {}, f"{where}.outputs")
    parallelism = _count(t, "parallelism", where, minimum=0)
    deadline = _count(t, "activeDeadlineSeconds", where, minimum=0)
    for flag in ("failFast",):
        if flag in t and not isinstance(t[flag], bool):
            raise WorkflowError(f"{where}.{flag} must be true or false, found {t[flag]!r}")
    return Template(
        name=name,
        dag=_dag(t["dag"], f"{where}.dag", t.get("failFast", True)) if "dag" in t else None,
        container=_container(t["container"], f"{where}.container") if "container" in t else None,
        parameters=tuple(_input_parameter(p, at) for p, at in in_params),
        artifacts=tuple(_input_artifact(a, at) for a, at in in_artifacts),
        outputs=tuple(_output_parameter(p, at) for p, at in out_params),
        output_artifacts=tuple(
            OutputArtifact(_name(a, at), _text(a, "path", at), bool(a.get("optional"))) for a, at in out_artifacts
        ),
        retry=_retry(t["retryStrategy"], f"{where}.retryStrategy") if "retryStrategy" in t else Retry(),
        deadline=float(deadline) if deadline else None,
        parallelism=parallelism or None,
    )


def _io(io: Any, where: str) -> tuple[list[tuple[dict[str, Any], str]], list[tuple[dict[str, Any], str]]]:
    """A template's inputs or outputs, their keys checked: the parameters and the artifacts, each
    with its path."""
    _keys(io, _IO, where)
    params, artifacts = [], []
    for i, p in enumerate(_list(io, "parameters", where)):
        at = f"{where}.parameters[{i}]"
        _keys(p, _PARAM, at)
        if "valueFrom" in p:
            _keys(p["valueFrom"], {"path", "default"}, f"{at}.valueFrom")
        params.append((p, at))
    for i, a in enumerate(_list(io, "artifacts", where)):
        at = f"{where}.artifacts[{i}]"
        _keys(a, _ARTIFACT, at)
        if "raw" in a:
            _keys(a["raw"], {"data"}, f"{at}.raw")
        artifacts.append((a, at))
    return params, artifacts


def _input_parameter(p: dict[str, Any], where: str) -> Parameter:
    has = "value" in p or "default" in p
    return Parameter(_name(p, where), str(p.get("value", p.get("default"))) if has else None)


def _input_artifact(a: dict[str, Any], where: str) -> InputArtifact:
    raw = a.get("raw")
    return InputArtifact(
        _name(a, where),
        _text(a, "path", where),
        None if raw is None else _text(raw, "data", f"{where}.raw"),
        bool(a.get("optional")),
    )


def _output_parameter(p: dict[str, Any], where: str) -> OutputParameter:
    value_from = p.get("valueFrom")
    if not isinstance(value_from, dict):
        raise WorkflowError(f"{where}.valueFrom.path is missing: the local runner reads output parameters from a file")
    default = value_from.get("default")
    return OutputParameter(
        _name(p, where),
        _text(value_from, "path", f"{where}.valueFrom"),
        None if "default" not in value_from else str(default),
    )


def _retry(retry: dict[str, Any], where: str) -> Retry:
    _keys(retry, _RETRY, where)
    limit = _count(retry, "limit", where, minimum=0)
    backoff = retry.get("backoff") or {}
    _keys(backoff, _BACKOFF, f"{where}.backoff")
    durations = {
        key: seconds(backoff[key], f"{where}.backoff.{key}")
        for key in ("duration", "maxDuration", "cap")
        if key in backoff
    }
    factor = _count(backoff, "factor", f"{where}.backoff", minimum=0)  # Argo reads it as an integer
    if backoff and "duration" not in backoff:
        raise WorkflowError(
            f"{where}.backoff.duration is missing: Argo needs a base duration for a backoff "
            '(for example duration: "5s")'
        )
    expression = retry.get("expression")
    if expression:
        expr.tokenize(expression)
    policy = retry.get("retryPolicy") or "OnFailure"
    if policy not in ("Always", "OnFailure", "OnError", "OnTransientError"):
        raise WorkflowError(
            f"{where}.retryPolicy must be Always, OnFailure, OnError or OnTransientError, found {policy!r}"
        )
    return Retry(
        limit=limit or 0,
        policy=policy,
        expression=expression or None,
        duration=durations.get("duration", 0.0),
        factor=1 if factor is None else factor,
        max_duration=durations.get("maxDuration"),
        cap=durations.get("cap"),
    )


def _dag(dag: Any, where: str, fail_fast: Any) -> Dag:
    _keys(dag, _DAG, where)
    tasks = _list(dag, "tasks", where)
    fans = {
        task.get("name") for task in tasks if isinstance(task, dict) and ("withParam" in task or "withItems" in task)
    }
    for path, text in _strings(dag, where):
        for var in _VAR.findall(text):
            if var.startswith("tasks.") and var.split(".")[1] in fans and ".outputs." in var:
                raise WorkflowError(
                    f"{path} uses {{{{{var}}}}}: the aggregated outputs of a task with "
                    "withParam/withItems are not supported by the local runner"
                )
    if "failFast" in dag and not isinstance(dag["failFast"], bool):
        raise WorkflowError(f"{where}.failFast must be true or false, found {dag['failFast']!r}")
    return Dag(
        tuple(_task(task, f"{where}.tasks[{i}]") for i, task in enumerate(tasks)),
        fail_fast=dag.get("failFast", fail_fast),
    )


def _task(task: Any, where: str) -> Task:
    _keys(task, _TASK, where)
    arguments = task.get("arguments") or {}
    _keys(arguments, _IO, f"{where}.arguments")
    artifacts = []
    for j, a in enumerate(_list(arguments, "artifacts", f"{where}.arguments")):
        at = f"{where}.arguments.artifacts[{j}]"
        _keys(a, {"name", "from", "raw"}, at)
        if "from" in a and not _FROM.fullmatch(str(a["from"])):
            raise WorkflowError(
                f"{at}.from must name an artifact of this run, "
                f"{{{{tasks.NAME.outputs.artifacts.NAME}}}}, found {a['from']!r}"
            )
        if ("from" in a) == ("raw" in a):
            raise WorkflowError(f"{at} ({a.get('name')!r}) must have exactly one of from or raw")
        artifacts.append(
            TaskArtifact(
                _name(a, at),
                raw=_text(a["raw"], "data", f"{at}.raw") if "raw" in a else None,
                source=str(a["from"]) if "from" in a else None,
            )
        )
    parameters = []
    for j, p in enumerate(_list(arguments, "parameters", f"{where}.arguments")):
        _keys(p, _PARAM, f"{where}.arguments.parameters[{j}]")
        parameters.append((_name(p, f"{where}.arguments.parameters[{j}]"), str(p.get("value", ""))))
    depends = task.get("depends") or None
    if depends is not None:
        if not isinstance(depends, str):
            raise WorkflowError(f'{where}.depends must be an expression such as "a && b.Failed", found {depends!r}')
        deps = tuple(sorted({n.split(".")[0] for n in expr.names(depends)}))
    else:
        deps = tuple(str(d) for d in _list(task, "dependencies", where))
    when = task.get("when")
    if when is not None and not isinstance(when, str):
        raise WorkflowError(f"{where}.when must be an expression, found {when!r}")
    items = task.get("withItems")
    if items is not None and not isinstance(items, list):
        raise WorkflowError(f"{where}.withItems must be a list, found {type(items).__name__}")
    return Task(
        name=_name(task, where),
        template=str(task.get("template")),
        parameters=tuple(parameters),
        artifacts=tuple(artifacts),
        deps=deps,
        depends=depends,
        when=when,
        with_items=None if items is None else tuple(items),
        with_param=None if task.get("withParam") is None else str(task["withParam"]),
    )


def _container(c: Any, where: str) -> Container:
    _keys(c, _CONTAINER, where)
    env = []
    for i, e in enumerate(_list(c, "env", where)):
        _keys(e, _ENV, f"{where}.env[{i}]")
        if "valueFrom" in e:
            _keys(e["valueFrom"], {"secretKeyRef", "configMapKeyRef"}, f"{where}.env[{i}].valueFrom")
            env.append(EnvVar(_name(e, f"{where}.env[{i}]"), value_from=dict(e["valueFrom"])))
        else:
            env.append(EnvVar(_name(e, f"{where}.env[{i}]"), value=str(e.get("value", ""))))
    argv = [str(a) for a in _list(c, "command", where) + _list(c, "args", where)]
    command = parse_command(argv, f"{where}.command")  # the one grammar; paths inside the data directory
    root = contract.argv_data_dir(argv)
    check_prefixes(command, f"{where}.command", (root.rstrip("/") + "/",), root)
    return Container(image=str(c.get("image")), argv=tuple(argv), env=tuple(env))


def _count(obj: dict[str, Any], key: str, where: str, minimum: int) -> int | None:
    """An integer field (Argo's IntOrString takes "3" too) of at least ``minimum``, checked before
    the run starts so a bad value never fails it half way; None when it is not set."""
    if key not in obj or obj[key] is None:
        return None
    value = obj[key]
    text = str(value).strip() if isinstance(value, (int, str)) and not isinstance(value, bool) else ""
    if not text.lstrip("-").isdigit() or int(text) < minimum:
        raise WorkflowError(f"{where}.{key} must be a whole number of at least {minimum}, found {value!r}")
    return int(text)


def _name(obj: dict[str, Any], where: str) -> str:
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        raise WorkflowError(f"{where}.name is missing: every entry here needs a name")
    return name


def _text(obj: Any, key: str, where: str) -> str:
    if not isinstance(obj, dict) or not isinstance(obj.get(key), str):
        raise WorkflowError(f"{where}.{key} is missing: it must be a string")
    return obj[key]


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


def _strings(node: Any, path: str) -> Iterator[tuple[str, str]]:
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
            raise WorkflowError(
                f"parameter {name!r} is not declared in {where} ({', '.join(declared) or 'none'}){hint}"
            )


def substitute(text: str, values: dict[str, str], where: str) -> str:
    """Replace ``{{name}}`` with ``values[name]``; WorkflowError for a name with no value."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise WorkflowError(f"{where}: {{{{{name}}}}} has no value here")
        return values[name]

    return _VAR.sub(one, text)
