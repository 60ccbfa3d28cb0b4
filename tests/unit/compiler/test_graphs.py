"""What compile says about a LangGraph graph: which Runnables are graphs, why a graph is one step
(a OneStepWarning at the caller's compile), and why a graph needs allow_pickle."""

from __future__ import annotations

import pytest
from graph_cases import CASES, counter
from langchain_core.runnables import RunnableLambda
from langgraph.checkpoint.memory import InMemorySaver

import llmstep
from llmstep.compiler.graphs import OneStepWarning, graph_in, one_step_note, unserializable_reason


def test_a_graph_is_found_through_its_bindings_and_nothing_else_is_a_graph():
    graph = counter()
    assert graph_in(graph) is graph
    assert graph_in(graph.with_retry().with_config(tags=["counted"])) is graph
    assert graph_in(RunnableLambda(lambda x: x)) is None
    assert one_step_note(RunnableLambda(lambda x: x), "step") is None
    assert unserializable_reason(RunnableLambda(lambda x: x), "its own reason") == "its own reason"


def test_the_note_names_the_step_the_graph_and_its_nodes():
    assert one_step_note(CASES["command"][0](), "decider") == (
        "step 'decider' is the LangGraph graph 'LangGraph', which runs as one step (graph.invoke of its nodes "
        "decide, odd, even): node decomposition (each node its own step) is not supported yet"
    )


def test_compile_says_why_a_graph_is_one_step():
    reasons = {
        "node decomposition (each node its own step) is not supported yet": counter(),
        "compiled with its own checkpointer (InMemorySaver)": counter(checkpointer=InMemorySaver()).with_config(
            configurable={"thread_id": "t1"}
        ),
        "functional API (@entrypoint)": CASES["functional_api"][0](),
    }
    for reason, graph in reasons.items():
        with pytest.warns(OneStepWarning) as caught:
            llmstep.compile(graph, allow_pickle=True, name="counted")
        [warning] = caught.list
        text = str(warning.message)
        assert text.startswith("step 'LangGraph' is the LangGraph graph 'LangGraph', which runs as one step")
        assert reason in text
        assert warning.filename == __file__  # at the caller's compile


def test_without_allow_pickle_compile_says_the_nodes_are_code_and_what_to_pass():
    with pytest.raises(llmstep.CompileError) as refused:
        llmstep.compile(counter())
    message = str(refused.value)
    assert "the LangGraph graph 'LangGraph', whose nodes are code (functions)" in message
    assert "Pass allow_pickle=True (or --allow-pickle)" in message
