"""A value tree as plain JSON data, for people and programs that read it (the CLI, the Argo UI's
preview): what :mod:`llmstep.values` writes, with every tagged node as the data it holds."""

from __future__ import annotations

import math
from typing import Any

from llmstep.values import TAG


def plain(tree: Any) -> Any:
    """A tree as plain JSON data, for people and programs that read it (the CLI, the Argo UI's
    preview): models and dataclasses as their fields, tuples and sets as lists, bytes as base64,
    dates, UUIDs and decimals as text, enums as their member's name, a timedelta as seconds.
    Non-finite floats stay floats (JSON writers choose: the CLI writes ``null``)."""
    if isinstance(tree, list):
        return [plain(v) for v in tree]
    if not isinstance(tree, dict):
        return tree
    tag = tree.get(TAG)
    if tag is None:
        return {k: plain(v) for k, v in tree.items()}
    if tag in ("tuple", "set", "frozenset"):
        return [plain(v) for v in tree.get("items", [])]
    if tag == "dict":
        return {_key_text(plain(k)): plain(v) for k, v in tree.get("items", [])}
    if tag in ("model", "model_v1", "dataclass"):
        return plain(tree.get("fields", {}))
    if tag == "float":
        words: dict[Any, float] = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}  # keyed by what the tree holds
        return words.get(tree.get("value"), tree.get("value"))
    for key in ("iso", "text", "base64", "name"):
        if key in tree:
            return tree[key]
    if tag == "timedelta":
        return tree.get("days", 0) * 86400 + tree.get("seconds", 0) + tree.get("microseconds", 0) / 1e6
    return {k: plain(v) for k, v in tree.items()}


def _key_text(key: Any) -> str:
    if isinstance(key, str):
        return key
    import json

    return json.dumps(key, ensure_ascii=False)
