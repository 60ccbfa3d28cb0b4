"""Least-privilege RBAC for llmstep's pods: steps need no API access; the diagnosis reads pods,
logs, events, the workflow and pipeline kinds and the owner kinds, and nothing on Secrets."""

from __future__ import annotations

from typing import Any

from llmstep import contract

READ = ["get", "list", "watch"]


def diagnose_rbac(engine: str, name: str = "llmstep-diagnose") -> list[dict[str, Any]]:
    """ServiceAccount, Role and RoleBinding for ``llmstep diagnose`` running in a namespace."""
    rules: list[dict[str, Any]] = [
        {"apiGroups": [""], "resources": ["pods", "pods/log", "events"], "verbs": READ},
        {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": READ},
        {
            "apiGroups": ["apps"],
            "resources": ["deployments", "replicasets", "statefulsets", "daemonsets"],
            "verbs": READ,
        },
        {"apiGroups": ["batch"], "resources": ["jobs", "cronjobs"], "verbs": READ},
    ]
    if engine == "argo":
        rules += [
            {"apiGroups": ["argoproj.io"], "resources": ["workflows"], "verbs": READ},
            # Argo's executor reports the diagnosis pod's outputs through WorkflowTaskResults.
            {"apiGroups": ["argoproj.io"], "resources": ["workflowtaskresults"], "verbs": ["create", "patch"]},
        ]
    else:
        rules.append(
            {
                "apiGroups": ["tekton.dev"],
                "resources": ["pipelineruns", "taskruns", "pipelines", "tasks"],
                "verbs": READ,
            }
        )
    meta = {"name": name, "labels": dict(contract.LABELS)}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta, "automountServiceAccountToken": True},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta, "rules": rules},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name}],
        },
    ]
