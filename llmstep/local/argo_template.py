"""Check and parse one template of an Argo Workflow for the local runner: a DAG (its tasks, their
arguments, ``depends``, ``when``, ``withParam``/``withItems``) or a container (its command and
env), its inputs and outputs, its ``retryStrategy`` (durations in seconds) and deadline, into the
typed :class:`~llmstep.local.argo_workflow.Template`; and the checked readers of a document's
fields that :mod:`llmstep.local.argo_doc` reads the rest of the Workflow with, each failure naming
the field's path.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
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
)
from llmstep.local.attempts import seconds
from llmstep.local.command import check_prefixes
from llmstep.local.command import parse as parse_command

# Allowed keys per object; a value of None means "accepted, not interpreted locally".
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
PARAM = {
    "name",
    "value",
    "default",
    "valueFrom",
    "description",
    "enum",
}  # a parameter's, wherever it is declared or passed
_ARTIFACT = {"name", "path", "raw", "from", "optional", "archive", "mode"}
_RETRY = {"limit", "retryPolicy", "backoff", "expression"}
_BACKOFF = {"duration", "factor", "maxDuration", "cap"}

VAR = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")
"""A ``{{variable}}`` in a field's text; its group is the variable's name."""
_FROM = re.compile(r"\{\{\s*tasks\.[\w-]+\.outputs\.artifacts\.[\w-]+\s*\}\}")


def template(t: Any, where: str) -> Template:
    """The template at ``where`` (``spec.templates[i]``) as a :class:`Template`; WorkflowError naming
    the first field outside the supported subset or with a bad value."""
    check_keys(t, _TEMPLATE, where)
    kinds = [k for k in ("dag", "container") if k in t]
    if len(kinds) != 1:
        raise WorkflowError(f"{where} ({t.get('name')!r}) must have exactly one of dag or container")
    name = named(t, where)
    in_params, in_artifacts = _io(t.get("inputs") or {}, f"{where}.inputs")
    out_params, out_artifacts = _io(t.get("outputs") or {}, f"{where}.outputs")
    parallelism = count(t, "parallelism", where, minimum=0)
    deadline = count(t, "activeDeadlineSeconds", where, minimum=0)
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
            OutputArtifact(named(a, at), text_field(a, "path", at), bool(a.get("optional"))) for a, at in out_artifacts
        ),
        retry=_retry(t["retryStrategy"], f"{where}.retryStrategy") if "retryStrategy" in t else Retry(),
        deadline=float(deadline) if deadline else None,
        parallelism=parallelism or None,
    )


def _io(io: Any, where: str) -> tuple[list[tuple[dict[str, Any], str]], list[tuple[dict[str, Any], str]]]:
    """A template's inputs or outputs, their keys checked: the parameters and the artifacts, each
    with its path."""
    check_keys(io, _IO, where)
    params, artifacts = [], []
    for i, p in enumerate(listed(io, "parameters", where)):
        at = f"{where}.parameters[{i}]"
        check_keys(p, PARAM, at)
        if "valueFrom" in p:
            check_keys(p["valueFrom"], {"path", "default"}, f"{at}.valueFrom")
        params.append((p, at))
    for i, a in enumerate(listed(io, "artifacts", where)):
        at = f"{where}.artifacts[{i}]"
        check_keys(a, _ARTIFACT, at)
        if "raw" in a:
            check_keys(a["raw"], {"data"}, f"{at}.raw")
        artifacts.append((a, at))
    return params, artifacts


def _input_parameter(p: dict[str, Any], where: str) -> Parameter:
    has = "value" in p or "default" in p
    return Parameter(named(p, where), str(p.get("value", p.get("default"))) if has else None)


def _input_artifact(a: dict[str, Any], where: str) -> InputArtifact:
    raw = a.get("raw")
    return InputArtifact(
        named(a, where),
        text_field(a, "path", where),
        None if raw is None else text_field(raw, "data", f"{where}.raw"),
        bool(a.get("optional")),
    )


def _output_parameter(p: dict[str, Any], where: str) -> OutputParameter:
    value_from = p.get("valueFrom")
    if not isinstance(value_from, dict):
        raise WorkflowError(f"{where}.valueFrom.path is missing: the local runner reads output parameters from a file")
    default = value_from.get("default")
    return OutputParameter(
        named(p, where),
        text_field(value_from, "path", f"{where}.valueFrom"),
        None if "default" not in value_from else str(default),
    )


def _retry(retry: dict[str, Any], where: str) -> Retry:
    check_keys(retry, _RETRY, where)
    limit = count(retry, "limit", where, minimum=0)
    backoff = retry.get("backoff") or {}
    check_keys(backoff, _BACKOFF, f"{where}.backoff")
    durations = {
        key: seconds(backoff[key], f"{where}.backoff.{key}")
        for key in ("duration", "maxDuration", "cap")
        if key in backoff
    }
    factor = count(backoff, "factor", f"{where}.backoff", minimum=0)  # Argo reads it as an integer
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
    check_keys(dag, _DAG, where)
    tasks = listed(dag, "tasks", where)
    fans = {
        task.get("name") for task in tasks if isinstance(task, dict) and ("withParam" in task or "withItems" in task)
    }
    for path, text in strings(dag, where):
        for var in VAR.findall(text):
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
    check_keys(task, _TASK, where)
    arguments = task.get("arguments") or {}
    check_keys(arguments, _IO, f"{where}.arguments")
    artifacts = []
    for j, a in enumerate(listed(arguments, "artifacts", f"{where}.arguments")):
        at = f"{where}.arguments.artifacts[{j}]"
        check_keys(a, {"name", "from", "raw"}, at)
        if "from" in a and not _FROM.fullmatch(str(a["from"])):
            raise WorkflowError(
                f"{at}.from must name an artifact of this run, "
                f"{{{{tasks.NAME.outputs.artifacts.NAME}}}}, found {a['from']!r}"
            )
        if ("from" in a) == ("raw" in a):
            raise WorkflowError(f"{at} ({a.get('name')!r}) must have exactly one of from or raw")
        artifacts.append(
            TaskArtifact(
                named(a, at),
                raw=text_field(a["raw"], "data", f"{at}.raw") if "raw" in a else None,
                source=str(a["from"]) if "from" in a else None,
            )
        )
    parameters = []
    for j, p in enumerate(listed(arguments, "parameters", f"{where}.arguments")):
        check_keys(p, PARAM, f"{where}.arguments.parameters[{j}]")
        parameters.append((named(p, f"{where}.arguments.parameters[{j}]"), str(p.get("value", ""))))
    depends = task.get("depends") or None
    if depends is not None:
        if not isinstance(depends, str):
            raise WorkflowError(f'{where}.depends must be an expression such as "a && b.Failed", found {depends!r}')
        deps = tuple(sorted({n.split(".")[0] for n in expr.names(depends)}))
    else:
        deps = tuple(str(d) for d in listed(task, "dependencies", where))
    when = task.get("when")
    if when is not None and not isinstance(when, str):
        raise WorkflowError(f"{where}.when must be an expression, found {when!r}")
    items = task.get("withItems")
    if items is not None and not isinstance(items, list):
        raise WorkflowError(f"{where}.withItems must be a list, found {type(items).__name__}")
    return Task(
        name=named(task, where),
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
    check_keys(c, _CONTAINER, where)
    env = []
    for i, e in enumerate(listed(c, "env", where)):
        check_keys(e, _ENV, f"{where}.env[{i}]")
        if "valueFrom" in e:
            check_keys(e["valueFrom"], {"secretKeyRef", "configMapKeyRef"}, f"{where}.env[{i}].valueFrom")
            env.append(EnvVar(named(e, f"{where}.env[{i}]"), value_from=dict(e["valueFrom"])))
        else:
            env.append(EnvVar(named(e, f"{where}.env[{i}]"), value=str(e.get("value", ""))))
    argv = [str(a) for a in listed(c, "command", where) + listed(c, "args", where)]
    command = parse_command(argv, f"{where}.command")  # the one grammar; paths inside the data directory
    root = contract.argv_data_dir(argv)
    check_prefixes(command, f"{where}.command", (root.rstrip("/") + "/",), root)
    return Container(image=str(c.get("image")), argv=tuple(argv), env=tuple(env))


def count(obj: dict[str, Any], key: str, where: str, minimum: int) -> int | None:
    """An integer field (Argo's IntOrString takes "3" too) of at least ``minimum``, checked before
    the run starts so a bad value never fails it half way; None when it is not set."""
    if key not in obj or obj[key] is None:
        return None
    value = obj[key]
    text = str(value).strip() if isinstance(value, (int, str)) and not isinstance(value, bool) else ""
    if not text.lstrip("-").isdigit() or int(text) < minimum:
        raise WorkflowError(f"{where}.{key} must be a whole number of at least {minimum}, found {value!r}")
    return int(text)


def named(obj: dict[str, Any], where: str) -> str:
    """The entry's ``name``, a non-empty string."""
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        raise WorkflowError(f"{where}.name is missing: every entry here needs a name")
    return name


def text_field(obj: Any, key: str, where: str) -> str:
    """The string field ``key`` of a mapping."""
    if not isinstance(obj, dict) or not isinstance(obj.get(key), str):
        raise WorkflowError(f"{where}.{key} is missing: it must be a string")
    return obj[key]


def check_keys(obj: Any, allowed: set[str], where: str) -> None:
    """WorkflowError unless ``obj`` is a mapping whose keys are all in ``allowed``, naming the first
    other key and what is supported there."""
    if not isinstance(obj, dict):
        raise WorkflowError(f"{where or 'document'} must be a mapping, found {type(obj).__name__}")
    for key in obj:
        if key not in allowed:
            raise WorkflowError(
                f"{where + '.' if where else ''}{key} is not supported by the local runner "
                f"(supported here: {', '.join(sorted(allowed))})"
            )


def listed(obj: dict[str, Any], key: str, where: str) -> list[Any]:
    """The list field ``key`` of a mapping, empty when it is not set."""
    value = obj.get(key) or []
    if not isinstance(value, list):
        raise WorkflowError(f"{where}.{key} must be a list")
    return value


def strings(node: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every string under ``node``, with its path."""
    if isinstance(node, str):
        yield path, node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from strings(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from strings(value, f"{path}[{i}]")
