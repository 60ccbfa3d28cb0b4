"""Helpers for the tests that run Workflows on the real Argo controller of tests/cluster/."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from openai_server import FakeOpenAI, send_json

ROOT = Path(__file__).resolve().parent.parent
NS = "argo"
EXAMPLES = {
    "qa": ("examples/qa.py:chain", {"question": "What does Argo Workflows do?"}, {}),
    "parallel": ("examples/parallel.py:chain", {"topic": "Kubernetes operators"}, {}),
    "retrieval": ("examples/retrieval.py:chain", "How do steps pass data?", {"allow_pickle": True}),
}


def load_example(ref: str) -> Any:
    from llmstep.cli.refs import load_reference

    path, attr = ref.split(":")
    return load_reference(f"{ROOT / path}:{attr}")


def offline_env(monkeypatch) -> None:
    """The examples pick the offline model when no OpenAI key is set."""
    for key in [k for k in os.environ if k.startswith(("OPENAI_", "AZURE_OPENAI_"))]:
        monkeypatch.delenv(key)


def pods_of(api, name: str, namespace: str = NS) -> list[Any]:
    return api.CoreV1Api().list_namespaced_pod(namespace, label_selector=f"workflows.argoproj.io/workflow={name}").items


def step_nodes(wf: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The Workflow's pod nodes by display name."""
    return {n["displayName"]: n for n in (wf.get("status") or {}).get("nodes", {}).values() if n.get("type") == "Pod"}


def param(node: dict[str, Any], name: str) -> str | None:
    for p in (node.get("outputs") or {}).get("parameters") or []:
        if p["name"] == name:
            return p.get("value")
    return None


def cli(k8s, *args: str, input_text: str | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """A command (argo, kubectl, llmstep) with the cluster's kubeconfig, as a user runs it."""
    env = {**k8s.env}
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    return subprocess.run(list(args), capture_output=True, text=True, env=env, input=input_text, timeout=timeout)


def wait_phase(
    api,
    name: str,
    phases: tuple[str, ...] = ("Succeeded", "Failed", "Error"),
    timeout: float = 300,
    namespace: str = NS,
) -> dict[str, Any]:
    custom = api.CustomObjectsApi()
    deadline = time.monotonic() + timeout
    while True:
        wf = custom.get_namespaced_custom_object("argoproj.io", "v1alpha1", namespace, "workflows", name)
        if (wf.get("status") or {}).get("phase") in phases:
            return wf
        if time.monotonic() > deadline:
            raise AssertionError(f"workflow {name} still {(wf.get('status') or {}).get('phase')} after {timeout} s")
        time.sleep(1)


class Counter:
    """A loopback HTTP server that counts requests per path: a step that must fail on its first
    attempt and succeed on its second asks it which attempt it is (pods share nothing else)."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.counts: dict[str, int] = {}
        counter = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):  # http.server's naming
                counter.counts[self.path] = counter.counts.get(self.path, 0) + 1
                send_json(self, 200, {"count": counter.counts[self.path]})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def diagnosis_reply(body: dict[str, Any]) -> str:
    """What the stand-in model answers a diagnosis: the failed nodes the evidence names, as the
    JSON report llmstep asks for (so the report proves what evidence reached the model)."""
    import re

    text = "\n".join(str(m.get("content", "")) for m in body.get("messages", []))
    # "node NAME (template boom): phase Failed" from {{workflow.failures}}; pods only (a pod's
    # template is not the workflow's entrypoint DAG, "main")
    failed = sorted(
        {m.group(1) for m in re.finditer(r"\bnode (\S+) \(template (\S+?)\)", text) if m.group(2) != "main"}
    )
    return json.dumps(
        {
            "summary": f"failed steps: {', '.join(failed) or 'none'}",
            "root_cause": "the step raised",
            "evidence": failed,
            "fix_steps": [{"description": "fix the step", "command": None}],
            "confidence": 0.5,
        }
    )


__all__ = [
    "FakeOpenAI",
    "Counter",
    "EXAMPLES",
    "NS",
    "cli",
    "diagnosis_reply",
    "load_example",
    "offline_env",
    "param",
    "pods_of",
    "step_nodes",
    "wait_phase",
]


STEP_ENV = {"MODE": "fast", "REGION": "eu-west", "ACME_TOKEN": "tok-from-the-secret"}
"""What the step-env chain returns: a compile-wide literal, a ConfigMap's key and a Secret's key."""


def _read_env(_x):
    import os

    # the names only: the step's pickle must not carry STEP_ENV's secret value (llmstep refuses it)
    return {k: os.environ.get(k) for k in ("MODE", "REGION", "ACME_TOKEN")}


def step_env_compiled(k8s, namespace: str):
    """A chain whose step reads env from a ConfigMap (created here), a Secret (created here) and
    a literal; compiled, for either engine."""
    from langchain_core.runnables import RunnableLambda

    import llmstep

    k8s.kubectl("delete", "configmap/llmstep-settings", "secret/acme", "-n", namespace, "--ignore-not-found")
    k8s.kubectl(
        "create", "configmap", "llmstep-settings", "-n", namespace, f"--from-literal=region={STEP_ENV['REGION']}"
    )
    k8s.kubectl(
        "create", "secret", "generic", "acme", "-n", namespace, f"--from-literal=token={STEP_ENV['ACME_TOKEN']}"
    )
    step = llmstep.Step(
        RunnableLambda(_read_env),
        env={
            "REGION": llmstep.ConfigMapKeyRef("llmstep-settings", "region"),
            "ACME_TOKEN": llmstep.SecretKeyRef("acme", "token"),
        },
    )
    return llmstep.compile(
        step | RunnableLambda(lambda d: d), name="step-env", allow_pickle=True, env={"MODE": STEP_ENV["MODE"]}
    )
