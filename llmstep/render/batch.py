"""Results of a batch Workflow, read the same way from a local run record and a cluster status.

A batch Workflow (``Compiled.to_batch_dict``) fans the chain's DAG out over its ``inputs`` with
``withParam``; every item is a nested DAG whose node names carry the item's index:
``<workflow>.item(3:...)`` on a cluster, ``item(3)`` locally, and the nested steps are
``<item node>.<task>``. Results come back in input order; a failed item is an ``ItemFailed`` in
its place, so one failure never loses the others.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import Any

from llmstep import contract, jsonio
from llmstep.errors import BatchFailed, ItemFailed, LlmstepError

BATCH_TASK = "item"
STEP_NODES = ("Pod", "Retry")
"""A step is a Pod node, or a Retry node (with retries) that holds its successful attempt's outputs."""
INDEX = re.compile(rf"(?:^|\.){BATCH_TASK}\((\d+)[:)]")


def encode_inputs(inputs: Iterable[Any]) -> str:
    """The batch Workflow's ``inputs`` parameter: the JSON list ``argo submit -p inputs=`` takes.
    Each item reaches its first steps through ``{{item}}``, which Argo writes as JSON for an object
    or a list but as the bare text for a string (``processItem``); so objects and lists go as they
    are, and any other input (a string, a number, a LangChain object) in llmstep's envelope, an
    object, so that it arrives as exactly the value given (found on the real controller)."""
    from llmstep import serde, values

    items = []
    for i, x in enumerate(inputs):
        lookalike = isinstance(x, dict) and x.keys() == serde.ENVELOPE_KEYS
        if isinstance(x, (dict, list)) and values.is_plain(x) and not lookalike:
            serde.check_unicode(json.dumps(x, ensure_ascii=False), f"input {i}")
            items.append(x)
        else:
            items.append(jsonio.loads(serde.parameter_text(x, where=f"input {i}", envelope=True)))
    return json.dumps(items, separators=(",", ":"), ensure_ascii=False)


def input_count(arguments: Iterable[dict[str, Any]]) -> int:
    """How many inputs a batch Workflow's ``inputs`` parameter holds."""
    for param in arguments:
        if param.get("name") == "inputs" and param.get("value") is not None:
            return len(jsonio.loads(param["value"]))
    return 0


def item_index(name: str) -> int | None:
    match = INDEX.search(name)
    return int(match.group(1)) if match else None


def collect(
    count: int,
    nodes: Iterable[tuple[str, dict[str, Any]]],
    output_task: str,
    read_output: Callable[[dict[str, Any]], str | None],
    where: str,
    return_exceptions: bool,
) -> list[Any]:
    """Results in input order from ``(name, node)`` pairs; ``read_output(node)`` is the output
    task's serialized value, or None when it has none."""
    from llmstep import serde

    outputs: dict[int, Any] = {}
    failures: dict[int, list[tuple[str, str]]] = {}
    for name, node in nodes:
        index = item_index(name)
        kind = node.get("type", "Pod")  # local nodes of steps have no type
        if index is None or kind not in STEP_NODES:
            continue
        display = name.rsplit(".", 1)[-1]  # a node's name is its parent's name, ".", its task
        phase = node.get("phase")
        if phase in contract.FAILED_PHASES and kind == "Pod":
            failures.setdefault(index, []).append((display, node.get("message") or phase))
        elif display == output_task and phase == contract.Phase.SUCCEEDED:
            text = read_output(node)
            if text is not None:
                try:
                    outputs[index] = serde.loads_value(text, where=f"input {index} output")
                except LlmstepError as exc:
                    failures.setdefault(index, []).append((display, str(exc)))
    results: list[Any] = []
    for index in range(count):
        if index in outputs:  # a failed attempt that a retry made good does not fail the item
            results.append(outputs[index])
        elif index in failures:
            steps = [step for step, _ in failures[index]]
            message = "; ".join(f"step {step}: {msg}" for step, msg in failures[index])
            results.append(ItemFailed(index, message, steps))
        else:
            results.append(ItemFailed(index, "did not finish (not run, or stopped)"))
    if not return_exceptions and any(isinstance(r, ItemFailed) for r in results):
        raise BatchFailed(results, where)
    return results
