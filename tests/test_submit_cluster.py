"""Submitting to the real test cluster's API server. There is no Argo controller in the test
cluster, so the workflow's status is written by the test, the way the controller writes it.

Opt in with `pytest -m cluster`; see tests/cluster/.
"""

from __future__ import annotations

import base64
import json
import threading
import time

import pytest
from chains import qa_chain
from conftest import kube_api

import llmstep
from llmstep import serde
from llmstep.run.argo import WorkflowFailed, api_error

pytestmark = pytest.mark.cluster
NS = "submit"


@pytest.fixture(scope="module")
def api(k8s):
    return kube_api(k8s, NS)


def _status(api, name, status):
    api.CustomObjectsApi().patch_namespaced_custom_object("argoproj.io", "v1alpha1", NS, "workflows", name, {"status": status})


def _node(display, template, phase, outputs=None, message=None):
    node = {"id": f"n-{display}", "name": f"wf.{display}", "displayName": display, "templateName": template,
            "type": "Pod", "phase": phase, "outputs": outputs or {}}  # fmt: skip
    if message:  # the CRD schema (and API servers before 1.21) refuse empty strings
        node["message"] = message
    return node


def test_submit_wait_and_result(api):
    run = llmstep.compile(qa_chain(), name="qa").submit({"question": "on a cluster?"}, namespace=NS, client=api,
                                                      ui_url="https://argo.example")  # fmt: skip
    wf = run.get()
    assert run.name.startswith("qa-") and run.url == f"https://argo.example/workflows/{NS}/{run.name}"
    assert json.loads(wf["spec"]["arguments"]["parameters"][0]["value"])["value"] == {"question": "on a cluster?"}

    finished_at = []

    def controller():
        _status(api, run.name, {"phase": "Pending"})
        time.sleep(1.5)
        _status(api, run.name, {"phase": "Running"})
        time.sleep(1.5)
        output = serde.dumps_value("the answer")
        finished_at.append(time.monotonic())
        _status(api, run.name, {"phase": "Succeeded", "nodes": {
            "n1": _node("StrOutputParser", "stroutputparser", "Succeeded", {"parameters": [{"name": "output", "value": output}]})}})

    thread = threading.Thread(target=controller)
    thread.start()
    run.wait(timeout=60, poll=0.2)
    thread.join()
    assert time.monotonic() >= finished_at[0]  # Pending and Running were not taken for done
    assert run.result() == "the answer"


def test_failed_workflow_raises_with_its_failed_steps(api):
    run = llmstep.compile(qa_chain(), name="qa-fail").submit({"question": "x"}, namespace=NS, client=api)
    _status(api, run.name, {"phase": "Failed", "message": "child failed", "nodes": {
        "a": _node("ChatOpenAI", "chatopenai", "Failed", message="AuthenticationError (exit code 1)"),
        "b": _node("StrOutputParser", "stroutputparser", "Error", message="pod deleted")}})  # fmt: skip
    with pytest.raises(WorkflowFailed) as err:
        run.wait(timeout=10, poll=0.2)
    text = str(err.value)
    assert "step ChatOpenAI (chatopenai): AuthenticationError" in text and "step StrOutputParser" in text
    assert f"llmstep diagnose workflow/{run.name} -n {NS}" in text
    assert [f["step"] for f in err.value.failures] == ["ChatOpenAI", "StrOutputParser"]


def test_cancel_terminates(api):
    run = llmstep.compile(qa_chain(), name="qa-cancel").submit({"question": "x"}, namespace=NS, client=api)
    run.cancel()
    assert run.get()["spec"]["shutdown"] == "Terminate"


def test_rbac_refusal_is_a_clear_error(api, k8s, tmp_path):
    from kubernetes import client as kclient
    from kubernetes import config

    core = api.CoreV1Api()
    core.create_namespaced_service_account(NS, api.V1ServiceAccount(metadata=api.V1ObjectMeta(name="nobody")))
    deadline = time.monotonic() + 60
    secret = None
    while secret is None and time.monotonic() < deadline:
        secret = next((s for s in core.list_namespaced_secret(NS).items if s.type == "kubernetes.io/service-account-token"
                       and s.metadata.annotations.get("kubernetes.io/service-account.name") == "nobody"), None)  # fmt: skip
        time.sleep(0.5)
    cfg = json.loads(k8s.kubeconfig.read_text())
    cfg["users"][0]["user"] = {"token": base64.b64decode(secret.data["token"]).decode()}
    path = tmp_path / "nobody.kubeconfig"
    path.write_text(json.dumps(cfg))
    config.load_kube_config(str(path))
    try:
        with pytest.raises(llmstep.SubmissionError, match="forbidden: the account needs create"):
            llmstep.compile(qa_chain()).submit({"question": "x"}, namespace=NS, client=kclient)
    finally:
        config.load_kube_config(str(k8s.kubeconfig))


def test_admission_rejection_carries_the_servers_message(api):
    class Refusal:
        status = 422
        body = json.dumps({"message": 'Workflow.argoproj.io "x" is invalid: spec.templates.container.image: Invalid value'})

    assert "rejected by the API server's validation: Workflow.argoproj.io" in str(api_error(Refusal(), "creating"))


def test_submit_batch_is_accepted_and_results_come_back_in_input_order(api):
    compiled = llmstep.compile(qa_chain(), name="qa-batch")
    run = compiled.submit_batch([{"question": "a"}, {"question": "b"}, {"question": "c"}], parallelism=2,
                                namespace=NS, client=api)  # fmt: skip
    wf = run.get()  # the API server stored the batch Workflow, withParam and all
    assert wf["spec"]["entrypoint"] == "batch" and wf["spec"]["templates"][0]["parallelism"] == 2
    items = json.loads(wf["spec"]["arguments"]["parameters"][0]["value"])
    assert [json.loads(i["input"])["value"]["question"] for i in items] == ["a", "b", "c"]
    nodes = {}  # as Argo's controller names them: <wf>.item(<i>:<item>).<task>
    for item in items:
        parent = f"{run.name}.item({item['index']}:{json.dumps(item)})"
        nodes[f"d{item['index']}"] = {"id": f"d{item['index']}", "name": parent, "displayName": parent.split(".", 1)[1],
                                      "type": "DAG", "phase": "Succeeded"}  # fmt: skip
        question = json.loads(item["input"])["value"]["question"]
        node = _node("StrOutputParser", "stroutputparser", "Failed" if question == "b" else "Succeeded",
                     {"parameters": [{"name": "output", "value": serde.dumps_value(f"answer {question}")}]}
                     if question != "b" else None, message="RateLimitError (exit code 1)" if question == "b" else None)  # fmt: skip
        node["name"] = f"{parent}.StrOutputParser"
        nodes[f"p{item['index']}"] = node
    _status(api, run.name, {"phase": "Failed", "message": "child failed", "nodes": nodes})
    run.wait(timeout=10, poll=0.2)  # one failed input does not raise here
    results = run.results(return_exceptions=True)
    assert results[0] == "answer a" and results[2] == "answer c"
    assert isinstance(results[1], llmstep.ItemFailed) and "RateLimitError" in str(results[1])
