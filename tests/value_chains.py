"""Chains whose steps pass every kind of value LangChain Runnables commonly pass (issue: values
between steps): pydantic models (v2 and the v1 shim), dataclasses, dates and times, UUIDs,
decimals, enums, bytes, sets, tuples, non-finite floats, and LangChain messages with all they carry.
Each case is {name: (chain, input)}; compiled with allow_pickle=True (lambdas and the parsers that
hold classes travel by value)."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import json
import math
import uuid
from dataclasses import dataclass, field

from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from langchain_core.output_parsers import PydanticOutputParser
from langchain_core.output_parsers.openai_tools import PydanticToolsParser
from langchain_core.outputs import ChatGeneration, Generation
from langchain_core.runnables import RunnableLambda, RunnableParallel
from pydantic import BaseModel
from pydantic import v1 as pydantic_v1


class Reason(BaseModel):
    text: str
    weight: float = 1.0


class Verdict(BaseModel):
    label: str
    score: float
    reasons: list[Reason] = []
    when: dt.date | None = None


class Legacy(pydantic_v1.BaseModel):
    name: str
    tags: list[str] = []


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclass
class Point:
    x: int
    y: int
    label: str = "p"
    extra: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Span:
    start: dt.datetime
    length: dt.timedelta


AI = AIMessage(
    content="",
    id="run-7",
    tool_calls=[{"name": "Verdict", "args": {"label": "ok", "score": 0.5, "reasons": [{"text": "fine"}]}, "id": "c1"}],
    invalid_tool_calls=[{"name": "Verdict", "args": "{bad", "id": "c2", "error": "not JSON"}],
    usage_metadata={"input_tokens": 3, "output_tokens": 4, "total_tokens": 7},
    response_metadata={"model_name": "fake", "finish_reason": "tool_calls"},
)


def _emit(value):
    return RunnableLambda(lambda _x: value)


def _same(x):
    return x


def value_corpus():
    """{case: (chain, input)}: the first step makes the value, the next one receives it."""
    tz = dt.timezone(dt.timedelta(hours=2))
    verdict = Verdict(
        label="good",
        score=0.9,
        reasons=[Reason(text="clear"), Reason(text="short", weight=0.5)],
        when=dt.date(2026, 12, 1),
    )
    return {
        "pydantic-output-parser": (
            _emit(AIMessage(content=json.dumps({"label": "yes", "score": 0.75, "reasons": [{"text": "r"}]})))
            | PydanticOutputParser(pydantic_object=Verdict)
            | RunnableLambda(_same),
            "in",
        ),
        "pydantic-tools-parser": (
            _emit(AI)
            | PydanticToolsParser(tools=[Verdict], first_tool_only=True)
            | RunnableLambda(lambda v: [v, v.reasons]),
            "in",
        ),
        "models-in-dicts-and-lists": (
            RunnableParallel(v=_emit(verdict), many=_emit([verdict, verdict]))
            | RunnableLambda(lambda d: {"nested": d, "first": d["many"][0]}),
            "x",
        ),
        "pydantic-v1": (_emit(Legacy(name="old", tags=["a"])) | RunnableLambda(lambda m: (m, m.tags)), 0),
        "dataclasses": (
            _emit(Point(1, 2, extra=[3]))
            | RunnableLambda(
                lambda p: [p, Span(dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=tz), dt.timedelta(hours=1, microseconds=7))]
            ),
            0,
        ),
        "dates-and-times": (
            _emit(
                {
                    "d": dt.date(2026, 12, 1),
                    "t": dt.time(13, 14, 15, 16),
                    "dt": dt.datetime(2026, 12, 1, 8, 0),
                    "td": dt.timedelta(days=-1, seconds=5),
                }
            )
            | RunnableLambda(_same),
            0,
        ),
        "uuid-decimal-enum": (
            _emit([uuid.UUID("12345678-1234-5678-1234-567812345678"), decimal.Decimal("1.10"), Color.BLUE])
            | RunnableLambda(lambda xs: {"items": xs, "names": [type(x).__name__ for x in xs]}),
            0,
        ),
        "bytes-sets-tuples": (
            _emit({"b": b"\x00\xffbin", "s": {1, 2, 3}, "f": frozenset({"a"}), "t": (1, (2, "3")), 7: "int key"})
            | RunnableLambda(lambda d: (d, sorted(type(v).__name__ for v in d.values()))),
            0,
        ),
        "non-finite-floats": (
            _emit([math.inf, -math.inf, 1.5]) | RunnableLambda(lambda xs: {"xs": xs, "big": xs[0] > 1e308}),
            0,
        ),
        "messages-with-everything": (
            _emit(AI) | RunnableLambda(lambda m: [m, m.tool_calls[0]["args"], m.usage_metadata]),
            0,
        ),
        "message-chunks": (
            _emit(
                AIMessageChunk(
                    content="par", id="c", tool_call_chunks=[{"name": "f", "args": '{"a"', "id": "t", "index": 0}]
                )
            )
            | RunnableLambda(lambda c: c + AIMessageChunk(content="t", id="c")),
            0,
        ),
        "message-carrying-a-model": (
            _emit(AIMessage(content="x", additional_kwargs={"parsed": verdict}))
            | RunnableLambda(lambda m: [m, ToolMessage(content="done", tool_call_id="c1")]),
            0,
        ),
        "generations": (
            _emit([ChatGeneration(message=HumanMessage("h")), Generation(text="g", generation_info={"n": 1})])
            | RunnableLambda(_same),
            0,
        ),
    }


DECLARED = [Verdict, Legacy, Point, Span, Color]
"""The lambdas' return types, which no Runnable names: the user declares them."""


def same_values(got, want):
    """Equal and of the same types all the way down (a tuple stays a tuple, a str stays a str)."""
    assert got == want or (isinstance(got, float) and math.isnan(got) and math.isnan(want))
    assert type(got) is type(want), (type(got), type(want))
    if isinstance(want, dict):
        assert list(got) == list(want)
        for k in want:
            same_values(got[k], want[k])
    elif isinstance(want, (list, tuple)):
        for g, w in zip(got, want, strict=True):
            same_values(g, w)
