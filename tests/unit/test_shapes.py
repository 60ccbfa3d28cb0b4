"""llmstep/shapes.py: the input-shape grammar, one rule each."""

import pytest

from llmstep.errors import CompileError
from llmstep.shapes import CHAIN_INPUT, is_single, shape_sources


@pytest.mark.parametrize(
    "shape, sources",
    [
        (["input"], [CHAIN_INPUT]),
        (["step", "a"], ["a"]),
        (["dict", {"x": ["step", "a"], "y": ["input"], "z": ["step", "a"]}], ["a", CHAIN_INPUT]),
        (["merge", ["input"], {"ctx": ["step", "retrieve"], "q": ["input"]}], [CHAIN_INPUT, "retrieve"]),
        (["dict", {"outer": ["dict", {"inner": ["step", "b"]}]}], ["b"]),
    ],
)
def test_sources_are_the_leaves_in_first_seen_order_without_repeats(shape, sources):
    assert shape_sources(shape) == sources


@pytest.mark.parametrize(
    "shape, single",
    [
        (["input"], True),
        (["step", "a"], True),
        (["dict", {"x": ["input"]}], False),
        (["merge", ["input"], {}], False),
        ([], False),
        ("input", False),
        (None, False),
    ],
)
def test_only_one_whole_source_is_a_single_input(shape, single):
    assert is_single(shape) is single


def test_an_unknown_shape_is_a_compile_error_naming_it():
    with pytest.raises(CompileError, match="unknown input shape 'list'"):
        shape_sources(["dict", {"x": ["list", []]}])


def test_the_executor_and_the_renderers_agree_on_the_input_files():
    """One rule: a single input is input.json for the renderer (PlanStep) and for the executor."""
    from llmstep import contract
    from llmstep.plan import PlanStep

    for shape in (["input"], ["step", "a"], ["dict", {"a": ["step", "a"], "b": ["step", "b"]}]):
        step = PlanStep(name="s", display="s", path="chain", runnable="x", payload={"inputs": shape}, shape=shape)
        assert step.single_input is is_single(shape)
        files = {contract.input_file(source, is_single(shape)) for source in shape_sources(shape)}
        assert files == ({contract.INPUT} if is_single(shape) else {f"input/{s}.json" for s in shape_sources(shape)})
