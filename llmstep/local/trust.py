"""What a document from a file may run locally.

A Workflow or Tekton file (and a run record, which is a file too) is not the user's own code: a
``format: pickle`` payload in it runs whatever the pickle holds as soon as a step loads it, and its
digest is written by the same hand. Without ``--allow-pickle`` such a run is refused before it
starts (:func:`refuse_pickles`, naming the step), and each of its steps is told to refuse a pickle
payload (:func:`step_env`), whatever path the payload took to the step (a parameter, an earlier
step's output).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from llmstep import contract, jsonio, serde
from llmstep.errors import WorkflowError


def refuse_pickles(docs: list[dict[str, Any]], parameters: Mapping[str, Any] | None = None) -> None:
    """WorkflowError naming the first step whose payload in ``docs`` (or in the run's
    ``parameters``) is a pickle."""
    places = [(f"{doc.get('kind', 'document')} {_name(doc)}", doc) for doc in docs]
    places += [(f"parameter {name}", value) for name, value in (parameters or {}).items()]
    for where, node in places:
        for path, payload in _payloads(node, ""):
            if payload.get("format") == "pickle":
                raise WorkflowError(serde.refused_pickle(str(payload.get("name", "?")), f"{where}, {path or 'value'}"))


def step_env(allow_pickle: bool) -> dict[str, str]:
    """What every step's environment gets last (over the template's own env)."""
    return {} if allow_pickle else {contract.PICKLE_ENV: contract.REFUSE}


def _name(doc: Any) -> str:
    meta = doc.get("metadata") if isinstance(doc, dict) else None
    if not isinstance(meta, dict):
        return ""
    return str(meta.get("name") or meta.get("generateName") or "")


def _payloads(node: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    r"""Every llmstep payload anywhere in ``node``, as a mapping or held as JSON text (however its
    keys are spelled: a check on the text alone misses ``"\u006clmstep"``), with its field path."""
    if isinstance(node, str):
        if node.lstrip()[:1] in ("{", "[", '"'):
            try:
                value = jsonio.loads(node)
            except ValueError:
                return
            if not isinstance(value, str) or value != node:
                yield from _payloads(value, path)
    elif isinstance(node, dict):
        if "llmstep" in node and "format" in node:
            yield path, node
        for key, value in node.items():
            yield from _payloads(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _payloads(value, f"{path}[{i}]")
