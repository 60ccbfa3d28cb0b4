"""Engine-neutral DAG scheduling for the local runners (Argo and Tekton share it).

A node runs when every dependency is done and ``decide`` says so; independent nodes run
concurrently, at most ``parallelism`` at a time. With ``fail_fast`` (Argo's DAG default), no new
node starts after one fails. Ctrl-C stops the launcher (killing running steps) and re-raises.
"""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from llmstep import contract
from llmstep.local.process import Launcher

FAILED = contract.FAILED_PHASES


@dataclass(frozen=True)
class Node:
    """A node of the DAG: its name and the names of the nodes it waits for."""

    name: str
    deps: tuple[str, ...]


def schedule(
    nodes: list[Node],
    *,
    run: Callable[[str], str],
    decide: Callable[[str, Mapping[str, str]], str],
    launcher: Launcher,
    parallelism: int | None = None,
    done: Mapping[str, str] | None = None,
    fail_fast: bool = True,
    on_skip: Callable[[str, str], None] | None = None,
) -> dict[str, str]:
    """Run ``nodes``; return every node's final phase.

    ``decide(name, phases)`` returns ``"run"`` or a phase to record without running
    (``"Skipped"``, ``"Omitted"``); ``run(name)`` runs a node and returns its phase. ``done``
    holds phases of nodes finished earlier (a resumed run); they are not run again.
    """
    phases: dict[str, str] = dict(done or {})
    pending = [n for n in nodes if n.name not in phases]
    workers = max(1, parallelism or len(pending) or 1)
    failed = any(p in FAILED for p in phases.values())
    with cf.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="llmstep-step") as pool:
        running: dict[cf.Future[str], str] = {}
        try:
            while pending or running:
                progressed = True
                while progressed:
                    progressed = False
                    for node in list(pending):
                        if not all(d in phases for d in node.deps):
                            continue
                        if failed and fail_fast:
                            break
                        if len(running) >= workers:
                            break
                        pending.remove(node)
                        progressed = True
                        verdict = decide(node.name, phases)
                        if verdict == "run":
                            running[pool.submit(run, node.name)] = node.name
                        else:
                            phases[node.name] = verdict
                            if on_skip:
                                on_skip(node.name, verdict)
                if not running:
                    break  # nothing can start: fail-fast stop or unmet dependencies
                finished, _ = cf.wait(running, timeout=0.5, return_when=cf.FIRST_COMPLETED)
                for future in finished:
                    name = running.pop(future)
                    phases[name] = future.result()
                    failed = failed or phases[name] in FAILED
        except BaseException:
            launcher.stop()
            raise
    return phases
