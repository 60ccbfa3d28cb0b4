"""The fork server behind local runs: one fork per step, each step its own session with only its
pod's environment, and the server learns the imports steps had to make themselves. Also: the run
record reaches disk soon after a node changes, without a rewrite per update."""

from __future__ import annotations

import json
import os
import time

import pytest
from langchain_core.runnables import RunnableLambda

import llmstep
from llmstep.run import forkserver
from llmstep.run.records import SAVE_EVERY, RunRecord


def _imports_minidom(x):
    import xml.dom.minidom  # noqa: F401 - a module no preload list names

    return x


def _report(test_pid: int):
    def report(x):
        import os as _os
        import sys as _sys

        with open(f"/proc/{_os.getppid()}/stat") as f:  # noqa: PTH123
            grandparent = int(f.read().rsplit(")", 1)[1].split()[1])
        return {
            "learned": "xml.dom.minidom" in _sys.modules,  # before this step imported anything itself
            "own_session": _os.getsid(0) == _os.getpid(),
            "forked_by_the_server": grandparent == test_pid,  # test -> server -> step: no waiter between
            "server": _os.getppid(),
            "env": sorted(k for k in _os.environ if k.startswith("LLMSTEP_TEST")),
        }

    return report


@pytest.fixture
def fresh_servers(tmp_path, monkeypatch):
    """No shared server from earlier tests, and a lessons cache of this test's own."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    forkserver._close_shared()
    yield tmp_path / "cache"
    forkserver._close_shared()


def _run(chain, tmp_path):
    return llmstep.compile(chain, allow_pickle=True).run_local({"q": 1}, runs_dir=tmp_path / "r")


def test_a_step_without_a_lesson_imports_for_itself(tmp_path, fresh_servers):
    out = _run(RunnableLambda(_report(os.getpid())), tmp_path)  # the control: nothing imported minidom before
    assert out["learned"] is False and out["forked_by_the_server"] is True


def test_steps_fork_once_from_a_server_that_learns_and_remembers_their_imports(tmp_path, fresh_servers, monkeypatch):
    monkeypatch.setenv("LLMSTEP_TEST_NOT_FOR_STEPS", "caller-only")
    chain = RunnableLambda(_imports_minidom) | RunnableLambda(_report(os.getpid()))
    first = _run(chain, tmp_path)
    assert {k: v for k, v in first.items() if k != "server"} == {
        "learned": True, "own_session": True, "forked_by_the_server": True, "env": []}  # fmt: skip
    [lessons] = fresh_servers.joinpath("llmstep").iterdir()
    assert "xml.dom.minidom" in lessons.read_text().split()
    again = _run(chain, tmp_path)
    assert again["server"] == first["server"]  # the next run in this process finds the server warm
    forkserver._close_shared()  # a new process's first run: a new server, taught by the lessons file
    fresh = _run(RunnableLambda(_report(os.getpid())), tmp_path)
    assert fresh["server"] != first["server"] and fresh["learned"] is True


def test_only_installed_libraries_are_learned(tmp_path, fresh_servers):
    (tmp_path / "myproject_helpers.py").write_text("VALUE = 1\n")

    def uses_project_module(x):
        import sys as _sys

        _sys.path.insert(0, str(tmp_path))
        import myproject_helpers  # noqa: F401 - a project module, found outside site-packages

        return x

    _run(RunnableLambda(uses_project_module) | RunnableLambda(_imports_minidom), tmp_path)
    [lessons] = fresh_servers.joinpath("llmstep").iterdir()
    learned = lessons.read_text().split()
    assert "xml.dom.minidom" in learned and "myproject_helpers" not in learned


def test_node_updates_reach_status_json_soon_and_the_end_at_once(tmp_path):
    (tmp_path / "runs").mkdir()
    record = RunRecord.create(tmp_path / "runs", [{"kind": "Workflow", "metadata": {"name": "r"}}], engine="argo", arguments={})
    writes = []
    original = RunRecord.save

    def counting(self, soon=False):
        before = self._saved_at
        original(self, soon)
        if self._saved_at != before:
            writes.append(time.monotonic())

    RunRecord.save = counting
    try:
        for i in range(500):
            record.update_node(f"n{i}", phase="Running")
        assert len(writes) <= 2  # not one rewrite per update
        time.sleep(SAVE_EVERY + 0.3)
        on_disk = json.loads((record.root / "status.json").read_text())
        assert len(on_disk["nodes"]) == 500  # the deferred write came
        record.update_node("n0", phase="Succeeded")
        record.finish("Succeeded")
        on_disk = json.loads((record.root / "status.json").read_text())
        assert on_disk["phase"] == "Succeeded" and on_disk["nodes"]["n0"]["phase"] == "Succeeded"
    finally:
        RunRecord.save = original
