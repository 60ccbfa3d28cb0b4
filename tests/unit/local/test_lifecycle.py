"""Runs that are killed, resumed or broken: SIGTERM is Ctrl-C with exit 143, one process per run
(a lock), a resume stops what a killed run left, and every failure leaves a finished record."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from chains import qa_chain, qa_prompt
from conftest import ROOT, run_cli

import llmstep
from llmstep.local.entry import resume_run, run_document
from llmstep.local.isolation import Isolation
from llmstep.local.records import RunRecord, list_runs

_GATED = (
    "import time\nfrom pathlib import Path\nfrom langchain_core.runnables import RunnableLambda\n"
    "def gate(x):\n    if not Path({flag!r}).exists():\n        time.sleep(120)\n    return x + '!'\n"
    "chain = RunnableLambda(lambda x: x) | RunnableLambda(gate)\n"
)


def _slow_run(tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    """`llmstep run` of a chain whose second step (gate) sleeps until a flag file exists; returned
    once that step is running and the record says so (its status is written after the step starts)."""
    (tmp_path / "gated.py").write_text(_GATED.format(flag=str(tmp_path / "flag")))
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmstep", "run", "gated.py:chain", "--allow-pickle", "--input", '"x"'],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        found = list((tmp_path / ".llmstep" / "runs").glob("*/steps/gate/pid"))
        if found and _recorded_running(found[0].parent.parent.parent):
            return proc, found[0].parent.parent.parent
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"the gate step never started: {proc.communicate()}")


def _recorded_running(record: Path) -> bool:
    try:
        nodes = json.loads((record / "status.json").read_text())["nodes"]
    except (OSError, ValueError, KeyError):
        return False  # not written yet, or being replaced
    return any(n.get("displayName") == "gate" and n.get("phase") == "Running" for n in nodes.values())


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def test_sigterm_stops_steps_finishes_the_record_and_exits_143(tmp_path):
    proc, record = _slow_run(tmp_path)
    step_pid = int((record / "steps" / "gate" / "pid").read_text().split()[0])
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert "terminated" in err
    status = json.loads((record / "status.json").read_text())
    assert status["phase"] == "Failed" and status["message"] == "terminated"
    assert status["nodes"]["gate"]["phase"] == "Failed"
    assert not _alive(step_pid)


def test_resume_of_a_run_that_is_still_running_is_refused(tmp_path):
    proc, record = _slow_run(tmp_path)
    try:
        before = (record / "status.json").read_text()
        resumed = run_cli("run", "--resume", record.name, "--allow-pickle", cwd=tmp_path)
        assert resumed.returncode == 2 and "is still running" in resumed.stderr, resumed.stderr
        assert str(proc.pid) in resumed.stderr  # names the process that runs it
        assert json.loads((record / "status.json").read_text())["nodes"] == json.loads(before)["nodes"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)


def test_resume_after_kill_9_stops_the_killed_runs_step_first(tmp_path):
    """The step process of a run killed with -9 lives on; the resume stops it before its own
    attempt, so it can never write into the resumed run's files."""
    proc, record = _slow_run(tmp_path)
    step_pid = int((record / "steps" / "gate" / "pid").read_text().split()[0])
    proc.kill()
    proc.communicate(timeout=30)
    assert _alive(step_pid)  # what kill -9 leaves
    [listed] = list_runs(tmp_path / ".llmstep" / "runs")
    assert listed.phase == "Failed"  # not Running for good
    (tmp_path / "flag").write_text("go")
    resumed = run_cli("run", "--resume", record.name, "--allow-pickle", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.strip() == "x!"
    assert not _alive(step_pid)
    status = json.loads((record / "status.json").read_text())
    assert status["phase"] == "Succeeded" and status["history"][0]["phase"] == "Failed"


def test_resume_that_fails_before_starting_leaves_the_record_as_it_was(tmp_path):
    chain = llmstep.Step(qa_prompt(), name="p")
    failed = run_document(llmstep.compile(chain).to_dict(), {"wrong": "keys"}, runs_dir=tmp_path / "r", quiet=True)
    assert failed.phase == "Failed"
    before = (failed.root / "status.json").read_bytes()
    engine = tmp_path / "fake-engine"  # there, but it has no image
    engine.write_text("#!/bin/sh\necho 'no such image' >&2\nexit 1\n")
    engine.chmod(0o755)
    with pytest.raises(llmstep.WorkflowError, match="is not in"):
        resume_run(failed.run_id, runs_dir=tmp_path / "r", quiet=True, isolation=Isolation("container", str(engine)))
    assert (failed.root / "status.json").read_bytes() == before  # the failure history is kept


@pytest.mark.parametrize("broken", ["full disk for a step", "full disk for the record too"])
def test_a_failure_during_a_run_leaves_a_finished_record(tmp_path, monkeypatch, broken):
    made = []
    step_dir, save = RunRecord.step_dir, RunRecord.save

    def full_disk(self, task):
        if task != "chatprompttemplate" and task != "ChatPromptTemplate":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.root / "steps" / task))
        return step_dir(self, task)

    def no_record(self, soon=False):
        made.append(self)
        if "ChatPromptTemplate" in self.nodes and self.nodes["ChatPromptTemplate"].phase == "Succeeded":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return save(self, soon)

    monkeypatch.setattr(RunRecord, "step_dir", full_disk)
    if broken == "full disk for the record too":
        monkeypatch.setattr(RunRecord, "save", no_record)
    with pytest.raises(OSError, match="No space left"):
        run_document(llmstep.compile(qa_chain()).to_dict(), {"question": "q"}, runs_dir=tmp_path / "r", quiet=True)
    monkeypatch.undo()
    [record] = list_runs(tmp_path / "r")
    assert record.phase in ("Error", "Failed")  # finished, whatever could still be written
    assert "No space left" in record.state.message or "ended without finishing" in record.state.message
    assert all(n.phase not in ("Running", "Pending") for n in record.nodes.values())


def test_a_full_disk_is_a_named_error_not_an_internal_one(tmp_path, monkeypatch, capsys):
    """The CLI names a full disk (exit 1, the run failed) instead of 'internal error' (exit 70)."""
    from llmstep.cli import main as cli

    def full_disk(self, task):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.root / "steps" / task))

    monkeypatch.setattr(RunRecord, "step_dir", full_disk)
    monkeypatch.chdir(ROOT)
    code = cli.main(
        [
            "run",
            "examples/qa.py:chain",
            "--input",
            '{"question": "q"}',
            "--runs-dir",
            str(tmp_path / "r"),
            "--no-fork-server",
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and "no space left on the device" in err and "internal error" not in err
