"""Submitting through the Argo Server's REST API (Hera's WorkflowsService), against a loopback
server that stands in for the Argo Server (tests/argo_server.py): token, TLS, wait, result,
logs, cancel, batch results, refusals, the CLI, and compiled.as_runnable() inside a chain."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess

import pytest
from argo_server import FakeArgoServer
from chains import picky, qa_chain
from conftest import chain_module, run_cli
from langchain_core.runnables import RunnableLambda

import llmstep
from llmstep.cluster.argo import BatchRun, WorkflowFailed
from llmstep.cluster.transports import ArgoServer, KubeApi, transport

TOKEN = "argo-token"


@pytest.fixture
def server():
    with FakeArgoServer(qa_chain(), token=TOKEN) as s:
        yield s


def test_submit_wait_result_logs_through_the_argo_server(server):
    run = llmstep.compile(qa_chain(), name="qa").submit({"question": "via REST"}, namespace="argo",
                                                      argo_server=server.url, token=TOKEN)  # fmt: skip
    create = server.requests[0]
    assert create["method"] == "POST" and create["path"] == "/api/v1/workflows/argo"
    assert create["auth"] == f"Bearer {TOKEN}"
    param = create["body"]["workflow"]["spec"]["arguments"]["parameters"][0]
    assert param["name"] == "input" and json.loads(param["value"]) == {"question": "via REST"}  # plain, as argo submit -p
    assert run.url == f"{server.url}/workflows/argo/{run.name}"  # the Argo Server serves the UI
    assert run.get()["status"]["phase"] in ("Pending", "Running")
    run.wait(timeout=30, poll=0.1)
    assert run.result() == "offline answer: via REST"
    assert run.logs() == {"StrOutputParser": "llmstep: step StrOutputParser done\n"}


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
        run = llmstep.compile(chain, allow_pickle=True).submit({"question": "boom"}, namespace="argo",
                                                               argo_server=server.url, token=TOKEN)  # fmt: skip
        with pytest.raises(WorkflowFailed) as err:
            run.wait(timeout=30, poll=0.1)
    assert "ValueError: no booms here" in str(err.value) and f"llmstep diagnose workflow/{run.name} -n argo" in str(err.value)


def test_refusals_carry_the_servers_message(server):
    compiled = llmstep.compile(qa_chain())
    with pytest.raises(llmstep.SubmissionError) as err:
        compiled.submit({"question": "x"}, namespace="argo", argo_server=server.url, token="wrong")
    assert "unauthorized: pass token= or set ARGO_TOKEN" in str(err.value) and "token not valid" in str(err.value)
    with pytest.raises(llmstep.SubmissionError) as err:
        compiled.submit({"question": "x"}, namespace="forbidden", argo_server=server.url, token=TOKEN)
    assert "forbidden: the account needs create" in str(err.value) and 'cannot create resource "workflows"' in str(err.value)
    with pytest.raises(llmstep.SubmissionError, match="cannot reach the Argo Server at http://127.0.0.1:9/"):
        compiled.submit({"question": "x"}, argo_server="http://127.0.0.1:9", token=TOKEN)


def test_transport_is_chosen_like_the_argo_cli(monkeypatch):
    server = transport(env={"ARGO_SERVER": "argo.example:2746", "ARGO_TOKEN": "t", "ARGO_INSECURE_SKIP_VERIFY": "true"})
    assert isinstance(server, ArgoServer) and server.host == "https://argo.example:2746/"
    assert server.service.token == "Bearer t" and server.service.verify_ssl is False
    plain = transport(env={"ARGO_SERVER": "localhost:2746", "ARGO_SECURE": "false", "ARGO_BASE_HREF": "/argo"})
    assert plain.host == "http://localhost:2746/argo/" and plain.service.verify_ssl is True
    assert isinstance(transport(client=object(), env={"ARGO_SERVER": "x:1"}), KubeApi)  # an explicit client wins


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is needed to make a test certificate")
def test_tls_verifies_against_a_ca_bundle_or_fails_clearly(tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)  # fmt: skip
    with FakeArgoServer(qa_chain(), token=TOKEN, tls=(str(cert), str(key))) as server:
        compiled = llmstep.compile(qa_chain())
        with pytest.raises(llmstep.SubmissionError, match="TLS verification of https://127.0.0.1"):
            compiled.submit({"question": "x"}, argo_server=server.url, token=TOKEN)
        run = compiled.submit({"question": "tls"}, argo_server=server.url, token=TOKEN, verify=str(cert))
        assert run.wait(timeout=30, poll=0.1)["status"]["phase"] == "Succeeded"


def test_batch_results_in_order_with_a_failed_item_in_its_place():
    chain = RunnableLambda(picky) | qa_chain()
    with FakeArgoServer(chain, token=TOKEN) as server:
        compiled = llmstep.compile(chain, allow_pickle=True)
        run = compiled.submit_batch([{"question": "a"}, {"question": "boom"}, {"question": "c"}], parallelism=2,
                                    namespace="argo", argo_server=server.url, token=TOKEN)  # fmt: skip
        assert isinstance(run, BatchRun)
        body = server.requests[0]["body"]["workflow"]
        assert body["spec"]["entrypoint"] == "batch"
        assert json.loads(body["spec"]["arguments"]["parameters"][0]["value"]) == [  # as argo submit -p inputs= takes it
            {"question": "a"}, {"question": "boom"}, {"question": "c"}]  # fmt: skip
        run.wait(timeout=30, poll=0.1)  # a failed item does not raise here
        results = run.results(return_exceptions=True)
        with pytest.raises(llmstep.BatchFailed) as err:
            run.results()
    assert results[0] == "offline answer: a" and results[2] == "offline answer: c"
    assert isinstance(results[1], llmstep.ItemFailed) and results[1].index == 1
    assert "ValueError: no booms here" in str(results[1]) and results[1].steps == ["StrOutputParser"]
    assert "1 of 3 inputs failed" in str(err.value) and err.value.results[2] == "offline answer: c"


def test_as_runnable_composes_inside_another_chain(server):
    remote = llmstep.compile(qa_chain(), name="qa").as_runnable(namespace="argo", argo_server=server.url, token=TOKEN,
                                                               poll=0.1)  # fmt: skip
    outer = RunnableLambda(lambda q: {"question": q}) | remote | RunnableLambda(str.upper)
    assert outer.invoke("inside") == "OFFLINE ANSWER: INSIDE"
    assert asyncio.run(remote.ainvoke({"question": "async"})) == "offline answer: async"
    before = sum(r["method"] == "POST" for r in server.requests)
    assert remote.batch([{"question": "1"}, {"question": "2"}]) == ["offline answer: 1", "offline answer: 2"]
    assert sum(r["method"] == "POST" for r in server.requests) == before + 1  # one batch Workflow, not two


def test_as_runnable_cancels_the_workflow_when_it_gives_up(server):
    remote = llmstep.compile(qa_chain()).as_runnable(namespace="argo", argo_server=server.url, token=TOKEN,
                                                     timeout=0.1, poll=0.05)  # fmt: skip
    with pytest.raises(llmstep.SubmissionError, match="after 0 s"):
        remote.invoke({"question": "slow"})
    assert server.requests[-1]["method"] == "PUT" and server.requests[-1]["path"].endswith("/terminate")


def test_cli_submit_wait_and_result(server, tmp_path):
    env = {"ARGO_SERVER": server.url, "ARGO_TOKEN": TOKEN, "PYTHONPATH": str(tmp_path)}
    chain_module(tmp_path, "from chains import qa_chain\nchain = qa_chain()\n")
    out = run_cli("submit", "mychain.py:chain", "-n", "argo", "--input", '{"question": "cli"}', "--wait", cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "offline answer: cli" and "Name: mychain-" in out.stderr
    name = out.stderr.split("Name: ")[1].split()[0]
    again = run_cli("result", name, "-n", "argo", "--json", cwd=tmp_path, env=env)
    assert json.loads(again.stdout) == {"workflow": name, "output": "offline answer: cli"}
    (tmp_path / "in.jsonl").write_text('{"question": "x"}\n{"question": "y"}\n')
    batch = run_cli("submit", "mychain.py:chain", "-n", "argo", "--inputs", "in.jsonl", "--wait", cwd=tmp_path, env=env)
    assert [json.loads(line) for line in batch.stdout.splitlines()] == [
        {"index": 0, "output": "offline answer: x"}, {"index": 1, "output": "offline answer: y"}]  # fmt: skip
    compiled = run_cli("compile", "mychain.py:chain", "-o", "qa.yaml", cwd=tmp_path, env=env)
    assert compiled.returncode == 0, compiled.stderr
    from_file = run_cli("submit", "qa.yaml", "-n", "argo", "-p", 'input={"question": "from a file"}', "--wait", "--json",
                        cwd=tmp_path, env=env)  # fmt: skip
    assert json.loads(from_file.stdout)["output"] == "offline answer: from a file", from_file.stderr
    not_batch = run_cli("submit", "qa.yaml", "-n", "argo", "--inputs", "in.jsonl", cwd=tmp_path, env=env)
    assert not_batch.returncode == 2 and "--inputs needs a batch Workflow (llmstep compile --batch N)" in not_batch.stderr
    missing = run_cli("result", "nope", "-n", "argo", cwd=tmp_path, env=env)
    assert missing.returncode == 1 and 'workflows.argoproj.io "nope" not found' in missing.stderr
    bad = run_cli("submit", "mychain.py:chain", "--input", "{not json", cwd=tmp_path, env=env)
    assert bad.returncode == 2 and "the input is not valid JSON" in bad.stderr


def test_cli_ctrl_c_stops_waiting_not_the_workflow(tmp_path):
    import signal
    import sys
    import time

    chain_module(tmp_path, "from chains import qa_chain\nchain = qa_chain()\n")
    with FakeArgoServer(qa_chain(), token=TOKEN, step_delay=30) as server:
        env = {**__import__("os").environ, "ARGO_SERVER": server.url, "ARGO_TOKEN": TOKEN}
        proc = subprocess.Popen([sys.executable, "-m", "llmstep", "submit", "mychain.py:chain", "-n", "argo",
                                 "--input", '{"question": "x"}', "--wait"], cwd=tmp_path, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        deadline = time.monotonic() + 60
        while not any(r["method"] == "GET" for r in server.requests):  # it is waiting
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "keeps running" in err and "argo terminate -n argo" in err
    assert not any(r["method"] == "PUT" for r in server.requests)  # not terminated
