"""The supported subset of Argo that the local runner runs: a field outside it, or an invalid value
in an edited Workflow, is refused with its path before a run starts (never a crash half way,
never a record left Running)."""

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


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda d: d["spec"]["templates"][1].update(volumes=[]), "spec.templates[1].volumes is not supported"),
        (lambda d: d["spec"]["templates"][0]["dag"]["tasks"][0].update(withItems=[1, 2]), "aggregated outputs of a task with withParam"),
        (lambda d: d["spec"]["templates"][0]["dag"]["tasks"][0].update(continueOn={"failed": True}), "continueOn is not supported"),
        (lambda d: d["spec"]["templates"][1]["container"].update(command=["sh", "-c"]), "must run `llmstep exec"),
        (lambda d: d["spec"]["templates"][1]["container"].update(args=["{{workflow.creationTimestamp}}"]), "creationTimestamp"),
        (lambda d: d.update(kind="CronWorkflow"), "expected an Argo Workflow"),
    ],
)
def test_hand_edited_yaml_outside_the_subset_is_rejected_clearly(tmp_path, mutate, fragment):
    doc = llmstep.compile(qa_chain()).to_dict()
    mutate(doc)
    path = tmp_path / "edited.yaml"
    path.write_text(yaml.safe_dump(doc))
    result = run_cli("run", str(path), "--input", '{"question": "q"}', cwd=tmp_path)
    assert result.returncode == 2
    assert fragment in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / ".llmstep").exists()  # rejected up front: nothing ran
