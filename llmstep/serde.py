"""Value encoding: the envelope a value travels in between steps, and its text.

Values crossing between steps are data. Plain JSON stays plain (``kind: json``) and is never
revived. Anything else is a tree with tagged nodes (``kind: value``, :mod:`llmstep.values`): a node
naming a class loads only when the payload's ``values`` vouch for it, LangChain nodes only for its
value classes (messages, prompt values, documents, generations), never with secrets; a user dict
with a reserved key is escaped and stays a dict. Values are never pickles (only the classes from
the user's own code that a payload vouches for travel by value, with ``allow_pickle``). The chain
input unwraps only ``kind: value`` envelopes (:func:`loads_input`).

A step's payload, its trust model and its allowlists are :mod:`llmstep.payloads`.
"""

from __future__ import annotations

import json
from typing import Any

from llmstep import jsonio, valueclasses, values
from llmstep.errors import PayloadError, SerializationError
from llmstep.plain import plain

FORMAT_VERSION = 2
"""Version of both the payload and the value envelope; a step refuses any other."""

ENVELOPE_KEYS = frozenset({"llmstep", "kind", "value"})


def encode_value(
    value: Any, classes: valueclasses.Classes | None = None, *, where: str = "the value"
) -> dict[str, Any]:
    """Wrap a value in a versioned envelope: ``kind: json`` for plain JSON, ``kind: value`` for a
    tree with tagged nodes (:mod:`llmstep.values`). ``classes`` refuses a class it does not vouch for."""
    if values.is_plain(value):
        return {"llmstep": FORMAT_VERSION, "kind": "json", "value": value}
    return {"llmstep": FORMAT_VERSION, "kind": "value", "value": values.encode(value, classes, where)}


def dumps_value(value: Any, *, where: str = "the value", classes: valueclasses.Classes | None = None) -> str:
    """A value's envelope as JSON text, always valid UTF-8 (a lone surrogate is refused: it cannot
    be written to a file, a pod's parameter or an HTTP request)."""
    text = json.dumps(encode_value(value, classes, where=where), ensure_ascii=False, allow_nan=False)
    check_unicode(text, where)
    return text


def check_unicode(text: str, where: str) -> None:
    """SerializationError naming ``where`` when ``text`` (or the JSON it holds) has a lone surrogate."""
    bad = _surrogate(text)
    if bad is None and "\\u" in text:  # an escaped one, "\ud800", is one once the JSON is read
        try:
            bad = _surrogate(json.dumps(jsonio.loads(text), ensure_ascii=False))
        except ValueError:
            bad = None
    if bad is not None:
        raise SerializationError(
            f"{where} holds a lone surrogate ({bad!r}), which is not valid Unicode text; "
            "fix the text (it often comes from a mis-decoded file or a cut emoji)"
        )


def _surrogate(text: str) -> str | None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return text[exc.start : exc.end]
    return None


def parameter_text(value: Any, *, where: str = "the input", envelope: bool = False) -> str:
    """A chain input as the Workflow's ``input`` parameter: plain JSON stays plain, exactly as
    ``argo submit -p input='...'`` passes it (and as the Argo UI and ``argo resubmit`` show it);
    other values, and JSON that looks like llmstep's own envelope, go in an envelope of kind
    ``value``, the only kind :func:`loads_input` unwraps (``envelope`` puts any value in one)."""
    if not envelope and values.is_plain(value) and not (isinstance(value, dict) and value.keys() == ENVELOPE_KEYS):
        return json.dumps(value, ensure_ascii=False)
    doc = {"llmstep": FORMAT_VERSION, "kind": "value", "value": values.encode(value, None, where)}
    text = json.dumps(doc, ensure_ascii=False, allow_nan=False)
    check_unicode(text, where)
    return text


def kube_literal(text: str) -> str:
    r"""``text`` as Kubernetes leaves it in a container's env values, command and args, where it
    replaces ``$(NAME)`` with the container's variable NAME: in JSON a ``$(`` can only be inside a
    string, where ``$\u0028`` means the same. Text that is not JSON is returned as it is."""
    if "$(" not in text:
        return text
    try:
        json.loads(text)
    except ValueError:
        return text
    return text.replace("$(", "$\\u0028")


def is_text_input(text: str) -> bool:
    """True for a chain input that is text, not JSON (``-p input=hello``, a batch item that is a
    string): the step reads it as that string. Text that starts like JSON (``{``, ``[``, ``"``) is
    meant as JSON, so broken JSON such as ``{oops`` stays an error."""
    if text.lstrip().startswith(("{", "[", '"')):
        return False
    try:
        jsonio.loads(text)
    except ValueError:
        return True
    return False


def text_of(value: Any) -> str | None:
    """A value's text for people: a message's content and the tools it calls (a model's answer
    that only calls tools has no content), a prompt value's text; None for others."""
    content = getattr(value, "content", None)
    if isinstance(content, str):
        calls = getattr(value, "tool_calls", None)
        if not calls or not isinstance(calls, list):
            return content
        lines = [content] if content else []
        for call in calls:
            if isinstance(call, dict):
                args = json.dumps(call.get("args", {}), ensure_ascii=False, default=str)
                lines.append(f"tool call: {call.get('name', '?')}({args})")
        return "\n".join(lines)
    if type(value).__name__.endswith("PromptValue") and callable(getattr(value, "to_string", None)):
        return value.to_string()
    return None


def loads_input(text: str, *, where: str = "input", classes: valueclasses.Classes | None = None) -> Any:
    """The chain input (the ``input`` parameter, ``--input``): user data. Only an envelope of kind
    ``value`` is unwrapped (what :func:`parameter_text` writes for values JSON cannot hold); a
    user's JSON that looks like a ``kind: json`` envelope, or anything else, stays as it is."""
    try:
        doc = jsonio.loads(text)
    except ValueError as exc:
        raise PayloadError(unreadable(where, exc)) from exc
    if isinstance(doc, dict) and doc.keys() == ENVELOPE_KEYS and doc.get("kind") == "json":
        return doc
    return decode_value(doc, where=where, classes=classes)


def unreadable(where: str, exc: ValueError) -> str:
    """Why the JSON text at ``where`` cannot be read: too deep, or not JSON."""
    return f"{where}: {exc}" if isinstance(exc, jsonio.TooDeep) else f"{where} is not valid JSON: {exc}"


def decode_value(doc: Any, *, where: str = "input", classes: valueclasses.Classes | None = None) -> Any:
    """Turn an envelope (or raw user JSON, such as the workflow parameter) into a value; classes
    named by the value load only as ``classes`` allows (default: :data:`llmstep.valueclasses.CLIENT`; a
    step passes its payload's)."""
    if not (isinstance(doc, dict) and doc.keys() == ENVELOPE_KEYS):
        return doc  # raw user JSON is data, whatever keys it has
    if doc["llmstep"] != FORMAT_VERSION:
        raise PayloadError(
            f"{where}: value format version {doc['llmstep']!r} is not supported by this "
            f"llmstep (it reads version {FORMAT_VERSION}); use the same llmstep version "
            "to compile and to run"
        )
    if doc["kind"] == "json":
        return doc["value"]
    if doc["kind"] == "value":
        return values.decode(doc["value"], classes if classes is not None else valueclasses.CLIENT, where)
    raise PayloadError(f"{where}: unknown value kind {doc['kind']!r} (expected json or value)")


def loads_value(text: str, *, where: str = "input", classes: valueclasses.Classes | None = None) -> Any:
    try:
        doc = jsonio.loads(text)
    except ValueError as exc:
        raise PayloadError(unreadable(where, exc)) from exc
    return decode_value(doc, where=where, classes=classes)


def plain_of(value: Any) -> Any:
    """A value as plain JSON data, for printing (see :func:`llmstep.plain.plain`)."""
    return plain(encode_value(value)["value"])


def plain_value(text: str, *, where: str = "the output") -> Any:
    """A value's envelope text as plain JSON data, reviving nothing (what a reader prints)."""
    try:
        doc = jsonio.loads(text)
    except ValueError as exc:
        raise PayloadError(unreadable(where, exc)) from exc
    if isinstance(doc, dict) and doc.keys() == ENVELOPE_KEYS:
        return plain(doc["value"])
    return doc
