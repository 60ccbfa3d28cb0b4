"""How llmstep reaches a cluster: one small interface, ``Transport``, and what stands behind it.

``Transport`` is all that :mod:`llmstep.cluster` asks of a cluster: create, apply, get, list, patch
and delete objects (plain dicts, as the API server sends them), and read or follow a pod's log.
Behind it:

- ``KubeApi``: the Kubernetes API (kubeconfig or in-cluster), for every kind llmstep uses
  (Workflows, the Tekton kinds, Pods, Events); it needs no Argo Server.
- ``ArgoServer`` (:mod:`llmstep.cluster.argo_server`): the Argo Server's REST API, for Workflows.
- ``FakeCluster`` (:mod:`llmstep.cluster.fake`): a cluster in memory, to test code written on top
  of ``submit()`` without one.

Kubernetes API errors are translated here, once: an ``ApiException`` becomes the llmstep error
``api_error`` words (what was attempted, why in llmstep's words, the server's message), and an API
server that cannot be reached becomes one that says so (``kube_errors``). Every caller goes through
``kube_errors``: the transports, ``KubernetesRunnable`` and ``llmstep diagnose``'s reads alike.

Nothing here reads the environment: the entry points (the CLI, ``Compiled.submit``) resolve the
settings (``ARGO_SERVER``, ``ARGO_TOKEN``, ``KUBECONFIG``...) and pass them in.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
from collections.abc import Iterator, Mapping
from typing import Any, Protocol, runtime_checkable

from llmstep.errors import LlmstepError, SubmissionError, connection_reason

Object = dict[str, Any]

CUSTOM = {
    "Workflow": ("argoproj.io", "v1alpha1", "workflows"),
    "Task": ("tekton.dev", "v1", "tasks"),
    "Pipeline": ("tekton.dev", "v1", "pipelines"),
    "PipelineRun": ("tekton.dev", "v1", "pipelineruns"),
    "TaskRun": ("tekton.dev", "v1", "taskruns"),
}
"""The custom resources llmstep uses, by kind: (group, version, plural). Pods and Events are core."""

HINTS = {
    401: "unauthorized: pass token= or set ARGO_TOKEN (see `argo auth token`)",
    403: "forbidden: the account needs create/get/patch on workflows.argoproj.io in this namespace",
    404: "not found: is the Argo Workflows CRD installed (kubectl get crd workflows.argoproj.io)?",
    409: "already exists",
    422: "rejected by the API server's validation",
}
TEKTON_HINTS = {
    **HINTS,
    403: "forbidden: the account needs the llmstep-submitter Role of tekton/rbac.yaml in this namespace",
    404: "not found: is Tekton Pipelines installed (kubectl get crd pipelineruns.tekton.dev)?",
}
POD_HINTS = {
    **HINTS,
    403: "forbidden: the account needs create/get/delete on pods and get on pods/log in this namespace",
    404: "not found: does the namespace exist (kubectl get namespace)?",
}
DIAGNOSIS_HINTS = {403: "forbidden (check the RBAC in tekton/ or workflows/)", 404: "not found"}


def hints_for(kind: str) -> Mapping[int, str]:
    """How a refusal about ``kind`` is worded."""
    if kind == "Workflow":
        return HINTS
    return TEKTON_HINTS if kind in CUSTOM else POD_HINTS


@runtime_checkable
class Transport(Protocol):
    """What llmstep needs from a cluster. Objects are plain dicts, as the API server sends them;
    a refusal or an unreachable server is a ``SubmissionError`` saying what was attempted."""

    def create(self, namespace: str, body: Object) -> Object:
        """Create ``body`` (its ``kind`` says what it is; ``generateName`` is honoured)."""
        ...

    def apply(self, namespace: str, body: Object) -> Object:
        """Create ``body``, or replace the object of that name (as ``kubectl apply`` does)."""
        ...

    def get(self, namespace: str, kind: str, name: str) -> Object: ...

    def list(self, namespace: str, kind: str, *, labels: str = "", fields: str = "") -> list[Object]:
        """The objects of ``kind`` whose labels (``k=v,...``) and fields (``a.b=v,...``) match."""
        ...

    def patch(self, namespace: str, kind: str, name: str, patch: Object) -> Object:
        """A JSON merge patch of the object (``{"spec": {"shutdown": "Terminate"}}``)."""
        ...

    def delete(self, namespace: str, kind: str, name: str) -> None: ...

    def log(self, namespace: str, pod: str, container: str) -> str:
        """A container's log, whole."""
        ...

    def follow(self, namespace: str, pod: str, container: str) -> Iterator[str]:
        """A running container's log, line by line as it is written, until the container ends."""
        ...


def refusal(
    status: int | None,
    message: str,
    what: str,
    hints: Mapping[int, str] | None = None,
    *,
    error: type[LlmstepError] = SubmissionError,
) -> LlmstepError:
    """One wording for a server's refusal: what was attempted, why in llmstep's words (``hints``,
    the Workflow ones by default), the server's message. The error's ``status`` is the HTTP
    status (a caller tells "not found" from the rest by it, as the server's words vary)."""
    hint = (HINTS if hints is None else hints).get(status or 0, f"HTTP {status}")
    err = error(f"{what}: {hint}: {message}".rstrip(": "))
    err.status = status  # type: ignore[attr-defined]
    return err


def api_error(
    exc: Any, what: str, hints: Mapping[int, str] | None = None, *, error: type[LlmstepError] = SubmissionError
) -> LlmstepError:
    """An ApiException from the Kubernetes API as an llmstep error with the server's message."""
    try:
        message = json.loads(exc.body).get("message", "")
    except (TypeError, ValueError, AttributeError):
        message = str(getattr(exc, "reason", exc))
    return refusal(getattr(exc, "status", None), message, what, hints, error=error)


@contextlib.contextmanager
def kube_errors(
    client: Any, what: str, hints: Mapping[int, str] | None = None, *, error: type[LlmstepError] = SubmissionError
) -> Iterator[None]:
    """Calls of the kubernetes package inside this block: the API server's refusals (worded with
    ``hints``) and its absence become one ``error`` (a SubmissionError; ``llmstep diagnose`` asks
    for a DiagnosisError). The one place Kubernetes API errors are translated."""
    from urllib3.exceptions import HTTPError

    try:
        yield
    except client.exceptions.ApiException as exc:
        raise api_error(exc, what, hints, error=error) from exc
    except (OSError, HTTPError) as exc:  # MaxRetryError: the API server is not there
        host = getattr(client.Configuration.get_default_copy(), "host", "")
        err = error(
            f"{what}: cannot reach the Kubernetes API server{f' at {host}' if host else ''}: "
            f"{connection_reason(exc)}; check --kubeconfig and --context, and that the cluster is running"
        )
        err.status = None  # type: ignore[attr-defined]  # no answer at all
        raise err from exc


def kube_client(
    kubeconfig: str | None = None,
    context: str | None = None,
    in_cluster: bool = False,
    *,
    error: type[LlmstepError] = SubmissionError,
    purpose: str = "submitting",
) -> Any:
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


def _where(namespace: str, kind: str, name: str) -> str:
    return f"{kind.lower()} {namespace}/{name}"


class KubeApi:
    """The Kubernetes API through the kubernetes package's ``client`` module (configured)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    @functools.cached_property
    def custom(self) -> Any:
        return self.client.CustomObjectsApi()

    @functools.cached_property
    def core(self) -> Any:
        return self.client.CoreV1Api()

    def _plain(self, model: Any) -> Object:
        """A model object of the kubernetes package as the API server's JSON."""
        return self.client.ApiClient().sanitize_for_serialization(model)

    def _call(self, what: str, kind: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        with kube_errors(self.client, what, hints_for(kind)):
            return fn(*args, **kwargs)

    def create(self, namespace: str, body: Object) -> Object:
        kind = body["kind"]
        what = f"creating the {kind} in namespace {namespace}"
        if kind == "Pod":
            return self._plain(self._call(what, kind, self.core.create_namespaced_pod, namespace, body))
        return self._call(
            what, kind, self.custom.create_namespaced_custom_object, *CUSTOM[kind][:2], namespace, CUSTOM[kind][2], body
        )

    def apply(self, namespace: str, body: Object) -> Object:
        kind, name = body["kind"], body["metadata"]["name"]
        group, version, plural = CUSTOM[kind]
        with kube_errors(self.client, f"creating {_where(namespace, kind, name)}", hints_for(kind)):
            try:
                return self.custom.create_namespaced_custom_object(group, version, namespace, plural, body)
            except self.client.exceptions.ApiException as exc:
                if exc.status != 409:
                    raise
        current = self.get(namespace, kind, name)
        replaced = {**body, "metadata": {**body["metadata"], "resourceVersion": current["metadata"]["resourceVersion"]}}
        return self._call(
            f"replacing {_where(namespace, kind, name)}",
            kind,
            self.custom.replace_namespaced_custom_object,
            group,
            version,
            namespace,
            plural,
            name,
            replaced,
        )

    def get(self, namespace: str, kind: str, name: str) -> Object:
        what = f"reading {_where(namespace, kind, name)}"
        if kind == "Pod":
            return self._plain(self._call(what, kind, self.core.read_namespaced_pod, name, namespace))
        group, version, plural = CUSTOM[kind]
        return self._call(what, kind, self.custom.get_namespaced_custom_object, group, version, namespace, plural, name)

    def list(self, namespace: str, kind: str, *, labels: str = "", fields: str = "") -> list[Object]:
        what = f"listing the {kind.lower()}s in namespace {namespace}" + (
            f" ({labels or fields})" if labels or fields else ""
        )
        selectors = {k: v for k, v in (("label_selector", labels), ("field_selector", fields)) if v}
        if kind in ("Pod", "Event"):
            fn = self.core.list_namespaced_pod if kind == "Pod" else self.core.list_namespaced_event
            return [self._plain(item) for item in self._call(what, kind, fn, namespace, **selectors).items]
        group, version, plural = CUSTOM[kind]
        return self._call(
            what, kind, self.custom.list_namespaced_custom_object, group, version, namespace, plural, **selectors
        )["items"]

    def patch(self, namespace: str, kind: str, name: str, patch: Object) -> Object:
        group, version, plural = CUSTOM[kind]
        return self._call(
            f"updating {_where(namespace, kind, name)}",
            kind,
            self.custom.patch_namespaced_custom_object,
            group,
            version,
            namespace,
            plural,
            name,
            patch,
        )

    def delete(self, namespace: str, kind: str, name: str) -> None:
        what = f"deleting {_where(namespace, kind, name)}"
        if kind == "Pod":
            self._call(what, kind, self.core.delete_namespaced_pod, name, namespace, grace_period_seconds=0)
            return
        group, version, plural = CUSTOM[kind]
        self._call(what, kind, self.custom.delete_namespaced_custom_object, group, version, namespace, plural, name)

    def log(self, namespace: str, pod: str, container: str) -> str:
        return self._call(
            f"reading the log of pod {namespace}/{pod}",
            "Pod",
            self.core.read_namespaced_pod_log,
            pod,
            namespace,
            container=container,
        )

    def follow(self, namespace: str, pod: str, container: str) -> Iterator[str]:
        what = f"following the log of pod {namespace}/{pod}"
        response = self._call(
            what,
            "Pod",
            self.core.read_namespaced_pod_log,
            pod,
            namespace,
            container=container,
            follow=True,
            _preload_content=False,
        )
        buffer = b""
        try:
            with kube_errors(self.client, what, POD_HINTS):
                for data in response.stream(4096):
                    buffer += data
                    *lines, buffer = buffer.split(b"\n")
                    yield from (line.decode("utf-8", errors="replace") for line in lines)
            if buffer:
                yield buffer.decode("utf-8", errors="replace")
        finally:
            response.release_conn()


SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


def default_namespace(kubeconfig: str | None = None, context: str | None = None) -> str:
    """The namespace kubectl and argo use when none is given: the kubeconfig context's (``context``,
    or the current one; the entry point passes ``KUBECONFIG`` as ``kubeconfig`` when no file is
    named), in a pod its service account's, else ``default``."""
    try:
        from kubernetes import config

        contexts, active = config.list_kube_config_contexts(config_file=kubeconfig or None)
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
