"""Stand-ins for Tekton's CRDs, until the test cluster runs the real Tekton controller: custom
resources that keep every field, so Tekton objects can be stored and read (the diagnosis tests
read PipelineRuns and TaskRuns). Argo's CRDs are the upstream ones (tests/cluster/argo.py).
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.request
from typing import Any


def tekton_crds() -> list[dict]:
    crds = []
    for kind, plural in (("Task", "tasks"), ("Pipeline", "pipelines"), ("TaskRun", "taskruns"), ("PipelineRun", "pipelineruns")):
        crds.append({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.tekton.dev"},
            "spec": {"group": "tekton.dev", "scope": "Namespaced",
                     "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
                     "versions": [{"name": "v1", "served": True, "storage": True, "subresources": {"status": {}},
                                   "schema": {"openAPIV3Schema": {"type": "object",
                                                                  "x-kubernetes-preserve-unknown-fields": True}}}]},
        })  # fmt: skip
    return crds


def install_tekton_stand_ins(cluster: Any) -> None:
    for crd in tekton_crds():
        _post(cluster, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    for crd in tekton_crds():
        _wait_established(cluster, crd["metadata"]["name"])


def _request(cluster: Any, method: str, path: str, body: dict | None = None) -> dict:
    from cluster import TOKEN

    ctx = ssl.create_default_context(cafile=str(cluster.state / "ca.crt"))
    req = urllib.request.Request(
        f"https://127.0.0.1:{cluster.ports['apiserver']}{path}", method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(req, context=ctx, timeout=60) as resp:  # noqa: S310 - loopback only
        return json.loads(resp.read() or b"{}")


def _post(cluster: Any, path: str, body: dict) -> None:
    try:
        _request(cluster, "POST", path, body)
    except urllib.error.HTTPError as exc:
        if exc.code != 409:  # already there
            raise RuntimeError(f"installing {body['metadata']['name']}: {exc.read()[:2000]!r}") from exc


def _wait_established(cluster: Any, name: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        crd = _request(cluster, "GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
        if any(c["type"] == "Established" and c["status"] == "True" for c in (crd.get("status") or {}).get("conditions") or []):
            return
        time.sleep(0.5)
    raise RuntimeError(f"CRD {name} not established after {timeout} s")
