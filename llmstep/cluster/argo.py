"""On a cluster: submit a compiled Workflow, wait for it, read its result, its logs, or stop it.

The transport is any :class:`llmstep.cluster.transports.Transport`: the Kubernetes API (creates the
Workflow custom resource; needs no Argo Server), the Argo Server's REST API, or a ``FakeCluster``. Waiting is llmstep's own polling
loop: a Workflow that is Pending (or has no phase yet) is not done, unlike what Hera's ``wait()``
assumes.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any

from llmstep import contract
from llmstep.cluster.argo_server import ArgoServer
from llmstep.cluster.transports import Transport
from llmstep.errors import SubmissionError, WorkflowFailed
from llmstep.render.batch import STEP_NODES


@dataclass
class WorkflowRun:
    """A submitted Workflow: ``wait()``, ``result()``, ``logs()``, ``cancel()``."""

    name: str
    namespace: str
    transport: Transport
    ui_url: str | None = None

    @property
    def url(self) -> str | None:
        """The step graph in the Argo UI, when its base URL is known."""
        return f"{self.ui_url.rstrip('/')}/workflows/{self.namespace}/{self.name}" if self.ui_url else None

    def get(self) -> dict[str, Any]:
        return self.transport.get(self.namespace, "Workflow", self.name)

    def wait(self, timeout: float = 600, poll: float = 2.0) -> dict[str, Any]:
        """Until the Workflow finishes (Pending is not finished); raises WorkflowFailed on failure."""
        wf = self._finished(timeout, poll)
        if wf["status"]["phase"] != contract.Phase.SUCCEEDED:
            raise workflow_failed(wf)
        return wf

    def _finished(self, timeout: float, poll: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            wf = self.get()
            phase = (wf.get("status") or {}).get("phase")
            if phase in contract.DONE_PHASES:
                return wf
            if time.monotonic() > deadline:
                raise SubmissionError(
                    f"workflow {self.name} still {phase or 'not started'} after {timeout:.0f} s; "
                    f"see argo get -n {self.namespace} {self.name}"
                )
            time.sleep(poll)

    def _done(self) -> dict[str, Any]:
        wf = self.get()
        phase = (wf.get("status") or {}).get("phase")
        if phase not in contract.DONE_PHASES:
            raise SubmissionError(f"workflow {self.name} is {phase or 'not started'}; wait() for it first")
        return wf

    def result(self) -> Any:
        """The chain's output, read from the Workflow status (the output task's ``output``)."""
        from llmstep import serde

        wf = self._done()
        if wf["status"]["phase"] != contract.Phase.SUCCEEDED:
            raise workflow_failed(wf)
        task = _annotations(wf).get(contract.OUTPUT_TASK)
        for node in (wf["status"].get("nodes") or {}).values():
            if node.get("displayName") == task and node.get("type") in STEP_NODES:
                text = node_output(node)
                if text is not None:
                    return serde.loads_value(text, where=f"{self.name} output")
        raise SubmissionError(f"workflow {self.name} has no output parameter on task {task!r}")

    def usage(self) -> dict[str, dict[str, Any]]:
        """The run's tokens per model so far: the sum of its step pods' ``usage`` outputs (a Retry
        node repeats its last pod's outputs, so only Pod nodes count; see :mod:`llmstep.usage`)."""
        from llmstep import usage

        nodes = (self.get().get("status") or {}).get("nodes") or {}
        return usage.totals(
            param.get("value")
            for node in nodes.values()
            if node.get("type") == "Pod"
            for param in (node.get("outputs") or {}).get("parameters") or []
            if param.get("name") == "usage"
        )

    def logs(self, step: str | None = None) -> dict[str, str]:
        """Logs of the workflow's step pods (``main`` containers), by node display name."""
        nodes = (self.get().get("status") or {}).get("nodes") or {}
        by_node = workflow_logs(self.transport, self.namespace, self.name)
        out: dict[str, str] = {}
        for node_id, node in nodes.items():
            name = node.get("displayName", node_id)
            if node.get("type") == "Pod" and (step is None or name == step) and node_id in by_node:
                out[name] = by_node[node_id]
        return out

    def cancel(self) -> None:
        """Stop the workflow now (``argo terminate``)."""
        self.transport.patch(self.namespace, "Workflow", self.name, {"spec": {"shutdown": "Terminate"}})


@dataclass
class BatchRun(WorkflowRun):
    """A submitted batch Workflow: ``results()`` in input order, with per-input errors."""

    def wait(self, timeout: float = 600, poll: float = 2.0) -> dict[str, Any]:
        """Until every input is done; a failed input does not raise here (see ``results``)."""
        return self._finished(timeout, poll)

    def result(self) -> Any:
        return self.results()

    def results(self, return_exceptions: bool = False) -> list[Any]:
        """Each input's output in input order. A failed input raises ``BatchFailed`` (which holds
        all results), or with ``return_exceptions=True`` is an ``ItemFailed`` in its place."""
        from llmstep.render import batch

        wf = self._done()
        count = batch.input_count((wf["spec"].get("arguments") or {}).get("parameters") or [])
        nodes = ((node.get("name", node_id), node) for node_id, node in (wf["status"].get("nodes") or {}).items())
        return batch.collect(
            count,
            nodes,
            _annotations(wf).get(contract.OUTPUT_TASK, ""),
            node_output,
            f"workflow {self.name}",
            return_exceptions,
        )


def workflow_logs(transport: Transport, namespace: str, name: str) -> dict[str, str]:
    """The ``main`` container log of each step pod of a Workflow, by node id. The Argo Server
    serves them from its own endpoint; elsewhere they are the logs of the pods the controller
    labelled with the Workflow and annotated with their node id."""
    if isinstance(transport, ArgoServer):
        return transport.workflow_logs(namespace, name)
    out: dict[str, str] = {}
    for pod in transport.list(namespace, "Pod", labels=f"workflows.argoproj.io/workflow={name}"):
        meta = pod.get("metadata") or {}
        node_id = (meta.get("annotations") or {}).get("workflows.argoproj.io/node-id")
        if node_id is None:
            continue  # not a step pod: the controller annotates each of those with its node id
        try:
            out[node_id] = transport.log(namespace, meta["name"], "main")
        except SubmissionError as exc:
            out[node_id] = f"(no log: {exc})"
    return out


def workflow_failed(wf: dict[str, Any]) -> WorkflowFailed:
    """The error for a finished Workflow that did not succeed: its phase, message and failed steps."""
    status = wf.get("status") or {}
    meta = wf.get("metadata") or {}
    failures = [
        {
            "step": n.get("displayName"),
            "template": n.get("templateName"),
            "phase": n.get("phase"),
            "message": n.get("message"),
        }
        for n in (status.get("nodes") or {}).values()
        if n.get("type") == "Pod" and n.get("phase") in contract.FAILED_PHASES
    ]
    lines = [
        f"workflow {meta.get('name')} {str(status.get('phase')).lower()}: {status.get('message') or ''}".rstrip(": ")
    ]
    lines += [f"  step {f['step']} ({f['template']}): {f['message']}" for f in failures]
    lines.append(f"  ask what went wrong: llmstep diagnose workflow/{meta.get('name')} -n {meta.get('namespace')}")
    return WorkflowFailed("\n".join(lines), run_id=meta.get("name") or "", failures=failures)


def node_output(node: dict[str, Any]) -> str | None:
    """A step node's ``output`` parameter as written in the Workflow status."""
    for param in (node.get("outputs") or {}).get("parameters") or []:
        if param.get("name") == "output":
            return param.get("value", "")
    return None


def _annotations(wf: dict[str, Any]) -> dict[str, str]:
    return (wf.get("metadata") or {}).get("annotations") or {}


def submit(
    doc: dict[str, Any], arguments: dict[str, str], *, namespace: str, transport: Transport, ui_url: str | None = None
) -> WorkflowRun:
    """Create the Workflow with its parameters set (``input``, or ``inputs`` for a batch)."""
    body = copy.deepcopy(doc)
    for param in (body["spec"].get("arguments") or {}).get("parameters") or []:
        if param["name"] in arguments:
            param["value"] = arguments[param["name"]]
    if ui_url is None and isinstance(transport, ArgoServer):
        ui_url = transport.host  # the Argo Server serves the UI
    created = transport.create(namespace, body)
    return attach(created, namespace, transport, ui_url)


def attach(wf: dict[str, Any], namespace: str, transport: Transport, ui_url: str | None = None) -> WorkflowRun:
    """The run object for an existing Workflow: a BatchRun when it is a batch."""
    kind = BatchRun if _annotations(wf).get(contract.BATCH_ANNOTATION) == "true" else WorkflowRun
    return kind(name=wf["metadata"]["name"], namespace=namespace, transport=transport, ui_url=ui_url)
