"""A cluster run's token totals: ``usage()`` of a WorkflowRun and of a PipelineRun handle sums the
``usage`` outputs its steps published, from statuses shaped as the controllers write them."""

from __future__ import annotations

import json

from chains import qa_chain

import llmstep
from llmstep.cluster.fake import FakeCluster

A = {"input_tokens": 11, "output_tokens": 4, "total_tokens": 15}
B = {"input_tokens": 20, "output_tokens": 9, "total_tokens": 29}


def _pod(name: str, node_id: str, task: str, phase: str, usage: dict | None) -> dict:
    node = {"id": node_id, "name": f"{name}.{task}", "displayName": task, "type": "Pod", "phase": phase,
            "templateName": task.lower()}
    if usage is not None:
        node["outputs"] = {"parameters": [{"name": "preview", "value": "x"}, {"name": "usage", "value": json.dumps(usage)}],
                           "exitCode": "0"}
    return {node_id: node}


def test_workflow_run_usage_sums_step_pods_and_not_retry_nodes():
    cluster = FakeCluster()
    run = llmstep.compile(qa_chain(), name="qa").submit({"question": "hi"}, namespace="ml", transport=cluster)
    assert run.usage() == {}  # nothing ran yet
    name = run.name
    # a step with retries: the Retry node repeats its successful pod's outputs; the failed pod
    # published the default usage ({}), as the Workflow declares it
    retry = {"id": f"{name}-1", "name": f"{name}.ask", "displayName": "ask", "type": "Retry", "phase": "Succeeded",
             "outputs": {"parameters": [{"name": "usage", "value": json.dumps({"model-a": A})}]},
             "children": [f"{name}-2", f"{name}-3"]}
    nodes = {f"{name}-1": retry, **_pod(name, f"{name}-2", "ask(0)", "Failed", {}),
             **_pod(name, f"{name}-3", "ask(1)", "Succeeded", {"model-a": A}),
             **_pod(name, f"{name}-4", "shorten", "Succeeded", {"model-a": A, "model-b": B}),
             **_pod(name, f"{name}-5", "parse", "Succeeded", {}),
             f"{name}": {"id": name, "name": name, "displayName": name, "type": "DAG", "phase": "Succeeded"}}
    cluster.set_status("Workflow", name, {"phase": "Succeeded", "nodes": nodes}, namespace="ml")
    twice_a = {k: 2 * v for k, v in A.items()}
    assert run.usage() == {"model-a": twice_a, "model-b": B}


def test_pipelinerun_usage_sums_the_taskruns_results():
    cluster = FakeCluster()
    run = llmstep.compile(qa_chain(), name="qa").submit({"question": "hi"}, namespace="ml", transport=cluster,
                                                       engine="tekton")
    assert run.usage() == {}
    for task, usage in (("ask", {"model-a": A}), ("shorten", {"model-b": B}), ("parse", {}), ("other", None)):
        results = [{"name": "preview", "type": "string", "value": "x"}, {"name": "sha256", "type": "string", "value": ""}]
        if usage is not None:
            results.append({"name": "usage", "type": "string", "value": json.dumps(usage)})
        cluster.create("ml", {"kind": "TaskRun", "metadata": {"name": f"{run.name}-{task}", "labels": {
            "tekton.dev/pipelineRun": run.name, "tekton.dev/pipelineTask": task}},
            "status": {"podName": f"{task}-pod", "results": results,
                       "conditions": [{"type": "Succeeded", "status": "True", "reason": "Succeeded"}]}})
    cluster.create("ml", {"kind": "TaskRun", "metadata": {"name": "another-run-ask", "labels": {
        "tekton.dev/pipelineRun": "another-run", "tekton.dev/pipelineTask": "ask"}},
        "status": {"results": [{"name": "usage", "value": json.dumps({"model-a": A})}]}})
    assert run.usage() == {"model-a": A, "model-b": B}  # another PipelineRun's TaskRuns are not counted
