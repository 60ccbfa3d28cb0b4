"""Chains used across the tests: real LangChain objects, built fresh for each test."""

from __future__ import annotations

import json
from operator import itemgetter

from langchain_core.documents import Document
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.output_parsers import CommaSeparatedListOutputParser, JsonOutputParser, StrOutputParser
from langchain_core.prompt_values import PromptValue
from langchain_core.prompts import ChatPromptTemplate, PromptTemplate
from langchain_core.runnables import RunnableBranch, RunnableLambda, RunnableParallel, RunnablePassthrough

import llmstep
from llmstep.offline import OfflineChatModel


def qa_prompt() -> ChatPromptTemplate:
    return ChatPromptTemplate.from_messages([("system", "Be brief."), ("human", "{question}")])


def qa_chain():
    return qa_prompt() | OfflineChatModel() | StrOutputParser()


def two_model_chain(url: str):
    """Two model steps (model-a, then model-b) against the OpenAI-compatible server at ``url``: a
    run whose token totals per model the tests compare with what the server reported."""
    from langchain_openai import ChatOpenAI

    return (
        qa_prompt()
        | ChatOpenAI(model="model-a", base_url=url, api_key="sk-compile-time-placeholder-000")
        | ChatPromptTemplate.from_messages([("human", "now shorter: {x}")])
        | ChatOpenAI(model="model-b", base_url=url, api_key="sk-compile-time-placeholder-000")
    )


def word_counts(body: dict, text: str) -> tuple[int, int]:
    """The loopback model server's token counts for a request and its answer: their words."""
    return sum(len(str(m.get("content", "")).split()) for m in body["messages"]), len(text.split())


def openai_chain(api_key: str = "sk-test-not-a-real-key-1234567890"):
    from langchain_openai import ChatOpenAI

    return qa_prompt() | ChatOpenAI(model="gpt-4o-mini", api_key=api_key) | StrOutputParser()


LOOKALIKE = {
    "lc": 1,
    "type": "constructor",
    "id": ["langchain", "schema", "messages", "AIMessage"],
    "kwargs": {"content": "not a message"},
}


def _fail(x):
    raise RuntimeError("primary failed")


def picky(x):
    """A step that fails for an input whose question says "boom"."""
    if "boom" in x["question"]:
        raise ValueError("no booms here")
    return x


def needs_file(path: str):
    """A step (``gate``) that fails until the file ``path`` exists."""
    from pathlib import Path

    def gate(x):
        if not Path(path).exists():
            raise RuntimeError(f"{path} is not there yet")
        return x + " (gate passed)"

    return gate


def corpus():
    """Chain shapes and the values they pass between steps: {case: (chain, input)}; compiled
    with allow_pickle=True (lambdas travel by value)."""
    return {
        "sequence": (qa_chain(), {"question": "What is a DAG?"}),
        "prompt-value": (qa_prompt(), {"question": "q"}),
        "model-message": (qa_prompt() | OfflineChatModel(), {"question": "q"}),
        "terminal-parallel": (RunnableParallel(answer=qa_chain(), prompt=qa_prompt()), {"question": "both"}),
        "parallel-consumer": (
            {"a": qa_chain(), "b": qa_chain()} | RunnableLambda(lambda d: d["a"] + " | " + d["b"]),
            {"question": "twice"},
        ),
        "assign": (RunnablePassthrough.assign(answer=qa_chain()), {"question": "assign me"}),
        "itemgetter-dict": (
            {"q": itemgetter("question"), "n": itemgetter("n")} | RunnableLambda(lambda d: d["q"] * d["n"]),
            {"question": "ab", "n": 3},
        ),
        "lambdas": (RunnableLambda(lambda x: x + 1) | RunnableLambda(lambda x: [x, x * 2]), 1),
        "branch": (
            RunnableBranch(
                (lambda x: x["kind"] == "a", RunnableLambda(lambda x: "A")), RunnableLambda(lambda x: "other")
            ),
            {"kind": "a"},
        ),
        "fallbacks": (RunnableLambda(_fail).with_fallbacks([RunnableLambda(lambda x: "fallback " + x)]), "x"),
        "json-parser": (RunnableLambda(lambda x: AIMessage(content=json.dumps(x))) | JsonOutputParser(), {"k": [1, 2]}),
        "list-parser": (RunnableLambda(lambda x: AIMessage(content="a, b, c")) | CommaSeparatedListOutputParser(), "x"),
        "messages-in": (OfflineChatModel() | StrOutputParser(), [SystemMessage("be kind"), HumanMessage("hello")]),
        "documents": (
            RunnableLambda(lambda q: [Document(page_content=q, metadata={"i": 1})])
            | RunnableLambda(lambda docs: [*docs, Document(page_content="extra")]),
            "query",
        ),
        "string-input": (PromptTemplate.from_template("Say {word}") | OfflineChatModel() | StrOutputParser(), "hello"),
        "list-input": (RunnableLambda(sorted) | RunnableLambda(lambda xs: xs[::-1]), [3, 1, 2]),
        "unicode": (qa_chain(), {"question": "日本語で答えて？ émoji 🚀 ∑"}),
        "large-value": (
            RunnableLambda(lambda s: s * 1000) | RunnableLambda(lambda s: [len(s), s[-7:]]),
            "abcdefg" * 50,
        ),
        "lc-lookalike": (RunnablePassthrough.assign(seen=lambda d: sorted(d)) | RunnableLambda(lambda d: d), LOOKALIKE),
        "lookalike-between-steps": (
            RunnableLambda(lambda x: dict(LOOKALIKE)) | RunnableLambda(lambda d: [d, type(d).__name__]),
            0,
        ),
        "nested-parallel": (
            {"outer": {"x": qa_prompt(), "y": RunnablePassthrough()}} | RunnableLambda(lambda d: sorted(d["outer"])),
            {"question": "n"},
        ),
        "step-boundary": (
            llmstep.Step(qa_prompt() | OfflineChatModel(), name="ask") | StrOutputParser(),
            {"question": "b"},
        ),
    }


def normalize(value):
    """Compare messages by type and content; prompt values by their messages; documents by content."""
    if isinstance(value, BaseMessage):
        return ("message", value.type, value.content)
    if isinstance(value, PromptValue):
        return ("prompt", [normalize(m) for m in value.to_messages()])
    if isinstance(value, Document):
        return ("document", value.page_content, value.metadata)
    if isinstance(value, dict):
        return {k: normalize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normalize(v) for v in value]
    return value
