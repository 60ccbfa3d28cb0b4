"""The input-shape grammar: how a step's input is built from its sources. Pure data, written by
the compiler (:func:`chain_input`, :func:`step_output`, :func:`dict_of`, :func:`merged`), read by
the renderers (one input file per source) and assembled by the executor (:func:`assemble`); each
rule is here once, and no other module spells a shape.

A shape is a small JSON tree, kept in a payload under :data:`KEY`:

- ``["input"]``: the chain input (the workflow parameter ``input``);
- ``["step", NAME]``: the output of step NAME;
- ``["dict", {KEY: SHAPE, ...}]``: a dict built from other shapes (``RunnableParallel``);
- ``["merge", SHAPE, {KEY: SHAPE, ...}]``: a dict updated with more keys (``.assign()``).

The leaves of a shape are the step's *sources*; each source arrives as one file: ``input.json``
when the whole input is one source (:func:`is_single`), else ``input/<source>.json``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from llmstep import contract
from llmstep.errors import CompileError, PayloadError

KEY = "inputs"
"""The key of a step's payload that holds its shape."""
INPUT, STEP, DICT, MERGE = "input", "step", "dict", "merge"
"""The kinds of shape: the first item of each."""

CHAIN_INPUT = "input"
"""The source name of the chain input; never used as a step name."""


def chain_input() -> list:
    """The shape of the chain input."""
    return [INPUT]


def step_output(name: str) -> list:
    """The shape of step ``name``'s output."""
    return [STEP, name]


def dict_of(branches: dict[str, list]) -> list:
    """The shape of a dict whose keys are built from ``branches`` (``RunnableParallel``)."""
    return [DICT, branches]


def merged(base: list, branches: dict[str, list]) -> list:
    """The shape of ``base`` (a dict) updated with the keys of ``branches`` (``.assign()``)."""
    return [MERGE, base, branches]


def output_step(shape: list) -> str | None:
    """The step whose whole output ``shape`` is, or None when it is built otherwise."""
    return shape[1] if shape[0] == STEP else None


def is_single(shape: Any) -> bool:
    """Whether the whole input is one source (the chain input or one step's output)."""
    return isinstance(shape, list) and bool(shape) and shape[0] in (INPUT, STEP)


def shape_sources(shape: list) -> list[str]:
    """The sources a shape reads, in first-seen order, without repeats."""
    seen: dict[str, None] = {}
    for leaf in _leaves(shape):
        seen.setdefault(leaf, None)
    return list(seen)


def _leaves(shape: list) -> Iterator[str]:
    kind = shape[0]
    if kind == INPUT:
        yield CHAIN_INPUT
    elif kind == STEP:
        yield shape[1]
    elif kind == DICT:
        for sub in shape[1].values():
            yield from _leaves(sub)
    elif kind == MERGE:
        yield from _leaves(shape[1])
        for sub in shape[2].values():
            yield from _leaves(sub)
    else:
        raise CompileError(f"unknown input shape {kind!r}")


def assemble(shape: Any, source: Callable[[str], Any], step: Any) -> Any:
    """The value ``shape`` describes, each source read with ``source(name)``; PayloadError (a
    step's files are unusable) for a shape outside the grammar, or a merge onto a value that is not
    a dict, naming ``step``."""

    def build(node: Any) -> Any:
        if not isinstance(node, list) or not node:
            raise PayloadError(f"{contract.PAYLOAD} has a malformed input shape: {node!r}")
        kind = node[0]
        if kind == INPUT:
            return source(CHAIN_INPUT)
        if kind == STEP:
            return source(node[1])
        if kind == DICT:
            return {key: build(sub) for key, sub in node[1].items()}
        if kind == MERGE:
            base = build(node[1])
            if not isinstance(base, dict):
                raise PayloadError(
                    f"step {step!r} assigns keys to its input, which must be a dict, but got {type(base).__name__}"
                )
            return {**base, **{key: build(sub) for key, sub in node[2].items()}}
        raise PayloadError(f"{contract.PAYLOAD} has an unknown input shape {kind!r}")

    return build(shape)
