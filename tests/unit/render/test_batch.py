"""Batch fan-out: one Workflow runs the chain over every input (withParam), at most N step pods at
a time; results come back in input order, with a failed input in its place. The local runner runs
the same document."""

from __future__ import annotations

import json

import pytest
import yaml
from chains import picky, qa_chain
from conftest import ROOT, chain_module, run_cli
from langchain_core.runnables import RunnableLambda
from schemas import ARGO_VERSIONS, argo_errors

import llmstep
from llmstep.local.entry import run_document


def test_batch_workflow_is_valid_argo_and_fans_out_with_param():
    doc = llmstep.compile(qa_chain(), name="qa").to_batch_dict(parallelism=3)
    for version in ARGO_VERSIONS:
        assert argo_errors(doc, version) == [], version
    templates = {t["name"]: t for t in doc["spec"]["templates"]}
    assert doc["spec"]["entrypoint"] == "batch" and doc["metadata"]["generateName"] == "qa-batch-"
    fan = templates["batch"]
    assert fan["parallelism"] == 3 and fan["dag"]["failFast"] is False  # inputs in flight
    assert doc["spec"]["parallelism"] == 3  # step pods, whatever branches a chain has
    [task] = fan["dag"]["tasks"]
    assert task["withParam"] == "{{workflow.parameters.inputs}}" and task["template"] == "main"
    assert [p["name"] for p in templates["main"]["inputs"]["parameters"]] == ["input"]
    assert task["arguments"]["parameters"] == [{"name": "input", "value": "{{item}}"}]  # a plain list of inputs
    first = templates["main"]["dag"]["tasks"][0]
    assert first["arguments"]["artifacts"][0]["raw"]["data"] == "{{inputs.parameters.input}}"
    assert "workflow.parameters.input}}" not in json.dumps(templates["main"])
    with pytest.raises(llmstep.LlmstepError, match="parallelism must be a positive integer"):
        llmstep.compile(qa_chain()).to_batch_dict(parallelism=0)


def test_local_batch_equals_invoking_each_input(tmp_path):
    chain = qa_chain()
    inputs = [{"question": f"q{i}"} for i in range(7)]
    results = llmstep.compile(chain).run_local_batch(inputs, parallelism=3, runs_dir=tmp_path / "r")
    assert results == [chain.invoke(x) for x in inputs]
    with pytest.raises(llmstep.LlmstepError, match="inputs must be a list"):
        llmstep.compile(chain).run_local_batch({"question": "x"}, runs_dir=tmp_path / "r")


def test_a_failed_input_does_not_lose_the_others(tmp_path):
    chain = RunnableLambda(picky) | qa_chain()
    compiled = llmstep.compile(chain, allow_pickle=True)
    inputs = [{"question": "a"}, {"question": "boom"}, {"question": "c"}]
    results = compiled.run_local_batch(inputs, parallelism=2, return_exceptions=True, runs_dir=tmp_path / "r")
    assert results[0] == "offline answer: a" and results[2] == "offline answer: c"
    failed = results[1]
    assert isinstance(failed, llmstep.ItemFailed) and failed.index == 1 and failed.steps == ["picky"]
    assert "step picky: ValueError: no booms here (exit code 1)" in str(failed)  # the type once
    with pytest.raises(llmstep.BatchFailed) as err:
        compiled.run_local_batch(inputs, parallelism=2, runs_dir=tmp_path / "r")
    assert "1 of 3 inputs failed" in str(err.value) and err.value.results[0] == "offline answer: a"


def _slow(spans: str):
    def slow(x):
        import time as _time

        start = _time.time()
        _time.sleep(0.4)
        with open(spans, "a") as f:  # one append per step
            f.write(f"{start} {_time.time()}\n")
        return x

    return slow


def test_parallelism_bounds_the_steps_running_at_once(tmp_path):
    spans = tmp_path / "spans.txt"
    chain = RunnableLambda(_slow(str(spans))) | RunnableLambda(_slow(str(spans)))
    compiled = llmstep.compile(chain, allow_pickle=True)
    results = compiled.run_local_batch([{"n": i} for i in range(6)], parallelism=2, runs_dir=tmp_path / "r")
    assert results == [{"n": i} for i in range(6)]
    # never more than 2 at once, and really 2 (the steps' own spans, not the wall clock, which a
    # loaded machine stretches by the steps' start-up)
    assert len(spans.read_text().splitlines()) == 12 and _peak(spans) == 2


def _peak(spans) -> int:
    events = []
    for line in spans.read_text().splitlines():
        begin, end = map(float, line.split())
        events += [(begin, 1), (end, -1)]
    running = peak = 0
    for _, delta in sorted(events, key=lambda e: (e[0], e[1])):
        running += delta
        peak = max(peak, running)
    return peak


def test_template_parallelism_counts_a_nested_dag_as_one_child_as_argo_does(tmp_path):
    """Argo counts a template's own active children: a nested DAG is one while it runs, and the
    pods inside it are not counted against the outer template (only against the Workflow's)."""
    spans = tmp_path / "spans.txt"
    doc = llmstep.compile(
        {"a": RunnableLambda(_slow(str(spans))), "b": RunnableLambda(_slow(str(spans)))}, allow_pickle=True
    ).to_dict()
    main = doc["spec"]["templates"][0]
    assert main["name"] == "main" and len(main["dag"]["tasks"]) == 3  # a, b in parallel, then the map's output
    outer = {
        "name": "outer",
        "parallelism": 1,
        "dag": {"tasks": [{"name": "x", "template": "main"}, {"name": "y", "template": "main"}]},
    }
    doc["spec"]["templates"].insert(0, outer)
    doc["spec"]["entrypoint"] = "outer"
    record = run_document(doc, {"n": 1}, runs_dir=tmp_path / "r", quiet=True)
    assert record.phase == "Succeeded"
    assert _peak(spans) == 2  # one invocation of main at a time, its two branches at once
    spans.unlink()
    doc["spec"]["parallelism"] = 1  # the Workflow's parallelism counts every step pod
    run_document(doc, {"n": 1}, runs_dir=tmp_path / "r", quiet=True)
    assert _peak(spans) == 1


def test_cli_compile_batch_and_run_inputs(tmp_path):
    chain_module(
        tmp_path,
        "from chains import qa_chain\nfrom langchain_core.runnables import RunnableLambda\n"
        "from chains import picky as check\nchain = qa_chain()\npicky = RunnableLambda(check) | qa_chain()\n",
    )
    out = run_cli("compile", "mychain.py:chain", "--batch", "4", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    doc = yaml.safe_load(out.stdout)
    assert doc["spec"]["templates"][0]["parallelism"] == 4
    (tmp_path / "batch.yaml").write_text(out.stdout)
    (tmp_path / "in.jsonl").write_text('{"question": "x"}\n{"question": "y"}\n')
    # the batch YAML itself, as argo submit would get it, runs locally
    ran = run_cli("run", "batch.yaml", "--inputs", "in.jsonl", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert [json.loads(line) for line in ran.stdout.splitlines()] == [
        {"index": 0, "output": "offline answer: x"},
        {"index": 1, "output": "offline answer: y"},
    ]
    (tmp_path / "in.json").write_text('[{"question": "ok"}, {"question": "boom"}]')
    mixed = run_cli(
        "run", "mychain.py:picky", "--allow-pickle", "--inputs", "in.json", "--parallelism", "2", cwd=tmp_path
    )
    lines = [json.loads(line) for line in mixed.stdout.splitlines()]
    assert mixed.returncode == 1 and lines[0] == {"index": 0, "output": "offline answer: ok"}
    assert lines[1]["index"] == 1 and "no booms here" in lines[1]["error"] and "1 of 2 inputs failed" in mixed.stderr
    (tmp_path / "bad.jsonl").write_text('{"question": "x"}\nnot json\n')
    bad = run_cli("run", "mychain.py:chain", "--inputs", "bad.jsonl", cwd=tmp_path)
    assert bad.returncode == 2 and "--inputs bad.jsonl: line 2: not JSON" in bad.stderr
    assert run_cli("compile", "mychain.py:chain", "-o", "plain.yaml", cwd=tmp_path).returncode == 0
    plain = run_cli("run", "plain.yaml", "--inputs", "in.jsonl", cwd=tmp_path)  # the same check as llmstep submit
    assert plain.returncode == 2 and "--inputs needs a batch Workflow (llmstep compile --batch N)" in plain.stderr
    wrong = run_cli("compile", "mychain.py:chain", "--batch", "2", "--engine", "tekton", cwd=tmp_path)
    assert wrong.returncode == 2 and "--batch renders an Argo Workflow" in wrong.stderr


def test_lone_surrogate_in_a_batch_input_names_the_input(tmp_path):
    (tmp_path / "in.jsonl").write_text('{"question": "fine"}\n{"question": "\\ud800"}\n')
    result = run_cli("run", f"{ROOT}/examples/qa.py:chain", "--inputs", "in.jsonl", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "input 1 holds a lone surrogate" in result.stderr
