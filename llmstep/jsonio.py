"""JSON in, bounded: every JSON text llmstep reads from a user, a file or a step (``--input``,
``--inputs``, a payload, a value envelope, a run record, ``--workflow-failures``) is parsed here, so
a text nested tens of thousands deep is refused with a message instead of a ``RecursionError``.

The bound, :data:`MAX_DEPTH`, is also the YAML loader's (:mod:`llmstep.yamlio`). It sits well above
what chains and Workflows nest (LangChain's serialized chains, Kubernetes objects: tens of levels)
and well below what Python's own recursion allows for the code that walks a value afterwards
(decoding LangChain objects takes several frames a level; Python stops at 1,000 frames).
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 200
"""How deep arrays and objects (YAML: sequences and mappings) may nest in what llmstep reads."""


class TooDeep(ValueError):
    """A JSON or YAML text nests deeper than :data:`MAX_DEPTH`. A ``ValueError``, as
    ``json.JSONDecodeError`` is: every caller that names its option for bad JSON names it for this."""

    def __init__(self, depth: int | None = None) -> None:
        found = f"{depth} levels" if depth is not None else f"more than {MAX_DEPTH} levels"
        super().__init__(f"it nests arrays and objects {found} deep; llmstep reads at most {MAX_DEPTH}")


def loads(text: str) -> Any:
    """``json.loads`` with the depth bound: ValueError (``json.JSONDecodeError`` or
    :class:`TooDeep`) for a text that is not JSON or nests deeper than :data:`MAX_DEPTH`."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise TooDeep() from None
    # A text with fewer opening brackets than the bound cannot nest past it (brackets inside
    # strings only over-count): most texts are never walked.
    if text.count("[") + text.count("{") > MAX_DEPTH:
        check_depth(value)
    return value


def check_depth(value: Any) -> None:
    """:class:`TooDeep` when lists and dicts in ``value`` nest deeper than :data:`MAX_DEPTH`;
    iterative, so it cannot itself run out of stack."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        for child in children:
            if isinstance(child, (dict, list)):
                if depth + 1 > MAX_DEPTH:
                    raise TooDeep(_depth(child, depth + 1))
                stack.append((child, depth + 1))


def _depth(node: Any, depth: int) -> int:
    """The depth of the deepest container under ``node`` (at ``depth``), for the message."""
    deepest, stack = depth, [(node, depth)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        children = node.values() if isinstance(node, dict) else node
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return deepest
