"""LangGraph graphs: why a graph is one step, and what compile says about it.

A compiled graph (``StateGraph(...).compile()``, ``create_agent(...)``, a functional-API
``@entrypoint``) is a Runnable that LangChain cannot serialize: its nodes are code. With
``allow_pickle`` it travels by value with cloudpickle as one step, and that step runs
``graph.invoke``. Nodes are not decomposed into steps yet; compile says so, once per graph, with
a ``OneStepWarning`` that names the step, the graph and the reason.

LangGraph is an optional dependency (``llmstep[langgraph]``): nothing here imports it unless the
chain holds one of its objects, which means it is loaded already.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any


class OneStepWarning(UserWarning):
    """A LangGraph graph compiles to one step; the message says why."""


def graph_in(runnable: Any) -> Any | None:
    """The LangGraph graph (a ``Pregel``) that ``runnable`` is, seen through bindings such as
    ``graph.with_config(...)``; None for anything else."""
    if "langgraph.pregel" not in sys.modules:
        return None  # no graph can exist without LangGraph loaded
    from langgraph.pregel import Pregel

    seen = 0
    while runnable is not None and seen < 32:
        if isinstance(runnable, Pregel):
            return runnable
        runnable = getattr(runnable, "bound", None)
        seen += 1
    return None


def one_step_reason(graph: Any) -> str:
    """Why ``graph`` runs as one step (each reason is also a reason a later decomposition keeps it
    whole)."""
    from langgraph.checkpoint.base import BaseCheckpointSaver
    from langgraph.graph.state import CompiledStateGraph

    if isinstance(graph.checkpointer, BaseCheckpointSaver):
        return (
            f"it was compiled with its own checkpointer ({type(graph.checkpointer).__name__}), which the step "
            "uses as a copy: what it saves there stays in the step"
        )
    if not isinstance(graph, CompiledStateGraph):
        return "it is built with the functional API (@entrypoint), whose tasks are calls in its code, not nodes"
    return "node decomposition (each node its own step) is not supported yet"


def one_step_note(runnable: Any, step: str) -> str | None:
    """What compile says when the step ``step`` is a LangGraph graph; None for any other Runnable."""
    graph = graph_in(runnable)
    if graph is None:
        return None
    nodes = [name for name in graph.nodes if not name.startswith("__")]
    shown = ", ".join(nodes[:8]) + (", ..." if len(nodes) > 8 else "")
    return (
        f"step {step!r} is the LangGraph graph {graph.get_name()!r}, which runs as one step (graph.invoke"
        f"{f' of its nodes {shown}' if nodes else ''}): {one_step_reason(graph)}"
    )


def unserializable_reason(runnable: Any, reason: str) -> str:
    """Why ``runnable`` cannot travel as LangChain JSON: for a graph, that its nodes are code."""
    graph = graph_in(runnable)
    if graph is None:
        return reason
    return (
        f"it is the LangGraph graph {graph.get_name()!r}, whose nodes are code (functions) that LangChain JSON "
        "cannot carry; with allow_pickle it runs as one step"
    )


def warn_one_step(notes: list[str], stacklevel: int) -> None:
    """One ``OneStepWarning`` per note, at ``stacklevel`` as in ``warnings.warn``."""
    for note in notes:
        warnings.warn(note, OneStepWarning, stacklevel=stacklevel + 1)
