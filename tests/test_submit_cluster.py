"""Submitting to the real test cluster's API server: refusals are clear errors. What the Argo
controller then does with a Workflow is in tests/test_argo_controller.py.

Opt in with `pytest -m cluster`; see tests/cluster/.
"""

from __future__ import annotations

import json

import pytest
from chains import qa_chain
from conftest import kube_api

import llmstep
from llmstep.cluster.transports import api_error

pytestmark = pytest.mark.cluster
NS = "submit"


@pytest.fixture(scope="module")
def api(k8s):
    return kube_api(k8s, NS)


def test_rbac_refusal_is_a_clear_error(api, k8s, tmp_path):
    from kubernetes import client as kclient
    from kubernetes import config

    core = api.CoreV1Api()
    core.create_namespaced_service_account(NS, api.V1ServiceAccount(metadata=api.V1ObjectMeta(name="nobody")))
    token = k8s.kubectl("create", "token", "nobody", "-n", NS).stdout.strip()  # the TokenRequest API
    cfg = json.loads(k8s.kubeconfig.read_text())
    cfg["users"][0]["user"] = {"token": token}
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
        body = json.dumps(
            {"message": 'Workflow.argoproj.io "x" is invalid: spec.templates.container.image: Invalid value'}
        )

    assert "rejected by the API server's validation: Workflow.argoproj.io" in str(api_error(Refusal(), "creating"))
