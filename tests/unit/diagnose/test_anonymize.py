"""Anonymized evidence: names of pods, namespaces, containers, hosts and addresses are masked for
the model and mapped back in its report."""

from __future__ import annotations

import json

from diagnose_cases import ANSWER, MANIFEST, needs_key_cluster
from openai_server import FakeOpenAI

from llmstep.diagnose import Model, Redactor, diagnose, prepared
from llmstep.diagnose.evidence import from_text, from_workflow_failures


def test_anonymized_names_are_masked_and_unmasked(tmp_path):
    with FakeOpenAI(reply=json.dumps(ANSWER).replace("web", "deployment-1")) as server:
        report = diagnose(
            from_text(MANIFEST, "bad.yaml"),
            Model(api_key="k", provider="compatible", base_url=server.url),
            Redactor(anonymize=True),
        )
    sent = json.dumps(server.requests[0]["body"])
    assert "deployment-1" in sent and '"name": "web"' not in sent and "name: web" not in sent
    assert "Deployment web" in report.root_cause and "deployment/web" in report.fix_steps[0]["command"]


def test_anonymize_masks_namespaces_containers_hosts_and_ips_and_maps_them_back():
    from llmstep.diagnose.collector import Collector

    real = [
        "needs-key",
        "shop-prod",
        "checkout-api",
        "worker-7.corp.example.net",
        "10.42.0.17",
        "192.168.7.21",
        "10.43.12.5",
        "postgres.shop-prod.svc.cluster.local",
    ]
    evidence = Collector(needs_key_cluster("shop-prod", "worker-7.corp.example.net").client(), "shop-prod").collect(
        "pod/needs-key"
    )
    redactor = Redactor(anonymize=True)
    first = prepared(evidence, redactor, "diagnose", None, None)[1]["content"]
    names = dict(redactor.names)
    assert {names[r] for r in real} == {
        "pod-1",
        "namespace-1",
        "container-1",
        "host-1",
        "host-2",
        "ip-1",
        "ip-2",
        "ip-3",
    }
    answer = {
        **ANSWER,
        "root_cause": f"{names['checkout-api']} in {names['needs-key']} ({names['shop-prod']}) lacks a key; "
        f"node {names['worker-7.corp.example.net']} at {names['192.168.7.21']}, db {names['10.43.12.5']}",
    }
    with FakeOpenAI(reply=json.dumps(answer)) as server:
        report = diagnose(evidence, Model(api_key="k", provider="compatible", base_url=server.url), redactor)
    sent = json.dumps(server.requests[0]["body"])
    for value in real:
        assert value not in sent and value not in first
    assert "CreateContainerConfigError" in sent and "secretKeyRef" in sent  # the evidence itself survives
    assert report.root_cause == (
        "checkout-api in needs-key (shop-prod) lacks a key; node worker-7.corp.example.net at "
        "192.168.7.21, db 10.43.12.5"
    )


def test_anonymize_masks_namespaces_and_containers_of_manifests():
    text = (
        "kind: Pod\nmetadata: {name: web-0, namespace: payments}\nspec:\n  containers:\n  - {name: ledger, image: x}\n"
    )
    redactor = Redactor(anonymize=True)
    sent = prepared(from_text(text, "pod.yaml"), redactor, "diagnose", None, None)[1]["content"]
    assert "payments" not in sent and "ledger" not in sent and "web-0" not in sent
    assert "namespace: namespace-1" in sent and "name: container-1" in sent
    assert redactor.unmask("container-1 of pod-1 in namespace-1") == "ledger of web-0 in payments"


def test_anonymize_masks_exit_handler_evidence():
    failures = json.dumps(
        [
            {
                "displayName": "ChatOpenAI",
                "templateName": "chatopenai",
                "phase": "Failed",
                "message": "boom",
                "podName": "qa-x7k2p-chatopenai-123",
                "finishedAt": "t",
            }
        ]
    )
    redactor = Redactor(anonymize=True)
    sent = prepared(from_workflow_failures(failures, "qa-x7k2p"), redactor, "diagnose", None, None)[1]["content"]
    assert "qa-x7k2p" not in sent and "workflow-1" in sent and "pod-1" in sent
    from llmstep.diagnose.evidence import from_task_statuses

    redactor = Redactor(anonymize=True)
    sent = prepared(
        from_task_statuses('{"fails": "Failed"}', "pipelinerun/qa-run-abc"), redactor, "diagnose", None, None
    )
    assert "qa-run-abc" not in sent[1]["content"] and redactor.unmask("pipelinerun-1") == "qa-run-abc"
