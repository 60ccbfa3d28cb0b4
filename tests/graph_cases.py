"""LangGraph graphs modelled on LangGraph's how-to guides, each with an input, for the tests that
run a graph as one step and compare the result with ``graph.invoke``.

``CASES`` maps a name to ``(build, input)``: ``build()`` returns the compiled graph. ``FAILING``
maps a name to ``(build, input, error class name)``: graphs whose ``invoke`` raises. Messages get
fresh random ids in every invoke (``add_messages``, the chat model's run id), so ``comparable``
drops them before a result is compared.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal, TypedDict

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import tool
from langgraph.func import entrypoint, task
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.types import Command, Send
from pydantic import BaseModel, Field


class ScriptedToolModel(BaseChatModel):
    """A chat model that is a pure function of its messages: it calls ``tool_name`` with the last
    human message's text until a tool has answered, then answers with the tool's result."""

    tool_name: str = "word_count"

    @property
    def _llm_type(self) -> str:
        return "scripted-tool-model"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedToolModel:
        return self

    def _generate(
        self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        answered = [m for m in messages if isinstance(m, ToolMessage)]
        if answered:
            message = AIMessage(content=f"the tool says {answered[-1].text}")
        else:
            question = next(m.text for m in reversed(messages) if isinstance(m, HumanMessage))
            message = AIMessage(
                content="",
                tool_calls=[{"name": self.tool_name, "args": {"text": question}, "id": f"call-{len(messages)}"}],
            )
        return ChatResult(generations=[ChatGeneration(message=message)])


@tool
def word_count(text: str) -> int:
    """Count the words of a text."""
    return len(text.split())


# -- reducers: operator.add, a custom reducer, a plain overwrite ------------------------------


def _keep_max(old: int, new: int) -> int:
    return max(old, new)


class Reduced(TypedDict):
    total: int
    log: Annotated[list, operator.add]
    best: Annotated[int, _keep_max]


def reducers() -> Any:
    def first(s: Reduced) -> dict:
        return {"total": s["total"] + 1, "log": ["first"], "best": 7}

    def second(s: Reduced) -> dict:
        return {"total": s["total"] * 10, "log": ["second"], "best": 3}

    b = StateGraph(Reduced)
    b.add_node("first", first)
    b.add_node("second", second)
    b.add_edge(START, "first")
    b.add_edge("first", "second")
    b.add_edge("second", END)
    return b.compile()


# -- add_messages ----------------------------------------------------------------------------


class Chat(TypedDict):
    messages: Annotated[list, add_messages]


def messages() -> Any:
    def reply(s: Chat) -> dict:
        return {"messages": [AIMessage(content=f"heard {len(s['messages'])} messages")]}

    b = StateGraph(Chat)
    b.add_node("reply", reply)
    b.add_edge(START, "reply")
    b.add_edge("reply", END)
    return b.compile()


# -- conditional edges with a path_map, and END; a cycle ---------------------------------------


class Counter(TypedDict):
    n: int
    path: Annotated[list, operator.add]


def counter(**compile_args: Any) -> Any:
    """One node that counts; ``compile_args`` go to ``compile`` (a checkpointer, say)."""

    def grow(s: Counter) -> dict:
        return {"n": s["n"] + 1, "path": ["grow"]}

    b = StateGraph(Counter)
    b.add_node("grow", grow)
    b.add_edge(START, "grow")
    b.add_edge("grow", END)
    return b.compile(**compile_args)


def branches() -> Any:
    def grow(s: Counter) -> dict:
        return {"n": s["n"] + 3, "path": ["grow"]}

    def small(s: Counter) -> dict:
        return {"path": ["small"]}

    def route(s: Counter) -> str:
        if s["n"] >= 9:
            return "done"
        return "again" if s["n"] % 2 else "aside"

    b = StateGraph(Counter)
    b.add_node("grow", grow)
    b.add_node("small", small)
    b.add_edge(START, "grow")
    b.add_conditional_edges("grow", route, {"again": "grow", "aside": "small", "done": END})
    b.add_edge("small", "grow")
    return b.compile()


def endless() -> Any:
    """A cycle without an exit: invoke raises GraphRecursionError at the recursion limit."""

    def spin(s: Counter) -> dict:
        return {"n": s["n"] + 1}

    b = StateGraph(Counter)
    b.add_node("spin", spin)
    b.add_edge(START, "spin")
    b.add_edge("spin", "spin")
    return b.compile().with_config(recursion_limit=5)


# -- Send fan-out (map-reduce) ------------------------------------------------------------------


class Topics(TypedDict):
    topics: list[str]
    jokes: Annotated[list, operator.add]


def fan_out() -> Any:
    def joke(s: dict) -> dict:
        return {"jokes": [f"a joke about {s['topic']}"]}

    def assign(s: Topics) -> list[Send]:
        return [Send("joke", {"topic": t}) for t in s["topics"]]

    b = StateGraph(Topics)
    b.add_node("joke", joke)
    b.add_conditional_edges(START, assign, ["joke"])
    b.add_edge("joke", END)
    return b.compile()


# -- Command(goto, update) ----------------------------------------------------------------------


def commands() -> Any:
    def decide(s: Counter) -> Command[Literal["odd", "even"]]:
        return Command(goto="odd" if s["n"] % 2 else "even", update={"path": ["decide"]})

    def odd(s: Counter) -> dict:
        return {"path": ["odd"], "n": s["n"] * 3 + 1}

    def even(s: Counter) -> dict:
        return {"path": ["even"], "n": s["n"] // 2}

    b = StateGraph(Counter)
    b.add_node("decide", decide)
    b.add_node("odd", odd)
    b.add_node("even", even)
    b.add_edge(START, "decide")
    b.add_edge("odd", END)
    b.add_edge("even", END)
    return b.compile()


# -- a subgraph as a node -----------------------------------------------------------------------


def subgraph() -> Any:
    def inner_step(s: Counter) -> dict:
        return {"n": s["n"] + 100, "path": ["inner"]}

    inner = StateGraph(Counter)
    inner.add_node("inner_step", inner_step)
    inner.add_edge(START, "inner_step")
    inner.add_edge("inner_step", END)

    def outer_step(s: Counter) -> dict:
        return {"n": s["n"] * 2, "path": ["outer"]}

    b = StateGraph(Counter)
    b.add_node("outer_step", outer_step)
    b.add_node("inner", inner.compile())
    b.add_edge(START, "outer_step")
    b.add_edge("outer_step", "inner")
    b.add_edge("inner", END)
    return b.compile()


# -- pydantic state -----------------------------------------------------------------------------


class Order(BaseModel):
    item: str
    quantity: int = Field(ge=1)
    notes: list[str] = []


def pydantic_state() -> Any:
    def price(s: Order) -> dict:
        return {"notes": [*s.notes, f"{s.quantity} x {s.item}"]}

    b = StateGraph(Order)
    b.add_node("price", price)
    b.add_edge(START, "price")
    b.add_edge("price", END)
    return b.compile()


# -- ToolNode and tools_condition; create_agent -------------------------------------------------


def tool_loop() -> Any:
    model = ScriptedToolModel().bind_tools([word_count])

    def agent(s: MessagesState) -> dict:
        return {"messages": [model.invoke(s["messages"])]}

    b = StateGraph(MessagesState)
    b.add_node("agent", agent)
    b.add_node("tools", ToolNode([word_count]))
    b.add_edge(START, "agent")
    b.add_conditional_edges("agent", tools_condition)
    b.add_edge("tools", "agent")
    return b.compile()


def agent() -> Any:
    from langchain.agents import create_agent

    return create_agent(ScriptedToolModel(), [word_count], system_prompt="Count words with the tool.")


# -- the functional API -------------------------------------------------------------------------


def functional() -> Any:
    @task
    def square(x: int) -> int:
        return x * x

    @entrypoint()
    def squares(numbers: list[int]) -> dict:
        results = [square(x) for x in numbers]
        return {"squares": [r.result() for r in results]}

    return squares


# -- unicode, and a large state value -----------------------------------------------------------


class Text(TypedDict):
    text: str
    parts: Annotated[list, operator.add]


def text_graph() -> Any:
    def upper(s: Text) -> dict:
        return {"text": s["text"].upper(), "parts": [len(s["text"])]}

    def tail(s: Text) -> dict:
        return {"parts": [s["text"][-12:]]}

    b = StateGraph(Text)
    b.add_node("upper", upper)
    b.add_node("tail", tail)
    b.add_edge(START, "upper")
    b.add_edge("upper", "tail")
    b.add_edge("tail", END)
    return b.compile()


# -- failures -----------------------------------------------------------------------------------


def raising() -> Any:
    def check(s: Counter) -> dict:
        raise ValueError(f"n={s['n']} is not accepted")

    b = StateGraph(Counter)
    b.add_node("check", check)
    b.add_edge(START, "check")
    return b.compile()


def bad_update() -> Any:
    def wrong(s: Counter) -> Any:
        return ["not", "a", "dict"]

    b = StateGraph(Counter)
    b.add_node("wrong", wrong)
    b.add_edge(START, "wrong")
    return b.compile()


CASES: dict[str, tuple[Callable[[], Any], Any]] = {
    "reducers": (reducers, {"total": 1, "log": ["start"], "best": 5}),
    "add_messages": (messages, {"messages": [HumanMessage(content="hello", id="h1")]}),
    "conditional_edges": (branches, {"n": 0, "path": []}),
    "send_fan_out": (fan_out, {"topics": ["cats", "dogs", "owls"], "jokes": []}),
    "command": (commands, {"n": 7, "path": []}),
    "subgraph": (subgraph, {"n": 1, "path": []}),
    "pydantic_state": (pydantic_state, {"item": "tea", "quantity": 2}),
    "tool_node": (tool_loop, {"messages": [HumanMessage(content="how many words here", id="q1")]}),
    "create_agent": (agent, {"messages": [HumanMessage(content="count these four words", id="q1")]}),
    "functional_api": (functional, [1, 2, 3]),
    "unicode": (text_graph, {"text": "grüße, 東京 🚀 ünïcödé", "parts": []}),
    "large_state": (text_graph, {"text": "0123456789abcdef" * 12800, "parts": []}),
}

FAILING: dict[str, tuple[Callable[[], Any], Any, str]] = {
    "node_raises": (raising, {"n": 3, "path": []}, "ValueError"),
    "recursion_limit": (endless, {"n": 0, "path": []}, "GraphRecursionError"),
    "invalid_update": (bad_update, {"n": 0, "path": []}, "InvalidUpdateError"),
}


def comparable(value: Any) -> Any:
    """``value`` with every message's id removed (ids are random in each invoke)."""
    if isinstance(value, BaseMessage):
        return value.model_copy(update={"id": None})
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(comparable(v) for v in value)
    return value
