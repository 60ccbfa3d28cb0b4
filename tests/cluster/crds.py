"""Custom resource definitions for the test cluster.

The upstream Argo Workflow CRD (tests/data/crds/) is adapted at install time for the Kubernetes
1.20 API server, whose CRD schema support predates ``x-kubernetes-validations`` and rejects
empty-string defaults; the rest of the schema still validates Workflows server-side. Tekton's
kinds are installed as CRDs that keep every field, so Tekton objects can be stored and read.
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

DATA = Path(__file__).resolve().parent.parent / "data" / "crds"


def adapt(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: adapt(v) for k, v in node.items()
                if k != "x-kubernetes-validations" and not (k == "default" and v == "")}  # fmt: skip
    if isinstance(node, list):
        return [adapt(v) for v in node]
    return node


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


def install_crds(cluster: Any) -> None:
    argo = [adapt(yaml.safe_load((DATA / f"argo-workflows-v4.1.2-{kind}.crd.yaml").read_text()))
            for kind in ("workflows", "workflowtemplates")]  # fmt: skip
    for crd in [*argo, *tekton_crds()]:
        _post(cluster, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    for crd in [*argo, *tekton_crds()]:
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
