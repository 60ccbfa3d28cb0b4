"""llmstep.cluster.fake.FakeCluster, as a user of submit() tests with it: a Workflow or PipelineRun
created in memory, its status set by the test as the controller would write it, and the run's
wait(), result(), logs() and cancel() reading it back; refusals worded as the real transport words
them; and the fake answering as the Kubernetes API does (names, selectors, patches, 404s)."""

from __future__ import annotations

import hashlib
import json

import pytest
from chains import qa_chain

import llmstep
from llmstep import serde
from llmstep.cluster.argo_server import ArgoServer
from llmstep.cluster.fake import FakeCluster, Request
from llmstep.cluster.transports import KubeApi, Transport
from llmstep.contract import OUTPUT_TASK, RECORD


def _node(wf: dict, task: str, phase: str, *, output=None, message: str = "") -> dict:
    node_id = f"{wf['metadata']['name']}-1234"
    node = {
        "id": node_id,
        "name": f"{wf['metadata']['name']}.{task}",
        "displayName": task,
        "templateName": task.lower(),
        "type": "Pod",
        "phase": phase,
        "message": message,
    }
    if output is not None:
        node["outputs"] = {"parameters": [{"name": "output", "value": serde.dumps_value(output)}]}
    return {node_id: node}


def test_user_code_on_top_of_submit_gets_the_result_the_test_sets():
    cluster = FakeCluster()
    run = llmstep.compile(qa_chain(), name="qa").submit({"question": "hi"}, namespace="ml", transport=cluster)
    [wf] = cluster.find("Workflow", namespace="ml")
    assert wf["metadata"]["name"] == run.name and run.name.startswith("qa-")
    assert json.loads(wf["spec"]["arguments"]["parameters"][0]["value"]) == {"question": "hi"}
    assert cluster.requests[0] == Request("create", "Workflow", "ml", "", cluster.requests[0].body)

    with pytest.raises(llmstep.SubmissionError, match=f"workflow {run.name} is not started; wait\\(\\) for it first"):
        run.result()
    with pytest.raises(llmstep.SubmissionError, match="still Running after 0 s"):
        cluster.set_status("Workflow", run.name, {"phase": "Running"}, namespace="ml")
        run.wait(timeout=0, poll=0.01)

    task = wf["metadata"]["annotations"][OUTPUT_TASK]
    cluster.set_status(
        "Workflow",
        run.name,
        {"phase": "Succeeded", "nodes": _node(wf, task, "Succeeded", output="an answer")},
        namespace="ml",
    )
    assert run.wait(timeout=1, poll=0.01)["status"]["phase"] == "Succeeded"
    assert run.result() == "an answer"


def test_user_code_on_top_of_submit_gets_the_failure_the_test_sets():
    cluster = FakeCluster()
    run = llmstep.compile(qa_chain(), name="qa").submit({"question": "hi"}, transport=cluster)
    assert run.namespace == "default"  # no kubeconfig speaks for a fake
    wf = cluster.get("default", "Workflow", run.name)
    nodes = _node(wf, "StrOutputParser", "Failed", message="ValueError: no booms here (exit code 1)")
    cluster.set_status("Workflow", run.name, {"phase": "Failed", "message": "child failed", "nodes": nodes})
    [node_id] = nodes
    cluster.create(
        "default",
        {
            "kind": "Pod",
            "metadata": {
                "name": f"{run.name}-stroutputparser-1234",
                "labels": {"workflows.argoproj.io/workflow": run.name},
                "annotations": {"workflows.argoproj.io/node-id": node_id},
            },
        },
    )
    cluster.set_log(f"{run.name}-stroutputparser-1234", "llmstep: step failed\n")
    with pytest.raises(llmstep.WorkflowFailed) as err:
        run.wait(timeout=1, poll=0.01)
    assert err.value.failures[0]["step"] == "StrOutputParser" and "no booms here" in str(err.value)
    assert f"llmstep diagnose workflow/{run.name} -n default" in str(err.value)
    with pytest.raises(llmstep.RunFailed):
        run.result()
    assert run.logs() == {"StrOutputParser": "llmstep: step failed\n"}

    run.cancel()
    assert cluster.requests[-1] == Request(
        "patch", "Workflow", "default", run.name, {"spec": {"shutdown": "Terminate"}}
    )
    assert cluster.get("default", "Workflow", run.name)["spec"]["shutdown"] == "Terminate"


def test_a_tekton_submit_applies_the_pipeline_and_reads_the_output_tasks_log():
    cluster = FakeCluster()
    compiled = llmstep.compile(qa_chain(), name="qa")
    run = compiled.submit({"question": "hi"}, engine="tekton", namespace="ml", transport=cluster)
    assert [(r.verb, r.kind) for r in cluster.requests] == [
        ("apply", "Task"),
        ("apply", "Pipeline"),
        ("create", "PipelineRun"),
    ]
    compiled.submit(
        {"question": "again"}, engine="tekton", namespace="ml", transport=cluster
    )  # applied again: replaced
    assert len(cluster.find("Task")) == 1 and len(cluster.find("PipelineRun")) == 2

    text = serde.dumps_value("an answer")
    cluster.create(
        "ml",
        {
            "kind": "TaskRun",
            "metadata": {
                "name": f"{run.name}-out",
                "labels": {"tekton.dev/pipelineRun": run.name, "tekton.dev/pipelineTask": run.output_task},
            },
            "status": {
                "podName": "out-pod",
                "results": [{"name": "sha256", "value": hashlib.sha256(text.encode()).hexdigest()}],
                "steps": [{"container": "step-exec"}],
            },
        },
    )
    cluster.set_log(
        "out-pod", RECORD + json.dumps({"kind": "output", "value": text}) + "\n", container="step-exec", namespace="ml"
    )
    cluster.set_status(
        "PipelineRun",
        run.name,
        {"conditions": [{"type": "Succeeded", "status": "True", "reason": "Succeeded"}]},
        namespace="ml",
    )
    run.wait(timeout=1, poll=0.01)
    assert run.result() == "an answer"
    run.cancel()
    assert cluster.get("ml", "PipelineRun", run.name)["spec"]["status"] == "Cancelled"


def test_a_refusal_is_worded_as_the_real_transport_words_it():
    cluster = FakeCluster()
    cluster.refuse("create", "Workflow", 403, 'workflows.argoproj.io is forbidden: User "ci" cannot create')
    with pytest.raises(llmstep.SubmissionError) as err:
        llmstep.compile(qa_chain()).submit({"question": "x"}, transport=cluster)
    assert "needs create/get/patch on workflows.argoproj.io" in str(err.value) and 'User "ci" cannot create' in str(
        err.value
    )
    assert err.value.status == 403 and cluster.find("Workflow") == []
    with pytest.raises(llmstep.SubmissionError, match="is Tekton Pipelines installed") as missing:
        cluster.get("default", "PipelineRun", "nope")
    assert missing.value.status == 404


def test_the_fake_answers_as_the_kubernetes_api_does():
    cluster = FakeCluster()
    a = cluster.create(
        "ns", {"kind": "Pod", "metadata": {"generateName": "step-", "labels": {"app": "x", "tier": "a"}}}
    )
    b = cluster.create("ns", {"kind": "Pod", "metadata": {"name": "named", "labels": {"app": "x"}}})
    assert (
        a["metadata"]["name"].startswith("step-")
        and "generateName" not in a["metadata"]
        and a["status"] == {"phase": "Pending"}
    )
    with pytest.raises(llmstep.SubmissionError, match="already exists"):
        cluster.create("ns", {"kind": "Pod", "metadata": {"name": "named"}})
    assert [p["metadata"]["name"] for p in cluster.list("ns", "Pod", labels="app=x")] == [
        a["metadata"]["name"],
        "named",
    ]
    assert [p["metadata"]["name"] for p in cluster.list("ns", "Pod", labels="app=x,tier=a")] == [a["metadata"]["name"]]
    assert (
        cluster.list("other", "Pod") == []
        and cluster.list("ns", "Pod", fields="metadata.name=named")[0]["metadata"]["uid"]
    )
    patched = cluster.patch(
        "ns", "Pod", "named", {"metadata": {"labels": {"app": None, "new": "1"}}, "spec": {"x": [1]}}
    )
    assert patched["metadata"]["labels"] == {"new": "1"} and patched["spec"] == {"x": [1]}
    assert int(patched["metadata"]["resourceVersion"]) > int(b["metadata"]["resourceVersion"])
    assert cluster.log("ns", "named", "main") == "" and list(cluster.follow("ns", "named", "main")) == []
    cluster.set_log("named", "one\ntwo\n", namespace="ns")
    assert list(cluster.follow("ns", "named", "main")) == ["one", "two"]
    cluster.delete("ns", "Pod", "named")
    with pytest.raises(llmstep.SubmissionError, match="does the namespace exist") as gone:
        cluster.get("ns", "Pod", "named")
    assert gone.value.status == 404
    with pytest.raises(llmstep.SubmissionError):
        cluster.log("ns", "never-there", "main")
    assert [r.verb for r in cluster.requests][-3:] == ["delete", "get", "log"]


def test_the_fake_and_the_real_transports_share_one_interface():
    assert isinstance(FakeCluster(), Transport) and isinstance(KubeApi(object()), Transport)
    assert isinstance(ArgoServer("http://127.0.0.1:9"), Transport)
    with pytest.raises(llmstep.SubmissionError, match="serves Workflows only"):
        ArgoServer("http://127.0.0.1:9").list("ns", "Pod")


def test_argo_server_in_the_environment_is_not_for_tekton(monkeypatch, tmp_path):
    """ARGO_SERVER picks the Argo Server for Workflows; a PipelineRun still goes through the
    Kubernetes API (here one that is not there), or through the transport given."""
    from kube_fake import kubeconfig

    monkeypatch.setenv("ARGO_SERVER", "127.0.0.1:9")
    compiled = llmstep.compile(qa_chain())
    with pytest.raises(llmstep.SubmissionError, match="cannot reach the Kubernetes API server at https://127.0.0.1:1"):
        compiled.submit({"question": "x"}, engine="tekton", kubeconfig=kubeconfig(tmp_path, "ml"))
    cluster = FakeCluster()
    run = compiled.submit({"question": "x"}, engine="tekton", transport=cluster)
    assert cluster.find("PipelineRun")[0]["metadata"]["name"] == run.name
