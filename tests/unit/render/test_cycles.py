"""llmstep/render/cycles.py: the one cycle finder of the engines' checks and the local runner."""

from __future__ import annotations

import pytest

from llmstep.render.cycles import find_cycle


@pytest.mark.parametrize(
    ("edges", "cycle"),
    [
        ({"a": ["a"]}, ["a", "a"]),
        ({"a": ["b"], "b": ["a"]}, ["a", "b", "a"]),
        ({"a": [], "b": ["a", "c"], "c": ["d"], "d": ["b"]}, ["b", "c", "d", "b"]),
        ({"x": ["y"], "y": []}, None),
        ({"a": ["b", "c"], "b": ["d"], "c": ["d"], "d": []}, None),  # a diamond is no cycle
        ({"a": ["missing"]}, None),  # a name without edges of its own ends there
        ({}, None),
    ],
)
def test_find_cycle_names_the_path(edges, cycle):
    assert find_cycle(edges) == cycle


def test_a_chain_of_many_thousand_nodes_needs_no_recursion():
    edges = {f"t{i}": [f"t{i + 1}"] for i in range(50_000)}
    assert find_cycle(edges) is None
    edges["t50000"] = ["t0"]
    found = find_cycle(edges)
    assert found is not None and found[0] == found[-1] == "t0" and len(found) == 50_002
