"""The diagnosis's RBAC: read-only on what a diagnosis reads (pods, logs, events, workloads and the
engine's own kinds), nothing at all on Secrets, bound to its own ServiceAccount."""

from __future__ import annotations

import pytest

from llmstep.render.rbac import READ, diagnose_rbac


@pytest.mark.parametrize(("engine", "kinds"), [("argo", {"workflows"}), ("tekton", {"pipelineruns", "taskruns"})])
def test_the_role_reads_what_a_diagnosis_reads_and_nothing_on_secrets(engine, kinds):
    account, role, binding = diagnose_rbac(engine)
    assert [d["kind"] for d in (account, role, binding)] == ["ServiceAccount", "Role", "RoleBinding"]
    rules = role["rules"]
    resources = {r for rule in rules for r in rule["resources"]}
    assert {"pods", "pods/log", "events", "deployments", "jobs"} | kinds <= resources
    assert not any("secret" in r for r in resources)  # a diagnosis never reads a Secret
    writes = [rule for rule in rules if rule["verbs"] != READ]
    # Argo's executor reports the diagnosis pod's outputs: the one write, and only on Argo
    assert writes == (
        [{"apiGroups": ["argoproj.io"], "resources": ["workflowtaskresults"], "verbs": ["create", "patch"]}]
        if engine == "argo"
        else []
    )


def test_the_binding_gives_the_role_to_its_own_service_account():
    account, role, binding = diagnose_rbac("argo", name="team-diagnose")
    assert account["metadata"]["name"] == role["metadata"]["name"] == "team-diagnose"
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "team-diagnose"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "team-diagnose"}]
    assert all(d["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "llmstep"} for d in (account, role, binding))
