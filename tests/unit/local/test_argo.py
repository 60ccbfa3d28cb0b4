"""The local Argo runner accepts only the part of Argo it runs as the controller does (measured in
tests/test_argo_fidelity.py); everything else is refused before anything runs, and a parameter
without a value is named."""

from __future__ import annotations

import json

import pytest
import yaml
from chains import qa_chain
from conftest import ROOT, run_cli

import llmstep
from llmstep.errors import LlmstepError
from llmstep.local.entry import run_document

UPSTREAM = ROOT / "tests" / "data" / "argo-examples"


@pytest.mark.parametrize("path", sorted(UPSTREAM.glob("*.yaml")), ids=lambda p: p.name)
def test_upstream_examples_the_local_runner_refuses_are_refused_clearly(path, tmp_path):
    """Argo's own examples run commands other than `llmstep exec` (or use artifacts, steps and
    memoization the local runner does not have): each is refused before anything runs, with the
    field's path in the message, rather than run differently from the controller."""
    doc = yaml.safe_load(path.read_text())
    with pytest.raises(LlmstepError) as err:
        run_document(doc, runs_dir=tmp_path / "runs", quiet=True)
    assert "spec" in str(err.value) or "kind" in str(err.value)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_missing_input_parameter_is_a_clear_error(tmp_path):
    path = tmp_path / "wf.yaml"
    path.write_text(llmstep.compile(qa_chain()).to_yaml())
    result = run_cli("run", str(path), cwd=tmp_path)
    assert result.returncode == 2 and "parameter 'input' has no value" in result.stderr
    result = run_cli("run", str(path), "--input", "{not json", cwd=tmp_path)
    assert result.returncode == 2 and "not valid JSON" in result.stderr


def test_a_run_walks_the_parsed_workflow_and_never_reads_the_document_again(tmp_path):
    """parse() reads and checks the document once; ArgoRun walks the typed Workflow it returns."""
    from llmstep.local.argo import ArgoRun
    from llmstep.local.argo_doc import parse
    from llmstep.local.options import RunOptions
    from llmstep.local.records import RunRecord

    doc = llmstep.compile(qa_chain()).to_dict()
    workflow = parse(doc)
    record = RunRecord.create(
        tmp_path / "runs", [doc], engine="argo", arguments=workflow.arguments({"input": '{"question": "q"}'})
    )
    doc["spec"].clear()  # the dict is gone: what the run reads is the Workflow
    run = ArgoRun(workflow, record, RunOptions(quiet=True, isolation=None).resolved())
    run.preflight()
    finished = run.execute()
    assert finished.phase == "Succeeded" and finished.result() == "offline answer: q"
    assert set(finished.nodes) == {t.name for t in workflow.template(workflow.entrypoint).dag.tasks}


def test_a_recursion_that_never_ends_stops_at_argo_s_depth_with_its_message(tmp_path):
    """A template calling itself under a `when` that stays true: Argo runs it and fails the node
    at its maximum recursion depth; so does the local runner (it crashed with exit 70 before)."""
    doc = llmstep.compile(qa_chain()).to_dict()
    doc["spec"]["templates"].append(
        {"name": "again", "dag": {"tasks": [{"name": "deeper", "template": "again", "when": "1 == 1"}]}}
    )
    doc["spec"]["entrypoint"] = "again"
    path = tmp_path / "recursive.yaml"
    path.write_text(yaml.safe_dump(doc))
    result = run_cli("run", str(path), "--input", '{"question": "q"}', "--json", cwd=tmp_path, timeout=120)
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["phase"] == "Failed"
    record = json.loads(next((tmp_path / ".llmstep" / "runs").glob("*/status.json")).read_text())
    errors = [(k, n) for k, n in record["nodes"].items() if n.get("phase") == "Error"]
    assert len(errors) == 1 and errors[0][1]["message"].startswith("Maximum recursion depth exceeded")
    assert errors[0][0].count("deeper") == 101  # the 101st nested call is the one refused
    assert not [n for n in record["nodes"].values() if n.get("phase") in ("Pending", "Running")]
