"""Invalid field values in an edited Workflow or Tekton file are refused with their path before
a run starts: never a crash half way, never a record left Running."""

from __future__ import annotations

import pytest
import yaml
from chains import qa_chain
from conftest import run_cli

import llmstep


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda d: d["spec"].update(parallelism=-1), "spec.parallelism must be a whole number"),
        (lambda d: d["spec"]["templates"][1].update(parallelism="many"), "spec.templates[1].parallelism must be"),
        (lambda d: d["spec"]["templates"][1].update(retryStrategy={"limit": "abc"}), "spec.templates[1].retryStrategy.limit must be"),
        (lambda d: d["spec"]["templates"][1].update(activeDeadlineSeconds="soon"), "spec.templates[1].activeDeadlineSeconds must be"),
        (lambda d: d["spec"]["templates"][1].update(retryStrategy={"limit": 1, "backoff": {"duration": "later"}}),
         "spec.templates[1].retryStrategy.backoff.duration: 'later' is not a duration"),
        (lambda d: d["spec"]["templates"][1].update(retryStrategy={"limit": 1, "backoff": {"factor": "x"}}),
         "spec.templates[1].retryStrategy.backoff.factor must be a positive number"),
        (lambda d: d["spec"]["templates"][0].update(failFast="no"), "spec.templates[0].failFast must be true or false"),
    ],
)
def test_invalid_workflow_field_refused_with_its_path_before_the_run(tmp_path, mutate, fragment):
    doc = llmstep.compile(qa_chain()).to_dict()
    mutate(doc)
    path = tmp_path / "edited.yaml"
    path.write_text(yaml.safe_dump(doc))
    result = run_cli("run", str(path), "--input", '{"question": "q"}', cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert fragment in result.stderr and "internal error" not in result.stderr
    assert not (tmp_path / ".llmstep" / "runs").exists()  # refused up front: no record, none left Running


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [("retries", "abc", "tasks[0] (chatprompttemplate).retries must be a whole number"),
     ("retries", -1, ".retries must be a whole number"),
     ("timeout", "soon", "tasks[0] (chatprompttemplate).timeout: 'soon' is not a duration")],
)
def test_invalid_tekton_field_refused_with_its_path_before_the_run(tmp_path, field, value, fragment):
    docs = llmstep.compile(qa_chain()).to_tekton()
    pipeline = next(d for d in docs if d["kind"] == "Pipeline")
    pipeline["spec"]["tasks"][0][field] = value
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    result = run_cli("run", str(path), "--input", '{"question": "q"}', cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert fragment in result.stderr
    assert not (tmp_path / ".llmstep" / "runs").exists()


def test_missing_tekton_task_refused_before_the_run_leaves_no_record(tmp_path):
    docs = llmstep.compile(qa_chain()).to_tekton()
    pipeline = next(d for d in docs if d["kind"] == "Pipeline")
    pipeline["spec"]["tasks"][1]["taskRef"] = {"name": "no-such-task"}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    result = run_cli("run", str(path), "--input", '{"question": "q"}', cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "'no-such-task' is not in the documents" in result.stderr
    runs = tmp_path / ".llmstep" / "runs"
    assert not runs.exists() or not any(runs.iterdir())


def test_artifact_from_a_path_outside_the_run_refused(tmp_path):
    (tmp_path / "private.txt").write_text('"a file of yours"')
    doc = llmstep.compile(qa_chain()).to_dict()
    task = doc["spec"]["templates"][0]["dag"]["tasks"][1]
    task["arguments"]["artifacts"][0]["from"] = str(tmp_path / "private.txt")  # was {{tasks.ChatPromptTemplate...}}
    path = tmp_path / "edited.yaml"
    path.write_text(yaml.safe_dump(doc))
    result = run_cli("run", str(path), "--input", '{"question": "q"}', cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "spec.templates[0].dag.tasks[1].arguments.artifacts[0].from must name an artifact of this run" in result.stderr
    assert not (tmp_path / ".llmstep" / "runs").exists()
