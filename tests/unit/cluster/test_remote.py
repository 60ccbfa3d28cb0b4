"""compiled.as_runnable(): a Workflow on the cluster as a Runnable inside another chain (through a
loopback stand-in for the Argo Server), a batch as one Workflow, cancelled when it gives up."""

from __future__ import annotations

import asyncio

import pytest
from argo_server import TOKEN
from chains import qa_chain
from langchain_core.runnables import RunnableLambda

import llmstep


def test_as_runnable_composes_inside_another_chain(server):
    remote = llmstep.compile(qa_chain(), name="qa").as_runnable(
        namespace="argo", argo_server=server.url, token=TOKEN, poll=0.1
    )
    outer = RunnableLambda(lambda q: {"question": q}) | remote | RunnableLambda(str.upper)
    assert outer.invoke("inside") == "OFFLINE ANSWER: INSIDE"
    assert asyncio.run(remote.ainvoke({"question": "async"})) == "offline answer: async"
    before = sum(r["method"] == "POST" for r in server.requests)
    assert remote.batch([{"question": "1"}, {"question": "2"}]) == ["offline answer: 1", "offline answer: 2"]
    assert sum(r["method"] == "POST" for r in server.requests) == before + 1  # one batch Workflow, not two


def test_as_runnable_cancels_the_workflow_when_it_gives_up(server):
    remote = llmstep.compile(qa_chain()).as_runnable(
        namespace="argo", argo_server=server.url, token=TOKEN, timeout=0.1, poll=0.05
    )
    with pytest.raises(llmstep.SubmissionError, match="after 0 s"):
        remote.invoke({"question": "slow"})
    assert server.requests[-1]["method"] == "PUT" and server.requests[-1]["path"].endswith("/terminate")


def test_as_runnable_through_the_fake_terminates_the_workflow_it_gave_up_on():
    from llmstep.cluster.fake import FakeCluster

    cluster = FakeCluster()  # no controller: the Workflow never finishes
    remote = llmstep.compile(qa_chain()).as_runnable(transport=cluster, timeout=0.05, poll=0.01)
    with pytest.raises(llmstep.SubmissionError, match="still not started after 0 s"):
        remote.invoke({"question": "slow"})
    [wf] = cluster.find("Workflow")
    assert wf["spec"]["shutdown"] == "Terminate" and cluster.requests[-1].verb == "patch"
