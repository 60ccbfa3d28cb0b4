"""Step names: valid DNS labels and Argo task names, unique, readable, counted per label."""

from __future__ import annotations

from chains import qa_prompt
from langchain_core.runnables import RunnableLambda

import llmstep
from llmstep.naming import DNS_LABEL, TASK_NAME
from llmstep.offline import OfflineChatModel


def test_names_are_valid_unique_and_readable():
    chain = qa_prompt() | OfflineChatModel() | OfflineChatModel() | RunnableLambda(lambda x: x, name="my_func!!" * 20)
    plan = llmstep.compile(chain, allow_pickle=True).plan
    displays = [s.display for s in plan.steps]
    assert displays[1:3] == ["OfflineChatModel", "OfflineChatModel-2"]
    assert len({s.name for s in plan.steps}) == len(plan.steps)
    for step in plan.steps:
        assert DNS_LABEL.match(step.name) and len(step.name) <= 63
        assert TASK_NAME.match(step.display) and len(step.display) <= 63


def test_name_counts_resume_and_skip_names_already_taken():
    from llmstep.compiler.naming import NameAllocator

    names = NameAllocator()
    got = [names.allocate(label)[0] for label in ["a", "a-3", "a", "A", "a", "main", "main"]]
    # "a-3" was taken by a step of that name, so the third "a" skips it; case-insensitive like DNS labels
    assert got == ["a", "a-3", "a-2", "A-4", "a-5", "main-2", "main-3"]
