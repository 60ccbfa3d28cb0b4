"""The fork server behind local runs: one fork per step, each step its own session with only its
pod's environment, and the server learns the imports steps had to make themselves. Also: the run
record reaches disk soon after a node changes, without a rewrite per update."""

from __future__ import annotations

import json
import os
import time

from langchain_core.runnables import RunnableLambda

import llmstep
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
            "env": sorted(k for k in _os.environ if k.startswith("LLMSTEP_TEST")),
        }

    return report


def test_steps_fork_once_from_a_server_that_learns_their_imports(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMSTEP_TEST_NOT_FOR_STEPS", "caller-only")
    chain = RunnableLambda(_imports_minidom) | RunnableLambda(_report(os.getpid()))
    out = llmstep.compile(chain, allow_pickle=True).run_local({"q": 1}, runs_dir=tmp_path / "r")
    assert out == {"learned": True, "own_session": True, "forked_by_the_server": True, "env": []}


def test_a_step_without_the_lesson_has_to_import_itself(tmp_path):
    chain = RunnableLambda(_report(os.getpid()))  # the control: nothing imported minidom before
    out = llmstep.compile(chain, allow_pickle=True).run_local({"q": 1}, runs_dir=tmp_path / "r")
    assert out["learned"] is False and out["forked_by_the_server"] is True


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
