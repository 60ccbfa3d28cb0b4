"""DAG scheduling of the local runners (llmstep/local/scheduler.py): dependency order, concurrency
and its limit, decisions not to run, fail-fast, resumed runs, and stopping on an error."""

from __future__ import annotations

import sys
import threading
import time

import pytest

from llmstep.local.process import Launcher
from llmstep.local.scheduler import Node, schedule


class Steps:
    """A ``run`` for :func:`schedule` that records when each node starts and ends; a node's phase
    is ``phases[name]`` (Succeeded by default), after ``delay`` seconds."""

    def __init__(
        self, phases: dict[str, str] | None = None, delay: float = 0.0, barrier: threading.Barrier | None = None
    ):
        self.phases, self.delay, self.barrier = phases or {}, delay, barrier
        self.events: list[tuple[str, str]] = []
        self.running = self.peak = 0
        self._lock = threading.Lock()

    def __call__(self, name: str) -> str:
        with self._lock:
            self.events.append(("start", name))
            self.running += 1
            self.peak = max(self.peak, self.running)
        if self.barrier is not None:
            self.barrier.wait()  # every party must be running at once, or this breaks
        time.sleep(self.delay)
        with self._lock:
            self.running -= 1
            self.events.append(("end", name))
        return self.phases.get(name, "Succeeded")

    def started(self) -> list[str]:
        return [name for kind, name in self.events if kind == "start"]

    def index(self, kind: str, name: str) -> int:
        return self.events.index((kind, name))


def run_all(name, phases):
    return "run"


@pytest.fixture
def launcher():
    launcher = Launcher()
    yield launcher
    launcher.close()


def test_a_chain_runs_one_node_after_the_other(launcher):
    steps = Steps()
    nodes = [Node("c", ("b",)), Node("b", ("a",)), Node("a", ())]
    phases = schedule(nodes, run=steps, decide=run_all, launcher=launcher)
    assert phases == {"a": "Succeeded", "b": "Succeeded", "c": "Succeeded"}
    assert steps.events == [("start", "a"), ("end", "a"), ("start", "b"), ("end", "b"), ("start", "c"), ("end", "c")]


def test_a_node_starts_only_once_every_dependency_has_ended(launcher):
    steps = Steps(delay=0.05)
    seen: dict[str, dict[str, str]] = {}

    def decide(name, phases):
        seen[name] = dict(phases)
        return "run"

    nodes = [Node("a", ()), Node("b", ("a",)), Node("c", ("a",)), Node("d", ("b", "c"))]
    schedule(nodes, run=steps, decide=decide, launcher=launcher)
    assert steps.index("start", "b") > steps.index("end", "a") < steps.index("start", "c")
    assert steps.index("start", "d") > max(steps.index("end", "b"), steps.index("end", "c"))
    assert seen["d"] == {"a": "Succeeded", "b": "Succeeded", "c": "Succeeded"}
    assert seen["a"] == {}


def test_independent_nodes_run_at_the_same_time(launcher):
    steps = Steps(barrier=threading.Barrier(3, timeout=5))
    nodes = [Node(n, ()) for n in "xyz"]
    assert schedule(nodes, run=steps, decide=run_all, launcher=launcher) == dict.fromkeys("xyz", "Succeeded")
    assert steps.peak == 3


def test_parallelism_caps_how_many_nodes_run_at_once(launcher):
    steps = Steps(delay=0.1)
    nodes = [Node(f"n{i}", ()) for i in range(6)] + [Node("last", ("n0",))]
    phases = schedule(nodes, run=steps, decide=run_all, launcher=launcher, parallelism=2)
    assert phases == {n.name: "Succeeded" for n in nodes}
    assert steps.peak == 2


def test_no_nodes_is_nothing_to_do(launcher):
    assert schedule([], run=Steps(), decide=run_all, launcher=launcher) == {}


@pytest.mark.parametrize("verdict", ["Skipped", "Omitted"])
def test_a_node_decided_not_to_run_gets_that_phase_and_its_dependents_are_decided(launcher, verdict):
    steps, skipped, seen = Steps(), [], {}

    def decide(name, phases):
        seen[name] = dict(phases)
        return verdict if name == "b" else "run"

    nodes = [Node("a", ()), Node("b", ("a",)), Node("c", ("b",))]
    phases = schedule(nodes, run=steps, decide=decide, launcher=launcher, on_skip=lambda n, p: skipped.append((n, p)))
    assert phases == {"a": "Succeeded", "b": verdict, "c": "Succeeded"}
    assert steps.started() == ["a", "c"]
    assert skipped == [("b", verdict)]
    assert seen["c"]["b"] == verdict


@pytest.mark.parametrize("failure", ["Failed", "Error"])
def test_fail_fast_starts_nothing_after_a_failure(launcher, failure):
    steps = Steps({"a": failure})
    nodes = [Node("a", ()), Node("b", ()), Node("c", ())]
    phases = schedule(nodes, run=steps, decide=run_all, launcher=launcher, parallelism=1)
    assert phases == {"a": failure}
    assert steps.started() == ["a"]


def test_fail_fast_lets_running_nodes_finish_but_not_their_dependents(launcher):
    steps = Steps({"quick": "Failed"})
    release = threading.Event()

    def run(name):
        if name == "slow":
            release.wait(10)  # still running when "quick" fails
        phase = steps(name)
        if name == "quick":
            release.set()
        return phase

    nodes = [Node("quick", ()), Node("slow", ()), Node("after-slow", ("slow",))]
    phases = schedule(nodes, run=run, decide=run_all, launcher=launcher)
    assert phases == {"quick": "Failed", "slow": "Succeeded"}
    assert "after-slow" not in steps.started()


def test_without_fail_fast_every_node_is_decided_and_the_failure_is_kept(launcher):
    steps = Steps({"a": "Failed"})

    def decide(name, phases):  # as Argo's depends: a dependent of a failed node is omitted
        return "Omitted" if any(phases[d] != "Succeeded" for d in deps[name]) else "run"

    deps = {"a": (), "b": (), "after-a": ("a",), "after-b": ("b",)}
    nodes = [Node(n, d) for n, d in deps.items()]
    phases = schedule(nodes, run=steps, decide=decide, launcher=launcher, parallelism=1, fail_fast=False)
    assert phases == {"a": "Failed", "b": "Succeeded", "after-a": "Omitted", "after-b": "Succeeded"}
    assert sorted(steps.started()) == ["a", "after-b", "b"]


def test_a_resumed_run_runs_only_what_is_not_done(launcher):
    steps, seen = Steps(), {}

    def decide(name, phases):
        seen[name] = dict(phases)
        return "run"

    nodes = [Node("a", ()), Node("b", ("a",)), Node("c", ("b",))]
    phases = schedule(nodes, run=steps, decide=decide, launcher=launcher, done={"a": "Succeeded"})
    assert phases == {"a": "Succeeded", "b": "Succeeded", "c": "Succeeded"}
    assert steps.started() == ["b", "c"]
    assert seen["b"] == {"a": "Succeeded"}


def test_a_failure_from_before_the_resume_stops_a_fail_fast_run_from_starting(launcher):
    steps = Steps()
    nodes = [Node("a", ()), Node("b", ())]
    assert schedule(nodes, run=steps, decide=run_all, launcher=launcher, done={"a": "Failed"}) == {"a": "Failed"}
    assert steps.started() == []
    phases = schedule(nodes, run=steps, decide=run_all, launcher=launcher, done={"a": "Failed"}, fail_fast=False)
    assert phases == {"a": "Failed", "b": "Succeeded"}


def test_a_node_whose_dependency_never_ends_is_left_without_a_phase(launcher):
    steps = Steps()
    nodes = [Node("a", ()), Node("orphan", ("not-a-node",))]
    started = time.monotonic()
    assert schedule(nodes, run=steps, decide=run_all, launcher=launcher) == {"a": "Succeeded"}
    assert time.monotonic() - started < 30  # it returns, rather than wait forever
    assert steps.started() == ["a"]


def test_an_error_in_a_node_stops_the_launcher_and_is_raised(launcher):
    def run(name):
        raise RuntimeError(f"{name} broke")

    with pytest.raises(RuntimeError, match="^a broke$"):
        schedule([Node("a", ())], run=run, decide=run_all, launcher=launcher)
    assert launcher.stopping.is_set()


def test_ctrl_c_while_deciding_stops_the_launcher_and_is_raised(launcher):
    steps = Steps()

    def decide(name, phases):
        if name == "b":
            raise KeyboardInterrupt
        return "run"

    with pytest.raises(KeyboardInterrupt):
        schedule([Node("a", ()), Node("b", ("a",))], run=steps, decide=decide, launcher=launcher)
    assert launcher.stopping.is_set()
    assert steps.started() == ["a"]


# ---------------------------------------------------------------- with real step processes


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_real_processes_run_in_order_and_their_exit_codes_are_their_phases(tmp_path, launcher):
    shared = str(tmp_path / "shared.txt")  # each process runs in its own log's folder
    scripts = {
        "write": python(f"open({shared!r}, 'w').write('from write')"),
        "read": python(f"import sys; sys.exit(0 if open({shared!r}).read() == 'from write' else 5)"),
        "fail": python("import sys; sys.exit(4)"),
    }
    codes = {}

    def run(name):
        (tmp_path / name).mkdir()
        outcome = launcher.run(scripts[name], {}, tmp_path / name / "log.txt", None)
        codes[name] = outcome.exit_code
        return "Succeeded" if outcome.exit_code == 0 else "Failed"

    nodes = [Node("write", ()), Node("read", ("write",)), Node("fail", ("read",))]
    phases = schedule(nodes, run=run, decide=run_all, launcher=launcher)
    assert phases == {"write": "Succeeded", "read": "Succeeded", "fail": "Failed"}
    assert codes == {"write": 0, "read": 0, "fail": 4}


def test_an_error_stops_the_step_processes_still_running(tmp_path, launcher):
    running = threading.Event()
    outcomes = {}

    def run(name):
        if name == "sleeper":
            log = tmp_path / "log.txt"
            outcome = launcher.run(python("import time; time.sleep(120)"), {}, log, None, lambda pid: running.set())
            outcomes[name] = outcome
            return "Failed" if outcome.interrupted else "Succeeded"
        running.wait(60)  # the sleeper has started (a loaded machine may take its time)
        raise RuntimeError("the runner broke")

    started = time.monotonic()
    with pytest.raises(RuntimeError, match="the runner broke"):
        schedule([Node("sleeper", ()), Node("breaker", ())], run=run, decide=run_all, launcher=launcher)
    assert running.is_set()
    assert outcomes["sleeper"].interrupted
    assert time.monotonic() - started < 60  # stopped, not waited for (it sleeps 120 s)
