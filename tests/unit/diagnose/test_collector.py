"""Evidence read from the Kubernetes API: targets named like kubectl's, and what a pod's spec and
status say, read from an in-memory cluster."""

from __future__ import annotations

import pytest
from diagnose_cases import PLANTED, needs_key_cluster

import llmstep
from llmstep.diagnose import Redactor, prepared
from llmstep.diagnose.collector import Collector, parse_target


def test_targets_parse_like_kubectl():
    assert parse_target("deploy/web") == ("deployment", "web")
    assert parse_target("workflows/wf-1") == ("workflow", "wf-1")
    with pytest.raises(llmstep.LlmstepError, match="KIND/NAME"):
        parse_target("frobnicator")
    with pytest.raises(
        llmstep.LlmstepError, match="kind 'service' .* is not one that llmstep diagnose reads"
    ) as caught:
        parse_target("service/web")
    assert (
        "kubectl get service web -o yaml | llmstep diagnose -f -" in str(caught.value) and caught.value.exit_code == 2
    )


def test_evidence_shows_which_secret_and_key_a_failing_container_references():
    evidence = Collector(needs_key_cluster().client(), "default").collect("pod/needs-key")
    sent = prepared(evidence, Redactor(), "diagnose", None, None)[1]["content"]
    assert "waiting (CreateContainerConfigError: couldn't find key API_KEY in Secret default/app-secrets)" in sent
    assert "## spec of pod needs-key (trimmed)" in sent
    spec = sent.split("## spec of pod needs-key (trimmed)\n", 1)[1].split("\n\n## ", 1)[0]
    import yaml

    container = yaml.safe_load(spec)["containers"][0]
    assert container["image"] == "registry.example.com/checkout:2.0" and container["command"] == ["/app/serve"]
    assert container["env"][0] == {
        "name": "API_KEY",
        "valueFrom": {"secretKeyRef": {"name": "app-secrets", "key": "API_KEY"}},
    }
    assert (
        container["env"][1] == {"name": "API_TOKEN", "value": "[REDACTED]"}
        and container["env"][2]["value"] == "production"
    )
    assert (
        container["resources"] == {"limits": {"memory": "256Mi"}}
        and container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    )
    assert yaml.safe_load(spec)["volumes"] == [{"name": "tls", "secret": {"secretName": "checkout-tls"}}]
    assert PLANTED not in sent


def test_unreachable_api_server_is_named_not_an_internal_error():
    """``llmstep diagnose`` reads through the one translation of Kubernetes API errors."""
    from llmstep.cli.diagnose import collect

    cluster = needs_key_cluster()
    cluster.unreachable = True
    with pytest.raises(
        llmstep.DiagnosisError,
        match=r"cannot reach the Kubernetes API server at https://127.0.0.1:6443: "
        r"Failed to establish a new connection: \[Errno 111\] Connection refused",
    ):
        collect(cluster.client(), "default", "pod/needs-key")
    with pytest.raises(llmstep.DiagnosisError, match=r"reading pod/gone in namespace default: not found"):
        collect(needs_key_cluster().client(), "default", "pod/gone")
