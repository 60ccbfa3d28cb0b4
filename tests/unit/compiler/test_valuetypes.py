"""The classes values between steps may name: found in the chain (a step's output type, a parser's
model and the models its fields name) or declared with value_types; a type that cannot travel
is a compile error."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from langchain_core.runnables import RunnableLambda
from value_chains import Point, Reason, Verdict

import llmstep
from llmstep import valueclasses
from llmstep.errors import CompileError


def make_point(x: int) -> Point:
    return Point(x, x)


def test_a_class_named_by_a_steps_output_type_is_declared_by_itself(tmp_path):
    chain = RunnableLambda(make_point) | RunnableLambda(lambda p: [p, p.y])
    compiled = llmstep.compile(chain, allow_pickle=True)
    assert Point in compiled.plan.value_classes
    assert compiled.run_local(3, runs_dir=tmp_path / "runs", progress=False) == [Point(3, 3), 3]


def test_a_parsers_model_and_the_models_its_fields_name_are_declared():
    from langchain_core.output_parsers import PydanticOutputParser

    plan = llmstep.compile(PydanticOutputParser(pydantic_object=Verdict), allow_pickle=True).plan
    assert set(plan.value_classes) >= {Verdict, Reason}
    [step] = plan.steps
    assert step.payload["values"]["classes"] == sorted(valueclasses.class_path(c) for c in plan.value_classes)
    assert step.payload["values"]["pickle"]["classes"]  # the classes of this test module travel by value


def test_user_classes_need_allow_pickle_to_travel():
    from chains import qa_chain

    with pytest.raises(
        CompileError, match=r"passes values of Reason, Verdict, defined in your own code.*allow_pickle=True"
    ):
        llmstep.compile(qa_chain(), value_types=[Verdict])
    assert llmstep.compile(qa_chain(), value_types=[Verdict], allow_pickle=True).plan.value_classes


def _generator(x) -> Iterator[int]:
    yield x


class Opaque:
    pass


def _opaque(x) -> Opaque:
    return Opaque()


@pytest.mark.parametrize("fn,named", [(_generator, "Iterator"), (_opaque, "Opaque")])
def test_a_step_whose_output_type_cannot_travel_fails_at_compile_time(fn, named):
    with pytest.raises(CompileError, match=rf"returns .*{named}.* cannot travel between steps"):
        llmstep.compile(RunnableLambda(fn) | RunnableLambda(str), allow_pickle=True)


def test_value_types_must_be_classes_that_travel():
    with pytest.raises(CompileError, match="not a class"):
        llmstep.compile(RunnableLambda(str), value_types=["Verdict"])
    with pytest.raises(CompileError, match="not a pydantic model, a dataclass or an Enum"):
        llmstep.compile(RunnableLambda(str), value_types=[Opaque])
