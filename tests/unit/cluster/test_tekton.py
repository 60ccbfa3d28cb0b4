"""A PipelineRun on a cluster, without one: its outcome read from the Succeeded condition, a failed
run naming its failed tasks, and the chain's output read from the output task's log only when it
matches the task's digest (the cluster is llmstep.cluster.fake.FakeCluster, which answers as the
Kubernetes API does)."""

from __future__ import annotations

import hashlib
import json

import pytest
from chains import qa_chain

import llmstep
from llmstep import serde
from llmstep.cluster.fake import FakeCluster
from llmstep.cluster.tekton import PipelineRunHandle, done, pipelinerun_failed, succeeded
from llmstep.contract import OUTPUT_TASK, RECORD
from llmstep.errors import PipelineRunFailed, SubmissionError


def _run(status: str | None, reason: str = "", message: str = "") -> dict:
    conditions = (
        [] if status is None else [{"type": "Succeeded", "status": status, "reason": reason, "message": message}]
    )
    return {
        "kind": "PipelineRun",
        "metadata": {"name": "qa-x", "namespace": "ml", "annotations": {OUTPUT_TASK: "parse"}},
        "status": {"conditions": conditions},
    }


def _taskrun(task: str, status: str, *, reason: str = "", message: str = "", digest: str = "") -> dict:
    return {
        "kind": "TaskRun",
        "metadata": {
            "name": f"qa-x-{task}",
            "labels": {"tekton.dev/pipelineTask": task, "tekton.dev/pipelineRun": "qa-x"},
        },
        "status": {
            "conditions": [{"type": "Succeeded", "status": status, "reason": reason, "message": message}],
            "podName": f"qa-x-{task}-pod",
            "results": [{"name": "sha256", "value": digest}],
            "steps": [{"container": "step-exec"}],
        },
    }


def test_done_means_the_succeeded_condition_is_true_or_false():
    assert succeeded(_run(None)) is None and not done(_run(None)) and not done({})
    assert not done(_run("Unknown", "Running"))
    assert done(_run("True", "Succeeded")) and done(_run("False", "Failed"))


def test_a_failed_pipelinerun_names_its_failed_tasks_and_what_to_run_next():
    err = pipelinerun_failed(
        _run("False", "Failed", "Tasks Completed: 2 (Failed: 1)"),
        [_taskrun("prompt", "True"), _taskrun("model", "False", reason="Failed", message="exit 3")],
    )
    assert err.failures == [{"task": "model", "taskrun": "qa-x-model", "reason": "Failed", "message": "exit 3"}]
    assert str(err).splitlines() == [
        "pipelinerun qa-x failed: Tasks Completed: 2 (Failed: 1)",
        "  task model (taskrun qa-x-model): Failed: exit 3",
        "  see: tkn pipelinerun describe qa-x -n ml",
        "  ask what went wrong: llmstep diagnose pipelinerun/qa-x -n ml",
    ]
    assert err.exit_code == 1


def _handle(run, text, digest):
    """The PipelineRun, its TaskRuns (and one of another run, which is not its) and the output
    task's log, as the controller leaves them."""
    record = RECORD + json.dumps({"kind": "output", "value": text})
    cluster = FakeCluster()
    for obj in (run, _taskrun("prompt", "True"), _taskrun("parse", "True", digest=digest)):
        cluster.create("ml", obj)
    other = _taskrun("parse", "False", digest="1" * 64)
    other["metadata"].update(
        name="qa-y-parse", labels={"tekton.dev/pipelineTask": "parse", "tekton.dev/pipelineRun": "qa-y"}
    )
    cluster.create("ml", other)
    cluster.set_log("qa-x-parse-pod", f"llmstep: step parse\n{record}\n", container="step-exec", namespace="ml")
    return PipelineRunHandle(name="qa-x", namespace="ml", transport=cluster)


def test_the_result_is_the_output_tasks_log_record_checked_against_its_digest():
    text = serde.dumps_value({"answer": "offline answer: q"})
    handle = _handle(_run("True", "Succeeded"), text, hashlib.sha256(text.encode()).hexdigest())
    assert handle.result() == {"answer": "offline answer: q"}
    assert handle.wait(timeout=1, poll=0.01)["metadata"]["name"] == "qa-x"
    assert handle.logs("parse") == {
        "parse": f"llmstep: step parse\n{RECORD}" + json.dumps({"kind": "output", "value": text}) + "\n"
    }
    tampered = _handle(_run("True", "Succeeded"), text, "0" * 64)
    with pytest.raises(SubmissionError, match="the log's copy does not match the task's sha256 result 0000"):
        tampered.result()


def test_a_result_before_the_end_says_wait_and_a_failed_run_raises_its_failures():
    text = serde.dumps_value("x")
    with pytest.raises(SubmissionError, match="pipelinerun qa-x is Running; wait\\(\\) for it first"):
        _handle(_run("Unknown", "Running"), text, "").result()
    with pytest.raises(SubmissionError, match="still Running after 0 s"):
        _handle(_run("Unknown", "Running"), text, "").wait(timeout=0, poll=0.01)
    with pytest.raises(PipelineRunFailed, match="pipelinerun qa-x failed"):
        _handle(_run("False", "Failed"), text, "").wait(timeout=1, poll=0.01)


A = {"input_tokens": 11, "output_tokens": 4, "total_tokens": 15}


B = {"input_tokens": 20, "output_tokens": 9, "total_tokens": 29}


def test_pipelinerun_usage_sums_the_taskruns_results():
    cluster = FakeCluster()
    run = llmstep.compile(qa_chain(), name="qa").submit(
        {"question": "hi"}, namespace="ml", transport=cluster, engine="tekton"
    )
    assert run.usage() == {}
    for task, usage in (("ask", {"model-a": A}), ("shorten", {"model-b": B}), ("parse", {}), ("other", None)):
        results = [
            {"name": "preview", "type": "string", "value": "x"},
            {"name": "sha256", "type": "string", "value": ""},
        ]
        if usage is not None:
            results.append({"name": "usage", "type": "string", "value": json.dumps(usage)})
        cluster.create(
            "ml",
            {
                "kind": "TaskRun",
                "metadata": {
                    "name": f"{run.name}-{task}",
                    "labels": {"tekton.dev/pipelineRun": run.name, "tekton.dev/pipelineTask": task},
                },
                "status": {
                    "podName": f"{task}-pod",
                    "results": results,
                    "conditions": [{"type": "Succeeded", "status": "True", "reason": "Succeeded"}],
                },
            },
        )
    cluster.create(
        "ml",
        {
            "kind": "TaskRun",
            "metadata": {
                "name": "another-run-ask",
                "labels": {"tekton.dev/pipelineRun": "another-run", "tekton.dev/pipelineTask": "ask"},
            },
            "status": {"results": [{"name": "usage", "value": json.dumps({"model-a": A})}]},
        },
    )
    assert run.usage() == {"model-a": A, "model-b": B}  # another PipelineRun's TaskRuns are not counted
