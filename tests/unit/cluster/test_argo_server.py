"""The Argo Server's REST API as a transport (Hera's WorkflowsService), against a loopback server that
stands in for it (tests/argo_server.py): a Workflow submitted, waited for, its result and logs read, with
its token and TLS."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from argo_server import TOKEN, FakeArgoServer
from chains import qa_chain

import llmstep


def test_submit_wait_result_logs_through_the_argo_server(server):
    run = llmstep.compile(qa_chain(), name="qa").submit(
        {"question": "via REST"}, namespace="argo", argo_server=server.url, token=TOKEN
    )
    create = server.requests[0]
    assert create["method"] == "POST" and create["path"] == "/api/v1/workflows/argo"
    assert create["auth"] == f"Bearer {TOKEN}"
    param = create["body"]["workflow"]["spec"]["arguments"]["parameters"][0]
    assert param["name"] == "input" and json.loads(param["value"]) == {
        "question": "via REST"
    }  # plain, as argo submit -p
    assert run.url == f"{server.url}/workflows/argo/{run.name}"  # the Argo Server serves the UI
    assert run.get()["status"]["phase"] in ("Pending", "Running")
    run.wait(timeout=30, poll=0.1)
    assert run.result() == "offline answer: via REST"
    assert run.logs() == {"StrOutputParser": "llmstep: step StrOutputParser done\n"}


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is needed to make a test certificate")
def test_tls_verifies_against_a_ca_bundle_or_fails_clearly(tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    with FakeArgoServer(qa_chain(), token=TOKEN, tls=(str(cert), str(key))) as server:
        compiled = llmstep.compile(qa_chain())
        with pytest.raises(llmstep.SubmissionError, match="TLS verification of https://127.0.0.1"):
            compiled.submit({"question": "x"}, argo_server=server.url, token=TOKEN)
        run = compiled.submit({"question": "tls"}, argo_server=server.url, token=TOKEN, verify=str(cert))
        assert run.wait(timeout=30, poll=0.1)["status"]["phase"] == "Succeeded"
