"""Helpers for the tests that run llmstep's Tekton documents on the real Tekton Pipelines
controller of tests/cluster/ (v1.15.0, with its webhook)."""

from __future__ import annotations

import time
from typing import Any

from llmstep.cluster.tekton import done, succeeded

NS = "tekton-tests"
GATEWAY_KEY = "sk-test-tekton-gateway-key-0123456789"


def tekton_namespace(k8s: Any, namespace: str = NS) -> None:
    """A namespace as the README prepares it: tekton/rbac.yaml, the Task, and the model's key in
    the ``llm-credentials`` Secret."""
    import tekton

    if k8s.kubectl("get", "namespace", namespace, check=False).returncode != 0:
        k8s.kubectl("create", "namespace", namespace)
    tekton.prepare_namespace(k8s, namespace)
    k8s.kubectl("delete", "secret", "llm-credentials", "-n", namespace, "--ignore-not-found")
    k8s.kubectl(
        "create",
        "secret",
        "generic",
        "llm-credentials",
        "-n",
        namespace,
        f"--from-literal=OPENAI_API_KEY={GATEWAY_KEY}",
    )


def get(api: Any, kind: str, name: str, namespace: str = NS) -> dict[str, Any]:
    plural = {"PipelineRun": "pipelineruns", "TaskRun": "taskruns"}[kind]
    return api.CustomObjectsApi().get_namespaced_custom_object("tekton.dev", "v1", namespace, plural, name)


def wait_done(api: Any, kind: str, name: str, namespace: str = NS, timeout: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        obj = get(api, kind, name, namespace)
        if done(obj):
            return obj
        if time.monotonic() > deadline:
            raise AssertionError(f"{kind} {name} still {(succeeded(obj) or {}).get('reason')} after {timeout} s")
        time.sleep(1)


def taskruns(api: Any, pipelinerun: str, namespace: str = NS) -> dict[str, dict[str, Any]]:
    """The PipelineRun's TaskRuns by pipeline task name."""
    items = api.CustomObjectsApi().list_namespaced_custom_object(
        "tekton.dev", "v1", namespace, "taskruns", label_selector=f"tekton.dev/pipelineRun={pipelinerun}"
    )["items"]
    return {tr["metadata"]["labels"]["tekton.dev/pipelineTask"]: tr for tr in items}


def results(obj: dict[str, Any]) -> dict[str, str]:
    return {r["name"]: r.get("value") for r in (obj.get("status") or {}).get("results") or []}


def phase(obj: dict[str, Any]) -> str:
    """A TaskRun's outcome in the local runner's words: Succeeded or Failed."""
    cond = succeeded(obj) or {}
    return {"True": "Succeeded", "False": "Failed"}.get(cond.get("status"), "Running")
