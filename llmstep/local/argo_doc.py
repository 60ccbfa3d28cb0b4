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

This module reads the document and its spec; :mod:`llmstep.local.argo_template` reads each
template (its DAG and tasks or its container, inputs, outputs, retry strategy).

The run never reads the document's dict again: every field it uses is here, checked and typed
(numbers as numbers, durations in seconds), so a bad value fails before the first step, with its
path, and never half way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from llmstep import contract
from llmstep.errors import WorkflowError
from llmstep.local.argo_template import PARAM, VAR, check_keys, count, listed, named, strings, template
from llmstep.local.argo_workflow import Parameter, Template, Workflow
from llmstep.render.argo_checks import check_workflow
from llmstep.render.cycles import find_cycle

# Allowed keys of the document and its spec (a template's and below: llmstep.local.argo_template).
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
    check_keys(doc, _WORKFLOW, "")
    spec = doc.get("spec")
    if not isinstance(spec, dict) or not spec.get("templates"):
        raise WorkflowError("spec.templates is missing: the document has nothing to run")
    check_keys(spec, _SPEC, "spec")
    parallelism = count(spec, "parallelism", "spec", minimum=0)
    deadline = count(spec, "activeDeadlineSeconds", "spec", minimum=0)
    check_keys(spec.get("arguments") or {}, {"parameters"}, "spec.arguments")
    parameters = []
    for i, param in enumerate(listed(spec.get("arguments") or {}, "parameters", "spec.arguments")):
        where = f"spec.arguments.parameters[{i}]"
        check_keys(param, PARAM, where)
        value = param.get("value")
        parameters.append(
            Parameter(
                named(param, where), None if value is None else value if isinstance(value, str) else json.dumps(value)
            )
        )
    templates = [template(t, f"spec.templates[{i}]") for i, t in enumerate(listed(spec, "templates", "spec"))]
    if not isinstance(spec.get("entrypoint"), str) or not spec["entrypoint"]:
        raise WorkflowError("spec.entrypoint is missing: name the template the run starts with")
    try:
        check_workflow(doc)
    except Exception as exc:
        raise WorkflowError(str(exc)) from exc
    _check_recursion(templates)
    for path, text in strings(spec, "spec"):
        for var in VAR.findall(text):
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

    return VAR.sub(one, text)
