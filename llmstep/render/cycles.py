"""Cycles in the graphs engines refuse to run: a DAG's dependencies (Argo's "dependency cycle
detected", Tekton's "cycle detected"), and templates that call themselves with nothing to stop
them. One finder for the checks of both engines and the local runner."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def find_cycle(edges: Mapping[str, Iterable[str]]) -> list[str] | None:
    """A cycle of ``edges`` (each node to the nodes it waits for, or calls) as its path,
    ``[a, b, a]``; None when there is none. Nodes are tried in the mapping's order, so the cycle
    named is the first one a reader of the document meets. Iterative: a long chain of thousands
    of tasks cannot exhaust Python's stack."""
    state: dict[str, bool] = {}  # True while the node is on the current path, False once done
    for start in edges:
        if start in state:
            continue
        path, todo = [start], [iter(edges.get(start, ()))]
        state[start] = True
        while path:
            following = next(todo[-1], None)
            if following is None:
                state[path.pop()] = False
                todo.pop()
            elif state.get(following) is True:
                return [*path[path.index(following) :], following]
            elif following not in state:
                state[following] = True
                path.append(following)
                todo.append(iter(edges.get(following, ())))
    return None
