"""On a cluster: submit a compiled Workflow through the Kubernetes API, wait for it, read its
result, its logs, or stop it. Needs no Argo Server (the Workflow custom resource is created
directly); the client is built at call time from kubeconfig or in-cluster config, or passed in.

Waiting is llmstep's own polling loop: a Workflow that is Pending (or has no phase yet) is not
done, unlike what Hera's ``wait()`` assumes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from llmstep.errors import SubmissionError

GROUP, VERSION, PLURAL = "argoproj.io", "v1alpha1", "workflows"
DONE = ("Succeeded", "Failed", "Error")


def kube_client(kubeconfig: str | None = None, context: str | None = None, in_cluster: bool = False) -> Any:
    """The kubernetes package's ``client`` module, configured like kubectl."""
    try:
        from kubernetes import client, config
    except ImportError:
        raise SubmissionError("submitting needs the kubernetes package: pip install 'llmstep[kubernetes]'") from None
    try:
        if in_cluster:
            config.load_incluster_config()
        else:
            config.load_kube_config(config_file=kubeconfig, context=context)
    except Exception as exc:  # noqa: BLE001 - the kubernetes package raises several types
        raise SubmissionError(f"cannot load a Kubernetes configuration: {exc}") from exc
    return client


def api_error(exc: Any, what: str) -> SubmissionError:
    """One translation of the API server's refusals into an llmstep error with its message."""
    import json

    status = getattr(exc, "status", None)
    try:
        message = json.loads(exc.body).get("message", "")
    except (TypeError, ValueError, AttributeError):
        message = str(getattr(exc, "reason", exc))
    hint = {
        403: "forbidden: the account needs create/get/patch on workflows.argoproj.io in this namespace",
        404: "not found: is the Argo Workflows CRD installed (kubectl get crd workflows.argoproj.io)?",
        422: "rejected by the API server's validation",
    }.get(status or 0, f"HTTP {status}")
    return SubmissionError(f"{what}: {hint}: {message}".rstrip(": "))


@dataclass
class WorkflowRun:
    """A submitted Workflow: ``wait()``, ``result()``, ``logs()``, ``cancel()``."""

    name: str
    namespace: str
    client: Any
    ui_url: str | None = None

    @property
    def url(self) -> str | None:
        """The step graph in the Argo UI, when its base URL is known."""
        return f"{self.ui_url.rstrip('/')}/workflows/{self.namespace}/{self.name}" if self.ui_url else None

    def get(self) -> dict[str, Any]:
        try:
            return self.client.CustomObjectsApi().get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, self.name)
        except self.client.exceptions.ApiException as exc:
            raise api_error(exc, f"reading workflow {self.namespace}/{self.name}") from exc

    def wait(self, timeout: float = 600, poll: float = 2.0) -> dict[str, Any]:
        """Until the Workflow finishes (Pending is not finished); raises WorkflowFailed on failure."""
        deadline = time.monotonic() + timeout
        while True:
            wf = self.get()
            phase = (wf.get("status") or {}).get("phase")
            if phase in DONE:
                if phase != "Succeeded":
                    raise WorkflowFailed(wf)
                return wf
            if time.monotonic() > deadline:
                raise SubmissionError(f"workflow {self.name} still {phase or 'not started'} after {timeout:.0f} s; "
                                      f"see argo get -n {self.namespace} {self.name}")  # fmt: skip
            time.sleep(poll)

    def result(self) -> Any:
        """The chain's output, read from the Workflow status (the output task's ``output``)."""
        from llmstep import serde

        wf = self.get()
        status = wf.get("status") or {}
        if status.get("phase") != "Succeeded":
            raise WorkflowFailed(wf) if status.get("phase") in DONE else SubmissionError(
                f"workflow {self.name} is {status.get('phase') or 'not started'}; wait() for it first")
        task = (wf.get("metadata", {}).get("annotations") or {}).get("llmstep.dev/output-task")
        for node in (status.get("nodes") or {}).values():
            if node.get("displayName") == task and node.get("type") == "Pod":
                for param in (node.get("outputs") or {}).get("parameters") or []:
                    if param.get("name") == "output":
                        return serde.loads_value(param.get("value", ""), where=f"{self.name} output")
        raise SubmissionError(f"workflow {self.name} has no output parameter on task {task!r}")

    def logs(self, step: str | None = None) -> dict[str, str]:
        """Logs of the workflow's step pods (``main`` containers), by task display name."""
        core = self.client.CoreV1Api()
        wf = self.get()
        nodes = (wf.get("status") or {}).get("nodes") or {}
        pods = core.list_namespaced_pod(self.namespace, label_selector=f"workflows.argoproj.io/workflow={self.name}").items
        by_node = {(p.metadata.annotations or {}).get("workflows.argoproj.io/node-id"): p.metadata.name for p in pods}
        out: dict[str, str] = {}
        for node_id, node in nodes.items():
            name = node.get("displayName", node_id)
            if node.get("type") != "Pod" or (step and name != step) or node_id not in by_node:
                continue
            try:
                out[name] = core.read_namespaced_pod_log(by_node[node_id], self.namespace, container="main")
            except self.client.exceptions.ApiException as exc:
                out[name] = f"(no log: {exc.reason})"
        return out

    def cancel(self) -> None:
        """Stop the workflow now (``spec.shutdown: Terminate``, as ``argo terminate`` does)."""
        try:
            self.client.CustomObjectsApi().patch_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, self.name, {"spec": {"shutdown": "Terminate"}})
        except self.client.exceptions.ApiException as exc:
            raise api_error(exc, f"cancelling workflow {self.namespace}/{self.name}") from exc


class WorkflowFailed(SubmissionError):
    """A submitted workflow finished without succeeding; carries its failed steps."""

    exit_code = 1

    def __init__(self, wf: dict[str, Any]) -> None:
        status = wf.get("status") or {}
        meta = wf.get("metadata") or {}
        self.failures = [
            {"step": n.get("displayName"), "template": n.get("templateName"), "phase": n.get("phase"), "message": n.get("message")}
            for n in (status.get("nodes") or {}).values()
            if n.get("type") == "Pod" and n.get("phase") in ("Failed", "Error")
        ]  # fmt: skip
        lines = [f"workflow {meta.get('name')} {str(status.get('phase')).lower()}: {status.get('message') or ''}".rstrip(": ")]
        lines += [f"  step {f['step']} ({f['template']}): {f['message']}" for f in self.failures]
        lines.append(f"  ask what went wrong: llmstep diagnose workflow/{meta.get('name')} -n {meta.get('namespace')}")
        super().__init__("\n".join(lines))


def submit(doc: dict[str, Any], input_json: str, *, namespace: str, client: Any, ui_url: str | None = None) -> WorkflowRun:
    """Create the Workflow (with its ``input`` parameter set) through the Kubernetes API."""
    import copy

    body = copy.deepcopy(doc)
    for param in (body["spec"].get("arguments") or {}).get("parameters") or []:
        if param["name"] == "input":
            param["value"] = input_json
    try:
        created = client.CustomObjectsApi().create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    except client.exceptions.ApiException as exc:
        raise api_error(exc, f"creating the workflow in namespace {namespace}") from exc
    return WorkflowRun(name=created["metadata"]["name"], namespace=namespace, client=client, ui_url=ui_url)
