"""Run records: always a directory right inside the runs directory, whatever the document's name
says; a status.json that is not a record is skipped with a warning naming it, never an error for
every other run; a node's change reaches disk soon, without a rewrite per update."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from chains import needs_file, qa_chain
from conftest import ROOT, run_cli
from langchain_core.runnables import RunnableLambda

import llmstep
from llmstep.local.records import SAVE_EVERY, RunRecord, list_runs


@pytest.mark.parametrize("field", ["name", "generateName"])
@pytest.mark.parametrize("name", ["../../x", "/abs/path", "a/../../b", "..", "UPPER_and spaces!-"])
def test_run_record_directory_stays_inside_the_runs_directory(tmp_path, field, name):
    runs = tmp_path / "deep" / "runs"
    record = RunRecord.create(runs, [{"kind": "Workflow", "metadata": {field: name}}], engine="argo", arguments={})
    record.release()
    assert record.root.parent == runs.resolve()
    assert record.run_id.split("-2")[0].replace("-", "").isalnum()  # a DNS label before the timestamp
    assert [p.name for p in (tmp_path / "deep").iterdir()] == ["runs"]
    assert not Path("/abs").exists() and not (tmp_path / "x").exists()


def test_run_id_given_to_show_or_resume_is_a_name_in_the_runs_directory(tmp_path):
    for command in (["show", "../outside"], ["run", "--resume", "/etc"]):
        result = run_cli(*command, cwd=tmp_path)
        assert result.returncode == 2 and "is not a run id" in result.stderr, result.stderr


_CORRUPT = {"a-list": "[]", "bad-argument": '{"arguments": {"input": 5}}', "bad-started": '{"startedAt": 5}', "cut-short": '{"phase": "Succ', "bad-node": '{"nodes": {"a": 1}}',
            "node-path": '{"nodes": {"../../etc": {}}}', "node-phase": '{"nodes": {"a": {"phase": "Done"}}}'}


def test_corrupt_status_json_is_skipped_with_a_warning_naming_it(tmp_path):
    good = run_cli("run", f"{ROOT}/examples/qa.py:chain", "--input", '{"question": "q"}', "--json", cwd=tmp_path)
    assert good.returncode == 0, good.stderr
    good_id = json.loads(good.stdout)["run"]
    runs = tmp_path / ".llmstep" / "runs"
    for name, text in _CORRUPT.items():
        (runs / name).mkdir()
        (runs / name / "status.json").write_text(text)

    listed = run_cli("runs", cwd=tmp_path)
    assert listed.returncode == 0 and good_id in listed.stdout, listed.stderr
    for name in _CORRUPT:
        assert f"{name}/status.json: not a run record" in listed.stderr and name not in listed.stdout
    assert run_cli("show", good_id, cwd=tmp_path).returncode == 0
    for name in _CORRUPT:
        for command in (["show", name], ["run", "--resume", name]):
            result = run_cli(*command, cwd=tmp_path)
            assert result.returncode == 2 and "is not a run record" in result.stderr and name in result.stderr, result.stderr
    again = run_cli("run", f"{ROOT}/examples/qa.py:chain", "--input", '{"question": "r"}', cwd=tmp_path)
    assert again.returncode == 0 and "cut-short" in again.stderr  # a new run still starts (its pruning warns)
    assert all((runs / name).is_dir() for name in _CORRUPT)  # skipped, never pruned as if it were a run


def test_a_record_whose_process_is_gone_does_not_read_as_running(tmp_path):
    runs = tmp_path / "runs"
    record = llmstep.compile(qa_chain())  # any document names the run
    made = RunRecord.create(runs, [record.to_dict()], engine="argo", arguments={})
    made.update_node("a", phase="Running")
    made.save()
    assert [r.phase for r in list_runs(runs)] == ["Running"]  # its process (this one) holds the lock
    made.release()  # as when the process is killed with -9
    [seen] = list_runs(runs)
    assert seen.phase == "Failed" and "ended without finishing" in seen.state.message
    assert seen.nodes["a"].phase == "Failed"


def _disk_bytes(folder: Path) -> int:
    """What the record takes on disk: each file once, however many names (hard links) it has."""
    seen = {}
    for path in folder.rglob("*"):
        if path.is_file():
            info = path.stat()
            seen[(info.st_dev, info.st_ino)] = info.st_size
    return sum(seen.values())


def test_a_big_input_is_stored_once_in_the_record(tmp_path):
    """A 50 MB input made a 382 MB record: each value was written in full wherever it was used."""
    from llmstep.local.entry import resume_run

    size = 1_000_000
    flag = tmp_path / "flag"
    chain = qa_chain() | RunnableLambda(needs_file(str(flag)))
    with pytest.raises(llmstep.RunFailed) as err:
        llmstep.compile(chain, allow_pickle=True).run_local({"question": "x" * size}, runs_dir=tmp_path / "r")
    root = tmp_path / "r" / err.value.run_id
    # four different values (the input, the prompt, the model's answer, the parsed text), each once
    assert _disk_bytes(root) < 4.3 * size
    assert (root / "status.json").stat().st_size < 64 * 1024
    flag.write_text("go")
    resumed = resume_run(err.value.run_id, runs_dir=tmp_path / "r", quiet=True, allow_pickle=True)
    assert resumed.result() == "offline answer: " + "x" * size + " (gate passed)"
    assert len(resumed.state.arguments["input"]) > size  # read back from where it is stored


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


@pytest.mark.parametrize(("engine", "never"), [("argo", "Omitted"), ("tekton", "Skipped")])
def test_nodes_keep_run_order_on_disk_and_a_step_never_started_is_shown_in_the_engines_word(tmp_path, engine, never):
    record = RunRecord.create(tmp_path, [{"kind": "Workflow", "metadata": {"name": "order"}}], engine=engine, arguments={})
    for task in ("zeta", "mid", "alpha", "beta"):  # created Pending in the documents' order
        record.update_node(task, phase="Pending")
    record.update_node("mid", phase="Running", started_at="2026-01-01T00:00:01.000000Z")
    record.update_node("zeta", phase="Succeeded", started_at="2026-01-01T00:00:02.000000Z")
    record.update_node("alpha", phase="Omitted", finished_at="2026-01-01T00:00:03.000000Z")
    assert record.shown(record.nodes["beta"]) == ("Pending", "")  # the run is still running: it may start
    record.update_node("mid", phase="Failed")
    record.finish("Failed")
    record.release()
    again = RunRecord.open(tmp_path, record.run_id)
    assert [t for t, _ in again.in_run_order()] == ["mid", "zeta", "alpha", "beta"]  # started ones by start, then plan order
    assert again.shown(again.nodes["beta"]) == (never, "not started: the run ended before it")
    assert again.shown(again.nodes["alpha"])[0] == ("Skipped" if engine == "tekton" else "Omitted")
    assert again.shown(again.nodes["mid"]) == ("Failed", "")
