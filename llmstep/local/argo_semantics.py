"""What Argo v4 computes for a DAG's tasks from values alone, as the controller does: whether a
task's ``depends`` holds, the items a ``withItems``/``withParam`` task fans out over, the
``{{item}}`` variables of one item, ``{{workflow.failures}}``, and the controller's words when a
recursion goes too deep. Nothing here runs a step: :mod:`llmstep.local.argo` does, with these."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from llmstep import contract, jsonio
from llmstep.contract import FINISHED_OK, Phase
from llmstep.errors import WorkflowError
from llmstep.local import argo_doc, expr
from llmstep.local.argo_workflow import Task
from llmstep.local.records import RunRecord

RECURSION_MESSAGE = (
    "Maximum recursion depth exceeded. See "
    "https://argo-workflows.readthedocs.io/en/latest/scaling/#maximum-recursion-depth"
)


def task_items(task: Task, values: dict[str, str], key: str) -> list[Any] | None:
    """A task's ``withItems``/``withParam`` list, or None for a task that does not fan out."""
    if task.with_items is not None:
        return list(task.with_items)
    if task.with_param is None:
        return None
    text = argo_doc.substitute(task.with_param, values, f"task {key} withParam")
    try:
        items = jsonio.loads(text)
    except ValueError as exc:
        raise WorkflowError(f"task {key}: withParam must be a JSON list, found {text[:80]!r} ({exc})") from None
    if not isinstance(items, list):
        raise WorkflowError(f"task {key}: withParam must be a JSON list, found {type(items).__name__}")
    return items


def workflow_failures(record: RunRecord, phase: str, entrypoint: str) -> str:
    """``{{workflow.failures}}`` as Argo v4 writes it (``operator.go``): every failed node, the
    entrypoint's DAG node too, as a JSON list that is then quoted once more with Go's
    ``strconv.Quote``, so the value a command receives is a JSON string holding the JSON list."""
    failures = record.failures()
    if phase in contract.FAILED_PHASES:
        failures.append(
            {
                "displayName": record.run_id,
                "message": "",
                "templateName": entrypoint,
                "phase": phase,
                "podName": record.run_id,
                "finishedAt": "",
            }
        )
    return json.dumps(json.dumps(failures, separators=(",", ":"), ensure_ascii=False), ensure_ascii=False)


def item_vars(item: Any) -> dict[str, str]:
    """``{{item}}`` and ``{{item.<field>}}`` as Argo v4 substitutes them (``processItem``): a
    string item as it is; a field through ``Item.String()``, which is Go's JSON with a string's
    quotes cut off, so the quotes and backslashes inside a string field stay escaped; maps and
    lists as JSON with sorted keys (Go's ``json.Marshal``)."""

    def as_json(value: Any) -> str:
        return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)

    def field(value: Any) -> str:
        return as_json(value)[1:-1] if isinstance(value, str) else as_json(value)

    fields = {f"item.{k}": field(v) for k, v in item.items()} if isinstance(item, dict) else {}
    return {"item": item if isinstance(item, str) else as_json(item), **fields}


def depends_ok(expression: str | None, deps: Iterable[str], phases: Mapping[str, str]) -> bool:
    if expression is None:
        return all(phases.get(d) in FINISHED_OK for d in deps)

    def resolve(name: str) -> Any:
        task, _, result = name.partition(".")
        if task not in phases:
            return expr.UNKNOWN
        phase = phases[task]
        if not result:
            return phase in FINISHED_OK
        # a task's results in depends are its phases, but Errored for Error
        mapping = {p.value: p for p in (Phase.SUCCEEDED, Phase.FAILED, Phase.SKIPPED, Phase.OMITTED)}
        mapping["Errored"] = Phase.ERROR
        if result == "AnySucceeded" or result == "AllFailed":
            return phase == (Phase.SUCCEEDED if result == "AnySucceeded" else Phase.FAILED)
        if result == "Daemoned":
            return False
        if result not in mapping:
            raise WorkflowError(f"depends: unknown task result {name!r}")
        return phase == mapping[result]

    return bool(expr.evaluate(expression, resolve))
