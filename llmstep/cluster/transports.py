"""The two ways to reach Argo Workflows on a cluster, behind one small interface.

``KubeApi``: the Kubernetes API (kubeconfig or in-cluster), which creates the Workflow custom
resource directly and needs no Argo Server. ``ArgoServer``: the Argo Server's REST API through
Hera's ``WorkflowsService``, with a bearer token and TLS options, configured like the ``argo`` CLI
(``ARGO_SERVER``, ``ARGO_TOKEN``, ``ARGO_SECURE``, ``ARGO_INSECURE_SKIP_VERIFY``, ``ARGO_BASE_HREF``).

Each transport turns its server's refusals into one ``SubmissionError`` carrying the server's
message, so callers never see an ApiException or a HeraException.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from llmstep.errors import LlmstepError, SubmissionError, connection_reason

GROUP, VERSION, PLURAL = "argoproj.io", "v1alpha1", "workflows"

HINTS = {
    401: "unauthorized: pass token= or set ARGO_TOKEN (see `argo auth token`)",
    403: "forbidden: the account needs create/get/patch on workflows.argoproj.io in this namespace",
    404: "not found: is the Argo Workflows CRD installed (kubectl get crd workflows.argoproj.io)?",
    409: "already exists",
    422: "rejected by the API server's validation",
}


def refusal(status: int | None, message: str, what: str, hints: Mapping[int, str] | None = None) -> SubmissionError:
    """One wording for a server's refusal: what was attempted, why in llmstep's words (``hints``
    over the Workflow ones), the server's message."""
    hint = {**HINTS, **(hints or {})}.get(status or 0, f"HTTP {status}")
    return SubmissionError(f"{what}: {hint}: {message}".rstrip(": "))


def kube_client(kubeconfig: str | None = None, context: str | None = None, in_cluster: bool = False, *,
                error: type[LlmstepError] = SubmissionError, purpose: str = "submitting") -> Any:
    """The kubernetes package's ``client`` module, configured like kubectl (or from the pod's
    service account, ``in_cluster``): the one loader of a Kubernetes configuration. Its failures
    are ``error`` (a SubmissionError; ``llmstep diagnose`` asks for a DiagnosisError), naming
    ``purpose`` when the package is missing."""
    try:
        from kubernetes import client, config
    except ImportError:
        raise error(f"{purpose} needs the kubernetes package: pip install 'llmstep[kubernetes]'") from None
    try:
        if in_cluster:
            config.load_incluster_config()
        else:
            config.load_kube_config(config_file=kubeconfig, context=context)
    except Exception as exc:  # the kubernetes package raises several types
        raise error(f"cannot load a Kubernetes configuration: {exc}") from exc
    return client


def api_error(exc: Any, what: str, hints: Mapping[int, str] | None = None) -> SubmissionError:
    """An ApiException from the Kubernetes API as an llmstep error with the server's message."""
    try:
        message = json.loads(exc.body).get("message", "")
    except (TypeError, ValueError, AttributeError):
        message = str(getattr(exc, "reason", exc))
    return refusal(getattr(exc, "status", None), message, what, hints)


def call_kube(client: Any, what: str, fn: Any, *args: Any, hints: Mapping[int, str] | None = None, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` of the kubernetes package, with the API server's refusals (worded
    with ``hints`` over the Workflow ones) and its absence as one SubmissionError."""
    from urllib3.exceptions import HTTPError

    try:
        return fn(*args, **kwargs)
    except client.exceptions.ApiException as exc:
        raise api_error(exc, what, hints) from exc
    except (OSError, HTTPError) as exc:  # MaxRetryError: the API server is not there
        host = client.Configuration.get_default_copy().host
        raise SubmissionError(f"{what}: cannot reach the Kubernetes API server at {host}: {connection_reason(exc)}; "
                              "check --kubeconfig and --context, and that the cluster is running") from exc


class KubeApi:
    """Workflows as custom resources through the Kubernetes API."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def _call(self, what: str, fn: Any, *args: Any) -> Any:
        return call_kube(self.client, what, fn, *args)

    def create(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        api = self.client.CustomObjectsApi()
        return self._call(f"creating the workflow in namespace {namespace}", api.create_namespaced_custom_object,
                          GROUP, VERSION, namespace, PLURAL, body)

    def get(self, namespace: str, name: str) -> dict[str, Any]:
        api = self.client.CustomObjectsApi()
        return self._call(f"reading workflow {namespace}/{name}", api.get_namespaced_custom_object,
                          GROUP, VERSION, namespace, PLURAL, name)

    def terminate(self, namespace: str, name: str) -> None:
        """``spec.shutdown: Terminate``, as ``argo terminate`` does."""
        api = self.client.CustomObjectsApi()
        self._call(f"cancelling workflow {namespace}/{name}", api.patch_namespaced_custom_object,
                   GROUP, VERSION, namespace, PLURAL, name, {"spec": {"shutdown": "Terminate"}})

    def logs(self, namespace: str, name: str) -> dict[str, str]:
        """The ``main`` container log of each step pod, by node id."""
        core = self.client.CoreV1Api()
        pods = self._call(f"listing the pods of workflow {namespace}/{name}", core.list_namespaced_pod,
                          namespace, f"workflows.argoproj.io/workflow={name}").items
        out: dict[str, str] = {}
        for pod in pods:
            node_id = (pod.metadata.annotations or {}).get("workflows.argoproj.io/node-id")
            if node_id is None:
                continue  # not a step pod: the controller annotates each of those with its node id
            try:
                out[node_id] = core.read_namespaced_pod_log(pod.metadata.name, namespace, container="main")
            except self.client.exceptions.ApiException as exc:
                out[node_id] = f"(no log: {exc.reason})"
        return out


class ArgoServer:
    """Workflows through the Argo Server's REST API (Hera's ``WorkflowsService``)."""

    def __init__(self, host: str, *, token: str | None = None, verify: bool | str = True,
                 client_certs: tuple[str, str] | None = None) -> None:
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
            raise SubmissionError(f"{what}: TLS verification of {self.host} failed ({exc.__class__.__name__}); pass "
                                  "verify=<CA bundle path>, or verify=False / ARGO_INSECURE_SKIP_VERIFY=true") from exc
        except requests.exceptions.ConnectionError as exc:
            raise SubmissionError(f"{what}: cannot reach the Argo Server at {self.host}: {connection_reason(exc)}") from exc

    @staticmethod
    def _dict(model: Any) -> dict[str, Any]:
        return model.model_dump(mode="json", by_alias=True, exclude_none=True)

    def create(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        from hera.workflows.models import Workflow, WorkflowCreateRequest

        request = WorkflowCreateRequest(workflow=Workflow.model_validate(body))
        return self._dict(self._call(f"creating the workflow in namespace {namespace}",
                                     self.service.create_workflow, request, namespace=namespace))

    def get(self, namespace: str, name: str) -> dict[str, Any]:
        return self._dict(self._call(f"reading workflow {namespace}/{name}", self.service.get_workflow, name, namespace=namespace))

    def terminate(self, namespace: str, name: str) -> None:
        from hera.workflows.models import WorkflowTerminateRequest

        request = WorkflowTerminateRequest(name=name, namespace=namespace)
        self._call(f"cancelling workflow {namespace}/{name}", self.service.terminate_workflow, name, request, namespace=namespace)

    def logs(self, namespace: str, name: str) -> dict[str, str]:
        """The ``main`` container logs, by node id. The server streams one JSON object per line
        (``{"result": {"podName", "content"}}``), which Hera's ``workflow_logs`` does not parse, so
        this reads the same endpoint through the service's session."""
        svc = self.service
        what = f"reading the logs of workflow {namespace}/{name}"
        resp = self._call(what, svc._request, method="get", url=f"{self.host}api/v1/workflows/{namespace}/{name}/log",
                          params={"logOptions.container": "main"}, headers={"Authorization": svc.token},
                          verify=svc.verify_ssl, cert=svc.client_certs)
        if not resp.ok:
            raise refusal(resp.status_code, resp.text.strip(), what)
        pods: dict[str, list[str]] = {}
        for line in resp.text.splitlines():
            result = json.loads(line).get("result") if line.strip() else None
            if result:
                pods.setdefault(result.get("podName", ""), []).append(result.get("content", ""))
        wf = self.get(namespace, name)
        # A pod is named <workflow>-<template>-<hash>; its node id is <workflow>-<hash>.
        by_hash = {node_id.rsplit("-", 1)[-1]: node_id for node_id in ((wf.get("status") or {}).get("nodes") or {})}
        return {by_hash.get(pod.rsplit("-", 1)[-1], pod): "\n".join(lines) + "\n" for pod, lines in pods.items()}


def transport(
    *,
    client: Any = None,
    kubeconfig: str | None = None,
    context: str | None = None,
    argo_server: str | None = None,
    token: str | None = None,
    verify: bool | str | None = None,
    client_certs: tuple[str, str] | None = None,
    env: Mapping[str, str] = os.environ,
) -> KubeApi | ArgoServer:
    """The Argo Server when ``argo_server`` (or ``ARGO_SERVER``) names one, else the Kubernetes API."""
    server = argo_server or env.get("ARGO_SERVER")
    if client is not None or not server:
        return KubeApi(client or kube_client(kubeconfig, context))
    if "://" not in server:  # the argo CLI's ARGO_SERVER is host:port; ARGO_SECURE picks the scheme
        secure = env.get("ARGO_SECURE", "true").lower() != "false"
        server = f"{'https' if secure else 'http'}://{server}{env.get('ARGO_BASE_HREF', '')}"
    if verify is None:
        verify = env.get("ARGO_INSECURE_SKIP_VERIFY", "false").lower() != "true"
    return ArgoServer(server, token=token or env.get("ARGO_TOKEN"), verify=verify, client_certs=client_certs)


SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


def default_namespace(kubeconfig: str | None = None, context: str | None = None, *,
                      env: Mapping[str, str] = os.environ) -> str:
    """The namespace kubectl and argo use when none is given: the kubeconfig context's (``context``,
    or the current one; ``KUBECONFIG`` is honoured), in a pod its service account's, else ``default``."""
    try:
        from kubernetes import config

        contexts, active = config.list_kube_config_contexts(config_file=kubeconfig or env.get("KUBECONFIG") or None)
        if context:
            active = next((c for c in contexts if c.get("name") == context), None)
        namespace = ((active or {}).get("context") or {}).get("namespace")
        if namespace:
            return str(namespace)
        return "default"
    except Exception:  # no kubeconfig (the kubernetes package raises several types)
        path = SERVICE_ACCOUNT_NAMESPACE
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                return f.read().strip() or "default"
        return "default"
