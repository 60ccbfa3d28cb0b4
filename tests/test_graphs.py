"""LangGraph graphs run as one step: the local run of a compiled graph returns what ``graph.invoke``
returns, on both engines (through the fork server, as ``run_local`` starts steps), its failures
carry the graph's own error, and compile says why the graph is one step."""

from __future__ import annotations

import warnings

import pytest
from conftest import chain_module, run_cli
from graph_cases import CASES, FAILING, comparable, counter
from langchain_core.runnables import RunnableLambda
from langgraph.checkpoint.memory import InMemorySaver

import llmstep
from llmstep.compiler.graphs import OneStepWarning

ENGINES = ("argo", "tekton")


def _compile(graph):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OneStepWarning)
        return llmstep.compile(graph, allow_pickle=True)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_graph_runs_as_one_step_and_returns_what_invoke_returns(case, engine):
    build, given = CASES[case]
    compiled = _compile(build())  # before any invoke: a graph holds nothing of an earlier run
    expected = build().invoke(given)
    assert comparable(compiled.run_local(given, engine=engine)) == comparable(expected)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("case", sorted(FAILING))
def test_an_error_of_the_graph_fails_the_run_with_its_class_and_message(case, engine):
    build, given, error = FAILING[case]
    with pytest.raises(Exception) as raised:
        build().invoke(given)
    assert type(raised.value).__name__ == error
    with pytest.raises(llmstep.RunFailed) as failed:
        _compile(build()).run_local(given, engine=engine)
    [failure] = failed.value.failures
    assert failure["message"] == f"{error}: {raised.value} (exit code 1)"


def test_a_graph_inside_a_sequence_is_one_of_its_steps():
    build, _ = CASES["conditional_edges"]
    chain = RunnableLambda(lambda n: {"n": n, "path": ["given"]}) | build()
    compiled = _compile(chain)
    assert [s.display for s in compiled.plan.steps] == ["RunnableLambda", "LangGraph"]
    assert compiled.run_local(1) == chain.invoke(1)


def test_a_graph_with_its_own_checkpointer_runs_on_a_copy_of_it():
    graph = counter(checkpointer=InMemorySaver()).with_config(configurable={"thread_id": "t1"})
    compiled = _compile(graph)
    assert compiled.run_local({"n": 1, "path": []}) == {"n": 2, "path": ["grow"]}
    assert compiled.run_local({"n": 1, "path": []}, engine="tekton") == graph.invoke({"n": 1, "path": []})


def test_the_command_line_prints_why_a_graph_is_one_step(tmp_path):
    ref = chain_module(tmp_path, ("from graph_cases import CASES\ngraph = CASES['command'][0]()\n"))
    result = run_cli("compile", f"{ref}:graph", "--allow-pickle", "-o", "wf.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (
        "OneStepWarning: step 'LangGraph' is the LangGraph graph 'LangGraph', which runs as one step" in result.stderr
    )
    assert (tmp_path / "wf.yaml").exists()
