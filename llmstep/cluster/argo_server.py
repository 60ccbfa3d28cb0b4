"""The Argo Server's REST API behind the ``Transport`` interface, for Workflows.

Through Hera's ``WorkflowsService``, with a bearer token and TLS options, configured like the
``argo`` CLI (the entry points read ``ARGO_SERVER``, ``ARGO_TOKEN``, ``ARGO_SECURE``,
``ARGO_INSECURE_SKIP_VERIFY``, ``ARGO_BASE_HREF``; see :func:`llmstep.cluster.transports.transport`).
The server's refusals become one ``SubmissionError`` carrying its message, so callers never see a
HeraException. The Argo Server serves Workflows only: Pods, Events and the Tekton kinds go through
the Kubernetes API, and a Workflow's logs come from its own endpoint (``workflow_logs``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, NoReturn

from llmstep.cluster.transports import Object, refusal
from llmstep.errors import SubmissionError, connection_reason

TERMINATE = {"spec": {"shutdown": "Terminate"}}
"""The one change of a Workflow the Argo Server makes (its ``terminate`` endpoint)."""


class ArgoServer:
    """Workflows through the Argo Server's REST API (Hera's ``WorkflowsService``)."""

    def __init__(
        self,
        host: str,
        *,
        token: str | None = None,
        verify: bool | str = True,
        client_certs: tuple[str, str] | None = None,
    ) -> None:
        from hera.workflows.service import WorkflowsService

        self.host = host.rstrip("/") + "/"
        self.service = WorkflowsService(host=self.host, token=token, verify_ssl=verify, client_certs=client_certs)  # type: ignore[arg-type]

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        import requests
        from hera.exceptions import HeraException

        try:
            return fn(*args, **kwargs)
        except HeraException as exc:
            message = str(exc).partition("with message: ")[2].strip("`") or str(exc)
            raise refusal(getattr(exc, "status_code", None), message, what) from exc
        except requests.exceptions.SSLError as exc:
            raise SubmissionError(
                f"{what}: TLS verification of {self.host} failed ({exc.__class__.__name__}); pass "
                "verify=<CA bundle path>, or verify=False / ARGO_INSECURE_SKIP_VERIFY=true"
            ) from exc
        except requests.exceptions.ConnectionError as exc:
            raise SubmissionError(
                f"{what}: cannot reach the Argo Server at {self.host}: {connection_reason(exc)}"
            ) from exc

    @staticmethod
    def _dict(model: Any) -> Object:
        return model.model_dump(mode="json", by_alias=True, exclude_none=True)

    def _only_workflows(self, kind: str, verb: str) -> None:
        if kind != "Workflow":
            self._refuse(f"{verb} a {kind}")

    def _refuse(self, what: str) -> NoReturn:
        raise SubmissionError(
            f"{what}: the Argo Server at {self.host} serves Workflows only; this goes through the "
            "Kubernetes API (client=, kubeconfig=, context=)"
        )

    def create(self, namespace: str, body: Object) -> Object:
        from hera.workflows.models import Workflow, WorkflowCreateRequest

        self._only_workflows(body.get("kind", "Workflow"), "creating")
        request = WorkflowCreateRequest(workflow=Workflow.model_validate(body))
        return self._dict(
            self._call(
                f"creating the Workflow in namespace {namespace}",
                self.service.create_workflow,
                request,
                namespace=namespace,
            )
        )

    def apply(self, namespace: str, body: Object) -> Object:
        self._refuse(f"applying a {body.get('kind')}")

    def get(self, namespace: str, kind: str, name: str) -> Object:
        self._only_workflows(kind, "reading")
        return self._dict(
            self._call(f"reading workflow {namespace}/{name}", self.service.get_workflow, name, namespace=namespace)
        )

    def list(self, namespace: str, kind: str, *, labels: str = "", fields: str = "") -> list[Object]:
        self._refuse(f"listing {kind}s")

    def patch(self, namespace: str, kind: str, name: str, patch: Object) -> Object:
        """``spec.shutdown: Terminate`` (``argo terminate``): the one patch the Argo Server makes."""
        from hera.workflows.models import WorkflowTerminateRequest

        self._only_workflows(kind, "updating")
        if patch != TERMINATE:
            self._refuse(f"updating workflow {namespace}/{name} other than to terminate it")
        request = WorkflowTerminateRequest(name=name, namespace=namespace)
        return self._dict(
            self._call(
                f"updating workflow {namespace}/{name}",
                self.service.terminate_workflow,
                name,
                request,
                namespace=namespace,
            )
        )

    def delete(self, namespace: str, kind: str, name: str) -> None:
        self._refuse(f"deleting {kind.lower()} {namespace}/{name}")

    def log(self, namespace: str, pod: str, container: str) -> str:
        self._refuse(f"reading the log of pod {namespace}/{pod}")

    def follow(self, namespace: str, pod: str, container: str) -> Iterator[str]:
        self._refuse(f"following the log of pod {namespace}/{pod}")

    def workflow_logs(self, namespace: str, name: str) -> dict[str, str]:
        """The ``main`` container logs, by node id. The server streams one JSON object per line
        (``{"result": {"podName", "content"}}``), which Hera's ``workflow_logs`` does not parse, so
        this reads the same endpoint through the service's session."""
        svc = self.service
        what = f"reading the logs of workflow {namespace}/{name}"
        resp = self._call(
            what,
            svc._request,
            method="get",
            url=f"{self.host}api/v1/workflows/{namespace}/{name}/log",
            params={"logOptions.container": "main"},
            headers={"Authorization": svc.token},
            verify=svc.verify_ssl,
            cert=svc.client_certs,
        )
        if not resp.ok:
            raise refusal(resp.status_code, resp.text.strip(), what)
        pods: dict[str, list[str]] = {}
        for line in resp.text.splitlines():
            result = json.loads(line).get("result") if line.strip() else None
            if result:
                pods.setdefault(result.get("podName", ""), []).append(result.get("content", ""))
        wf = self.get(namespace, "Workflow", name)
        # A pod is named <workflow>-<template>-<hash>; its node id is <workflow>-<hash>.
        by_hash = {node_id.rsplit("-", 1)[-1]: node_id for node_id in ((wf.get("status") or {}).get("nodes") or {})}
        return {by_hash.get(pod.rsplit("-", 1)[-1], pod): "\n".join(lines) + "\n" for pod, lines in pods.items()}
