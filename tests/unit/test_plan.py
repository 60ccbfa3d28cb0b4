"""The Plan: frozen, engine-neutral data whose own checks keep the steps in an order they can run in;
input shapes name the sources a step reads."""

from __future__ import annotations

import dataclasses

import pytest
from plans import fan_in, prompt_step, sequence

from llmstep.errors import CompileError
from llmstep.plan import CHAIN_INPUT, Plan, shape_sources


def test_a_shapes_sources_are_its_leaves_in_first_seen_order_once_each():
    shape = [
        "merge",
        ["input"],
        {"a": ["step", "x"], "b": ["dict", {"c": ["step", "y"], "d": ["step", "x"]}], "e": ["input"]},
    ]
    assert shape_sources(shape) == [CHAIN_INPUT, "x", "y"]
    with pytest.raises(CompileError, match="unknown input shape 'list'"):
        shape_sources(["list", []])


def test_a_step_knows_what_it_waits_for_and_whether_its_input_is_one_file():
    plan = fan_in()
    left, _, join = plan.steps
    assert left.depends == [] and left.single_input  # the chain input only: input.json
    assert join.sources == ["left", "right"] and join.depends == ["left", "right"] and not join.single_input
    assert plan.step("join") is join
    with pytest.raises(KeyError):
        plan.step("nope")


def test_secret_keys_are_every_steps_keys_sorted_once():
    steps = (
        prompt_step("a", "{q}", ["input"], secrets=("OPENAI_API_KEY",)),
        prompt_step("b", "{q}", ["step", "a"], secrets=("ACME_KEY", "OPENAI_API_KEY")),
    )
    assert Plan(name="p", steps=steps, output="b", image="i").secret_keys == ["ACME_KEY", "OPENAI_API_KEY"]


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda s: {"steps": s[::-1]}, "step 'answer' reads 'ask', which does not run before it"),
        (lambda s: {"steps": (s[0], s[0])}, "step name 'ask' is used twice"),
        (lambda s: {"steps": (dataclasses.replace(s[0], name=CHAIN_INPUT),)}, "step name 'input' is used twice"),
        (lambda s: {"output": "elsewhere"}, "output step 'elsewhere' is not in the plan"),
        (lambda s: {"data": "s3"}, "data='s3' is not one of artifacts, parameters"),
    ],
)
def test_a_plan_that_could_not_run_is_refused_when_it_is_made(change, fragment):
    good = sequence()
    with pytest.raises(CompileError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        dataclasses.replace(good, **change(good.steps))


def test_a_plan_is_frozen():
    plan = sequence()
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.name = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.steps[0].settings.retries = 3  # type: ignore[misc]
