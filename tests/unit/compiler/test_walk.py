"""Decomposition rules: which Runnables become steps and how inputs are wired; compile() refuses what
it cannot turn into a plan, naming where."""

from __future__ import annotations

import operator

import pytest
from chains import qa_chain, qa_prompt
from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import RunnableBranch, RunnableLambda, RunnableParallel, RunnablePassthrough

import llmstep
from llmstep.offline import OfflineChatModel


def names(compiled):
    return [s.display for s in compiled.plan.steps]


def test_sequence_is_one_step_per_element_in_order():
    plan = llmstep.compile(qa_chain()).plan
    assert [s.display for s in plan.steps] == ["ChatPromptTemplate", "OfflineChatModel", "StrOutputParser"]
    assert [s.shape for s in plan.steps] == [["input"], ["step", "chatprompttemplate"], ["step", "offlinechatmodel"]]
    assert [s.path for s in plan.steps] == ["chain.steps[0]", "chain.steps[1]", "chain.steps[2]"]
    assert plan.output == "stroutputparser"


def test_nested_sequences_flatten():
    inner = OfflineChatModel() | StrOutputParser()
    chain = qa_prompt() | (inner | RunnableLambda(str.upper))
    compiled = llmstep.compile(chain, allow_pickle=True)
    assert names(compiled) == ["ChatPromptTemplate", "OfflineChatModel", "StrOutputParser", "upper"]
    assert [s.depends for s in compiled.plan.steps][1:] == [
        ["chatprompttemplate"],
        ["offlinechatmodel"],
        ["stroutputparser"],
    ]


def test_parallel_branches_are_concurrent_steps_and_consumer_assembles():
    chain = {"answer": qa_chain(), "question": operator.itemgetter("question")} | RunnableLambda(lambda d: d)
    plan = llmstep.compile(chain, allow_pickle=True).plan
    by = {s.display: s for s in plan.steps}
    assert set(by) == {
        "answer-ChatPromptTemplate",
        "answer-OfflineChatModel",
        "answer-StrOutputParser",
        "question-RunnableLambda",
        "RunnableLambda",
    }
    # both branch heads read the chain input: they can run at the same time
    assert by["answer-ChatPromptTemplate"].depends == [] and by["question-RunnableLambda"].depends == []
    consumer = by["RunnableLambda"]
    assert consumer.shape == [
        "dict",
        {"answer": ["step", "answer-stroutputparser"], "question": ["step", "question-runnablelambda"]},
    ]
    assert not consumer.single_input  # one input file per key: no merge pod
    assert len(plan.steps) == 5


def test_passthrough_makes_no_step_and_feeds_the_input_through():
    chain = {"q": RunnablePassthrough(), "a": qa_prompt()} | RunnableLambda(lambda d: d)
    plan = llmstep.compile(chain, allow_pickle=True).plan
    assert len(plan.steps) == 2
    assert plan.steps[-1].shape == ["dict", {"q": ["input"], "a": ["step", "a-chatprompttemplate"]}]


def test_assign_adds_a_step_per_key_merged_by_the_consumer():
    chain = RunnablePassthrough.assign(answer=qa_chain()) | RunnableLambda(lambda d: d)
    plan = llmstep.compile(chain, allow_pickle=True).plan
    assert len(plan.steps) == 4
    assert plan.steps[-1].shape == ["merge", ["input"], {"answer": ["step", "answer-stroutputparser"]}]


def test_chain_ending_in_a_map_gets_one_result_step():
    plan = llmstep.compile({"a": qa_prompt(), "b": RunnablePassthrough()}).plan
    assert [s.display for s in plan.steps] == ["a-ChatPromptTemplate", "result"]
    assert plan.output == "result"
    assert plan.steps[-1].shape == ["dict", {"a": ["step", "a-chatprompttemplate"], "b": ["input"]}]


def test_nested_parallel_shapes_nest():
    chain = RunnableParallel(outer={"x": qa_prompt(), "y": RunnablePassthrough()}) | RunnableLambda(lambda d: d)
    plan = llmstep.compile(chain, allow_pickle=True).plan
    assert plan.steps[-1].shape == [
        "dict",
        {"outer": ["dict", {"x": ["step", "outer-x-chatprompttemplate"], "y": ["input"]}]},
    ]


def test_everything_else_is_one_step():
    branch = RunnableBranch((lambda x: x == "a", RunnableLambda(lambda x: 1)), RunnableLambda(lambda x: 2))
    bound = OfflineChatModel().bind(stop=["."])
    with_fallback = OfflineChatModel().with_fallbacks([OfflineChatModel(prefix="fallback")])
    for runnable, expected in (
        (branch, "RunnableBranch"),
        (bound, "OfflineChatModel"),
        (with_fallback, "RunnableWithFallbacks"),
    ):
        plan = llmstep.compile(runnable, allow_pickle=True).plan
        assert [s.display for s in plan.steps] == [expected]


def test_compile_rejects_non_runnables_and_bad_options():
    with pytest.raises(llmstep.CompileError, match="needs a Runnable"):
        llmstep.compile(42)
    with pytest.raises(llmstep.CompileError, match="data="):
        llmstep.compile(qa_chain(), data="s3")
    with pytest.raises(llmstep.CompileError, match="name="):
        llmstep.compile(qa_chain(), name="Not_Valid")
    with pytest.raises(llmstep.CompileError, match="secret="):
        llmstep.compile(qa_chain(), secret="Bad Secret")


def test_unserializable_runnable_is_a_compile_error_with_its_path():
    chain = qa_prompt() | OfflineChatModel() | RunnableLambda(lambda m: m.content)
    with pytest.raises(llmstep.CompileError) as err:
        llmstep.compile(chain)
    message = str(err.value)
    assert "chain.steps[2]" in message and "not_implemented" in message
    assert "allow_pickle=True" in message and "llmstep.Step" in message


def test_compile_is_pure_data_and_never_imports_hera():
    import subprocess
    import sys

    code = (
        "import sys, llmstep\n"
        "from langchain_core.prompts import ChatPromptTemplate\n"
        "c = llmstep.compile(ChatPromptTemplate.from_template('{q}'))\n"
        "print(any(m.startswith('hera') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_a_run_name_names_the_step_as_langsmith_shows_it():
    inner = RunnableLambda(lambda x: x).with_config(run_name="inner name")
    outer = inner.with_config(run_name="Outer")  # invoked, the outer config wins
    chain = inner | outer | RunnableLambda(lambda x: x).with_retry() | llmstep.Step(inner, name="explicit")
    plan = llmstep.compile(chain, allow_pickle=True).plan
    assert [s.display for s in plan.steps] == ["inner-name", "Outer", "RunnableLambda", "explicit"]
    branches = llmstep.compile({"a": inner, "b": inner}, allow_pickle=True).plan
    assert {s.display for s in branches.steps} >= {"a-inner-name", "b-inner-name"}
