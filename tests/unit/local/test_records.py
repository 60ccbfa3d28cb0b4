"""Run records: always a directory right inside the runs directory, whatever the document's name
says; a status.json that is not a record is skipped with a warning naming it, never an error for
every other run; a node's change reaches disk soon, without a rewrite per update. A run's token totals:
a chain with two model steps against a loopback server that counts the tokens of each request; the
run's totals per model, read back from its record, are exactly what the server reported, on both local
engines, in ``llmstep run``'s last line, ``llmstep show`` (text and ``--json``) and with ``--prices``
an estimated cost."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from chains import needs_file, qa_chain
from conftest import ROOT, run_cli
from langchain_core.runnables import RunnableLambda
from openai_server import FakeOpenAI

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


_CORRUPT = {
    "a-list": "[]",
    "bad-argument": '{"arguments": {"input": 5}}',
    "bad-started": '{"startedAt": 5}',
    "cut-short": '{"phase": "Succ',
    "bad-node": '{"nodes": {"a": 1}}',
    "node-path": '{"nodes": {"../../etc": {}}}',
    "node-phase": '{"nodes": {"a": {"phase": "Done"}}}',
}


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
            assert result.returncode == 2 and "is not a run record" in result.stderr and name in result.stderr, (
                result.stderr
            )
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
    record = RunRecord.create(
        tmp_path / "runs", [{"kind": "Workflow", "metadata": {"name": "r"}}], engine="argo", arguments={}
    )
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
    record = RunRecord.create(
        tmp_path, [{"kind": "Workflow", "metadata": {"name": "order"}}], engine=engine, arguments={}
    )
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
    assert [t for t, _ in again.in_run_order()] == [
        "mid",
        "zeta",
        "alpha",
        "beta",
    ]  # started ones by start, then plan order
    assert again.shown(again.nodes["beta"]) == (never, "not started: the run ended before it")
    assert again.shown(again.nodes["alpha"])[0] == ("Skipped" if engine == "tekton" else "Omitted")
    assert again.shown(again.nodes["mid"]) == ("Failed", "")


def _counts(body: dict, text: str) -> tuple[int, int]:
    """Tokens as this server counts them: words of every message sent, words of the reply."""
    return sum(len(str(m.get("content", "")).split()) for m in body["messages"]), len(text.split())


def _counted(tokens: dict) -> dict:
    """The counts the server reports (LangChain adds empty ``*_token_details``)."""
    return {m: {k: c[k] for k in ("input_tokens", "output_tokens", "total_tokens")} for m, c in tokens.items()}


def _expected(server: FakeOpenAI) -> dict:
    out: dict = {}
    for u in server.usage:
        t = out.setdefault(u["model"], {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0})
        t["input_tokens"] += u["prompt_tokens"]
        t["output_tokens"] += u["completion_tokens"]
        t["total_tokens"] += u["total_tokens"]
    return out


def _chain(url: str):
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_openai import ChatOpenAI

    first = ChatOpenAI(model="model-a", api_key="sk-placeholder", base_url=url, max_retries=0)
    second = ChatOpenAI(model="model-b", api_key="sk-placeholder", base_url=url, max_retries=0)
    return (
        ChatPromptTemplate.from_messages([("human", "tell me about {topic} in a few words")])
        | first
        | StrOutputParser()
        | ChatPromptTemplate.from_messages([("human", "now shorter: {x}")])
        | second
    )


TWO_MODELS = """
from langchain_core.prompts import ChatPromptTemplate
from langchain_openai import ChatOpenAI

chain = (ChatPromptTemplate.from_messages([("human", "tell me about {{topic}} in a few words")])
         | ChatOpenAI(model="model-a", api_key="sk-placeholder", base_url="{url}", max_retries=0)
         | ChatPromptTemplate.from_messages([("human", "now shorter: {{x}}")])
         | ChatOpenAI(model="model-b", api_key="sk-placeholder", base_url="{url}", max_retries=0))
"""


@pytest.mark.parametrize("engine", ["argo", "tekton"])
def test_run_totals_are_the_servers_counts_on_both_engines(tmp_path, engine):
    with FakeOpenAI(counts=_counts) as server:
        run = llmstep.compile(_chain(server.url)).local_run(
            {"topic": "tokens and their counts"},
            engine=engine,
            secrets={"OPENAI_API_KEY": "sk-test"},
            runs_dir=tmp_path,
        )
    assert "echo" in run.result().content
    tokens = run.usage()
    assert set(tokens) == {"model-a", "model-b"} and len(server.usage) == 2
    assert _counted(tokens) == _expected(server)
    assert RunRecord.open(tmp_path, run.run_id).usage() == tokens  # read back from the record
    assert tokens["model-a"]["input_tokens"] != tokens["model-b"]["input_tokens"]  # each step counted as its own


def test_cli_run_show_json_and_prices(tmp_path):
    with FakeOpenAI(counts=_counts) as server:
        (tmp_path / "two.py").write_text(TWO_MODELS.format(url=server.url))
        env = {"OPENAI_API_KEY": "sk-test"}
        prices = tmp_path / "prices.yaml"
        prices.write_text("model-a: {input: 2.5, output: 10}\n")
        ran = run_cli(
            "run",
            "two.py:chain",
            "--input",
            '{"topic": "a b c"}',
            "--allow-pickle",
            "--prices",
            str(prices),
            env=env,
            cwd=tmp_path,
        )
        assert ran.returncode == 0, ran.stderr
        expected = _expected(server)
        last = ran.stderr.strip().splitlines()[-1]
        a, b = expected["model-a"], expected["model-b"]
        assert last.startswith(
            f"llmstep: tokens: model-a input={a['input_tokens']} output={a['output_tokens']} "
            f"total={a['total_tokens']}; model-b input={b['input_tokens']}"
        )
        cost_a = (a["input_tokens"] * 2.5 + a["output_tokens"] * 10) / 1_000_000
        assert f"estimated cost (prices from {prices}): model-a {cost_a:.6f}; model-b not in the price table" in last
        runs = json.loads(run_cli("runs", "--json", cwd=tmp_path).stdout)
        run_id = runs[0]["run"]
        shown = json.loads(run_cli("show", run_id, "--json", "--prices", str(prices), cwd=tmp_path).stdout)
        assert _counted(shown["usage"]) == expected
        assert shown["cost"] == {
            "estimate": True,
            "prices": str(prices),
            "perModel": {"model-a": cost_a},
            "total": cost_a,
            "missing": ["model-b"],
        }
        steps = [_counted(s["usage"]) for s in shown["steps"].values() if s.get("usage")]
        assert sorted(steps, key=str) == sorted([{"model-a": a}, {"model-b": b}], key=str)
        text = run_cli("show", run_id, cwd=tmp_path).stdout
        assert f"tokens: model-a input={a['input_tokens']}" in text and "estimated cost" not in text
        priced = run_cli("show", run_id, "--prices", str(prices), cwd=tmp_path).stdout.splitlines()
        assert priced[-1] == (
            f"estimated cost (prices from {prices}): model-a {cost_a:.6f}; model-b not in the price "
            f"table; total {cost_a:.6f} (without the models missing from the table)"
        )
        as_json = json.loads(
            run_cli(
                "run", "two.py:chain", "--input", '{"topic": "x"}', "--allow-pickle", "--json", env=env, cwd=tmp_path
            ).stdout
        )
        assert set(as_json["usage"]) == {"model-a", "model-b"} and "cost" not in as_json


def test_a_failed_run_counts_the_steps_that_called_the_model(tmp_path):
    def refuse(_):
        raise RuntimeError("no")

    with FakeOpenAI(counts=_counts) as server:
        chain = _chain(server.url) | RunnableLambda(refuse)
        run = llmstep.compile(chain, allow_pickle=True).local_run(
            {"topic": "t"}, secrets={"OPENAI_API_KEY": "sk-test"}, runs_dir=tmp_path
        )
    assert run.phase == "Failed"
    with pytest.raises(llmstep.RunFailed):
        run.result()
    assert _counted(run.usage()) == _expected(server) and len(server.usage) == 2


def test_no_model_no_line(tmp_path):
    ran = run_cli("run", "--allow-pickle", "-p", "input=1", str(_lambda_file(tmp_path)) + ":chain", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert "tokens" not in ran.stderr


def _lambda_file(tmp_path):
    path = tmp_path / "plain.py"
    path.write_text("from langchain_core.runnables import RunnableLambda\nchain = RunnableLambda(lambda x: x)\n")
    return path.name
