"""The input-shape grammar: how a step's input is built from its sources. Pure data, read by the
compiler (which writes shapes), the renderers (one input file per source) and the executor (which
assembles the value); each rule is here once.

A shape is a small JSON tree:

- ``["input"]``: the chain input (the workflow parameter ``input``);
- ``["step", NAME]``: the output of step NAME;
- ``["dict", {KEY: SHAPE, ...}]``: a dict built from other shapes (``RunnableParallel``);
- ``["merge", SHAPE, {KEY: SHAPE, ...}]``: a dict updated with more keys (``.assign()``).

The leaves of a shape are the step's *sources*; each source arrives as one file: ``input.json``
when the whole input is one source (:func:`is_single`), else ``input/<source>.json``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from llmstep.errors import CompileError

CHAIN_INPUT = "input"
"""The source name of the chain input; never used as a step name."""


def is_single(shape: Any) -> bool:
    """Whether the whole input is one source (the chain input or one step's output)."""
    return isinstance(shape, list) and bool(shape) and shape[0] in ("input", "step")


def shape_sources(shape: list) -> list[str]:
    """The sources a shape reads, in first-seen order, without repeats."""
    seen: dict[str, None] = {}
    for leaf in _leaves(shape):
        seen.setdefault(leaf, None)
    return list(seen)


def _leaves(shape: list) -> Iterator[str]:
    kind = shape[0]
    if kind == "input":
        yield CHAIN_INPUT
    elif kind == "step":
        yield shape[1]
    elif kind == "dict":
        for sub in shape[1].values():
            yield from _leaves(sub)
    elif kind == "merge":
        yield from _leaves(shape[1])
        for sub in shape[2].values():
            yield from _leaves(sub)
    else:
        raise CompileError(f"unknown input shape {kind!r}")
