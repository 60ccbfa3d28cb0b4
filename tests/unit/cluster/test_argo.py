"""Workflows on a cluster without one: how the API server's refusals are translated, and a run's
wait, result, cancel and batch results against a loopback stand-in for the Argo Server."""

import json

import pytest
from argo_server import TOKEN, FakeArgoServer
from chains import picky, qa_chain
from langchain_core.runnables import RunnableLambda

import llmstep
from llmstep.cluster.argo import BatchRun, WorkflowFailed
from llmstep.cluster.fake import FakeCluster
from llmstep.cluster.transports import api_error

A = {"input_tokens": 11, "output_tokens": 4, "total_tokens": 15}
B = {"input_tokens": 20, "output_tokens": 9, "total_tokens": 29}


class Refusal:
    def __init__(self, status, message):
        self.status, self.body = status, json.dumps({"message": message})


def test_missing_crd_says_how_to_check():
    err = api_error(Refusal(404, "the server could not find the requested resource"), "creating the workflow")
    assert isinstance(err, llmstep.SubmissionError) and err.exit_code == 1
    assert "is the Argo Workflows CRD installed" in str(err) and "could not find" in str(err)


def test_forbidden_names_the_permission():
    err = api_error(Refusal(403, 'workflows.argoproj.io is forbidden: User "x" cannot create'), "creating")
    assert "needs create/get/patch on workflows.argoproj.io" in str(err)


def test_result_before_the_end_says_wait(server):
    run = llmstep.compile(qa_chain()).submit({"question": "x"}, namespace="argo", argo_server=server.url, token=TOKEN)
    with pytest.raises(llmstep.SubmissionError, match="wait\\(\\) for it first"):
        run.result()


def test_cancel_terminates_through_the_server(server):
    run = llmstep.compile(qa_chain()).submit({"question": "x"}, namespace="argo", argo_server=server.url, token=TOKEN)
    run.cancel()
    assert server.requests[-1]["method"] == "PUT" and server.requests[-1]["path"].endswith(f"/{run.name}/terminate")
    with pytest.raises(WorkflowFailed, match="Stopped with strategy 'Terminate'"):
        run.wait(timeout=30, poll=0.1)


def test_failed_workflow_names_its_step_and_suggests_diagnose():
    chain = RunnableLambda(picky) | qa_chain()
    with FakeArgoServer(chain, token=TOKEN) as server:
        run = llmstep.compile(chain, allow_pickle=True).submit(
            {"question": "boom"}, namespace="argo", argo_server=server.url, token=TOKEN
        )
        with pytest.raises(WorkflowFailed) as err:
            run.wait(timeout=30, poll=0.1)
    assert "ValueError: no booms here" in str(err.value) and f"llmstep diagnose workflow/{run.name} -n argo" in str(
        err.value
    )


def test_batch_results_in_order_with_a_failed_item_in_its_place():
    chain = RunnableLambda(picky) | qa_chain()
    with FakeArgoServer(chain, token=TOKEN) as server:
        compiled = llmstep.compile(chain, allow_pickle=True)
        run = compiled.submit_batch(
            [{"question": "a"}, {"question": "boom"}, {"question": "c"}],
            parallelism=2,
            namespace="argo",
            argo_server=server.url,
            token=TOKEN,
        )
        assert isinstance(run, BatchRun)
        body = server.requests[0]["body"]["workflow"]
        assert body["spec"]["entrypoint"] == "batch"
        assert json.loads(
            body["spec"]["arguments"]["parameters"][0]["value"]
        ) == [  # as argo submit -p inputs= takes it
            {"question": "a"},
            {"question": "boom"},
            {"question": "c"},
        ]
        run.wait(timeout=30, poll=0.1)  # a failed item does not raise here
        results = run.results(return_exceptions=True)
        with pytest.raises(llmstep.BatchFailed) as err:
            run.results()
    assert results[0] == "offline answer: a" and results[2] == "offline answer: c"
    assert isinstance(results[1], llmstep.ItemFailed) and results[1].index == 1
    assert "ValueError: no booms here" in str(results[1]) and results[1].steps == ["StrOutputParser"]
    assert "1 of 3 inputs failed" in str(err.value) and err.value.results[2] == "offline answer: c"


def _pod(name: str, node_id: str, task: str, phase: str, usage: dict | None) -> dict:
    node = {
        "id": node_id,
        "name": f"{name}.{task}",
        "displayName": task,
        "type": "Pod",
        "phase": phase,
        "templateName": task.lower(),
    }
    if usage is not None:
        node["outputs"] = {
            "parameters": [{"name": "preview", "value": "x"}, {"name": "usage", "value": json.dumps(usage)}],
            "exitCode": "0",
        }
    return {node_id: node}


def test_workflow_run_usage_sums_step_pods_and_not_retry_nodes():
    cluster = FakeCluster()
    run = llmstep.compile(qa_chain(), name="qa").submit({"question": "hi"}, namespace="ml", transport=cluster)
    assert run.usage() == {}  # nothing ran yet
    name = run.name
    # a step with retries: the Retry node repeats its successful pod's outputs; the failed pod
    # published the default usage ({}), as the Workflow declares it
    retry = {
        "id": f"{name}-1",
        "name": f"{name}.ask",
        "displayName": "ask",
        "type": "Retry",
        "phase": "Succeeded",
        "outputs": {"parameters": [{"name": "usage", "value": json.dumps({"model-a": A})}]},
        "children": [f"{name}-2", f"{name}-3"],
    }
    nodes = {
        f"{name}-1": retry,
        **_pod(name, f"{name}-2", "ask(0)", "Failed", {}),
        **_pod(name, f"{name}-3", "ask(1)", "Succeeded", {"model-a": A}),
        **_pod(name, f"{name}-4", "shorten", "Succeeded", {"model-a": A, "model-b": B}),
        **_pod(name, f"{name}-5", "parse", "Succeeded", {}),
        f"{name}": {"id": name, "name": name, "displayName": name, "type": "DAG", "phase": "Succeeded"},
    }
    cluster.set_status("Workflow", name, {"phase": "Succeeded", "nodes": nodes}, namespace="ml")
    twice_a = {k: 2 * v for k, v in A.items()}
    assert run.usage() == {"model-a": twice_a, "model-b": B}
