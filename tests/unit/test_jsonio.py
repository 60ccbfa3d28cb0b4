"""llmstep/jsonio.py: every JSON text llmstep reads is parsed with one depth bound, so a text nested
tens of thousands deep is a ValueError with a message (never Python's RecursionError)."""

from __future__ import annotations

import json

import pytest

from llmstep import jsonio


def nested(depth: int, inner: str = "1") -> str:
    """A JSON text of ``depth`` arrays and objects, alternating, around ``inner``."""
    opening = "".join('{"k": ' if i % 2 else "[" for i in range(depth))
    closing = "".join("}" if i % 2 else "]" for i in reversed(range(depth)))
    return opening + inner + closing


def test_values_within_the_bound_read_as_json_does():
    text = nested(jsonio.MAX_DEPTH)
    assert jsonio.loads(text) == json.loads(text)
    assert jsonio.loads('{"a": "[[[[[[[[[[[[[[" }') == {"a": "[[[[[[[[[[[[[["}  # brackets in strings never count


@pytest.mark.parametrize("depth", [jsonio.MAX_DEPTH + 1, 900, 20_000, 1_000_000])
def test_deeper_texts_are_refused_with_the_bound_in_the_message(depth):
    with pytest.raises(jsonio.TooDeep, match=f"llmstep reads at most {jsonio.MAX_DEPTH}") as err:
        jsonio.loads(nested(depth))
    assert isinstance(err.value, ValueError)  # callers that name their option for bad JSON name it for this
    if depth < 1000:  # json could read it: the message says how deep it is
        assert f"{depth} levels" in str(err.value)


def test_a_deep_branch_after_many_shallow_ones_is_found():
    text = "[" + ", ".join(["[1]"] * 5000) + ", " + nested(jsonio.MAX_DEPTH) + "]"
    with pytest.raises(jsonio.TooDeep, match=f"{jsonio.MAX_DEPTH + 1} levels"):
        jsonio.loads(text)


def test_check_depth_walks_without_recursion():
    value: list = []
    for _ in range(100_000):  # far past Python's recursion limit
        value = [value]
    with pytest.raises(jsonio.TooDeep):
        jsonio.check_depth(value)
    jsonio.check_depth({"a": [{"b": [1, 2, {"c": None}]}]})


def test_bad_json_is_still_json_s_own_error():
    with pytest.raises(json.JSONDecodeError):
        jsonio.loads("{oops")
