"""llmstep.Step: a step boundary with its own settings, which are checked when it is made, and in
process it behaves as the Runnable it wraps."""

from __future__ import annotations

import pytest
from chains import qa_chain, qa_prompt
from langchain_core.output_parsers import StrOutputParser

import llmstep
from llmstep.offline import OfflineChatModel


def test_step_sets_boundary_and_settings():
    inner = qa_prompt() | OfflineChatModel()
    chain = (
        llmstep.Step(
            inner,
            name="ask",
            image="example/llm:2",
            retries=3,
            timeout="2m",
            resources={"cpu": "500m", "memory": "256Mi"},
        )
        | StrOutputParser()
    )
    plan = llmstep.compile(chain).plan
    assert [s.display for s in plan.steps] == ["ask", "StrOutputParser"]
    ask = plan.steps[0]
    assert ask.settings.image == "example/llm:2" and ask.settings.retries == 3 and ask.settings.timeout == 120
    assert ask.settings.resources == {
        "requests": {"cpu": "500m", "memory": "256Mi"},
        "limits": {"cpu": "500m", "memory": "256Mi"},
    }
    assert ask.runnable.endswith("RunnableSequence")  # everything inside runs as one step


def test_step_in_process_behaves_like_the_runnable():
    chain = qa_chain()
    wrapped = llmstep.Step(chain, name="whole")
    x = {"question": "why?"}
    assert wrapped.invoke(x) == chain.invoke(x)
    assert wrapped.batch([x, x]) == chain.batch([x, x])
    assert list(wrapped.stream(x)) == list(chain.stream(x))
    assert wrapped.get_input_jsonschema() == chain.get_input_jsonschema()


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"retries": -1}, "retries"),
        ({"timeout": "soon"}, "timeout"),
        ({"timeout": 0}, "timeout"),
        ({"retries": 1.5}, r"Step\(retries=...\) must be a whole number >= 0"),
        ({"retries": True}, r"Step\(retries=...\) must be a whole number >= 0"),
        ({"timeout": -5}, r"Step\(timeout=...\) must be positive"),
        ({"timeout": "0s"}, r"Step\(timeout=...\) must be positive"),
        ({"timeout": float("nan")}, r"Step\(timeout=nan\) must be whole seconds"),
        ({"timeout": float("inf")}, r"Step\(timeout=inf\) must be whole seconds"),
        ({"timeout": 2.5}, r"Step\(timeout=2.5\) must be whole seconds"),
        ({"timeout": "-5m"}, r"Step\(timeout='-5m'\) is not a duration"),
        ({"timeout": 10**12}, "longer than a Kubernetes duration can hold"),
        ({"timeout": "3000000h"}, "longer than a Kubernetes duration can hold"),
        ({"image": "has space"}, "image"),
        ({"resources": {"cpu": "1", "limits": {}}}, "resources"),
        ({"resources": {"cpu": 1.5}}, "quantity"),
        ({"name": ""}, "name"),
    ],
)
def test_step_rejects_bad_settings_naming_the_field(kwargs, fragment):
    with pytest.raises(llmstep.CompileError, match=fragment):
        llmstep.Step(qa_prompt(), **kwargs)


def test_step_secrets_must_be_environment_variable_names():
    with pytest.raises(llmstep.CompileError, match="environment variable names"):
        llmstep.Step(qa_prompt(), secrets="ACME_API_KEY")
    with pytest.raises(llmstep.CompileError, match="environment variable names"):
        llmstep.Step(qa_prompt(), secrets=["not a name"])
