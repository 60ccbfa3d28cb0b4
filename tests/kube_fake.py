"""An in-memory stand-in for the kubernetes package's ``client`` module, below llmstep's
transport: real model objects (``V1Pod``, ``CoreV1Event``) served from dicts, the real
``ApiClient`` serializer, ``ApiException`` for what is not there (a 404, as the API server answers
for a pod that was deleted) and urllib3's ``MaxRetryError`` for a server gone. No network at all.

It is not ``llmstep.cluster.fake.FakeCluster`` (which stands in for the whole transport): it is
what the diagnosis ``Collector`` reads (it takes the client module), and what tests of
``KubeApi`` itself need, its translation of the package's errors included.

A created pod starts Pending; ``on_create(cluster, pod, manifest)`` plays the kubelet (runs the
step, sets the phase and the log), and ``after_read(cluster, pod)`` acts between two reads (a pod
deleted by someone else while a client waits on it)."""

from __future__ import annotations

import json
from types import SimpleNamespace

from kubernetes import client as real


class FakeKubeClient:
    def __init__(self, namespace: str = "default") -> None:
        self.ns = namespace
        self.pods: dict[str, real.V1Pod] = {}
        self.events: list[real.CoreV1Event] = []
        self.logs: dict[tuple[str, str], str] = {}
        self.unreachable = False
        self.created: list[tuple[str, dict]] = []  # (namespace, manifest) of every pod created
        self.deleted: list[tuple[str, str]] = []  # (namespace, name) of every pod deleted
        self.on_create = None
        self.after_read = None

    def add_pod(self, name: str, namespace: str, phase: str = "Pending", labels: dict | None = None) -> real.V1Pod:
        pod = real.V1Pod(
            metadata=real.V1ObjectMeta(name=name, namespace=namespace, labels=labels or {}),
            status=real.V1PodStatus(phase=phase, container_statuses=[], conditions=[]),
        )
        self.pods[name] = pod
        return pod

    def _pod(self, name: str, namespace: str) -> real.V1Pod:
        pod = self.pods.get(name)
        if pod is None or pod.metadata.namespace != namespace:
            body = json.dumps(
                {"kind": "Status", "message": f'pods "{name}" not found', "reason": "NotFound", "code": 404}
            )
            raise real.exceptions.ApiException(http_resp=_Response(404, "Not Found", body))
        return pod

    def client(self) -> SimpleNamespace:
        """The module-shaped object ``Collector`` takes."""
        cluster = self

        class CoreV1Api:
            def read_namespaced_pod(self, name, namespace):
                cluster._check()
                if (name, namespace) not in {(p.metadata.name, p.metadata.namespace) for p in cluster.pods.values()}:
                    raise real.exceptions.ApiException(status=404, reason="Not Found")
                pod = cluster.pods[name]
                if cluster.after_read is not None:
                    cluster.after_read(cluster, pod)
                return pod

            def create_namespaced_pod(self, namespace, body):
                cluster._check()
                name = f"{body['metadata']['generateName']}{len(cluster.created):05d}"
                cluster.created.append((namespace, body))
                pod = cluster.add_pod(name, namespace, labels=body["metadata"].get("labels"))
                if cluster.on_create is not None:
                    cluster.on_create(cluster, pod, body)
                return pod

            def delete_namespaced_pod(self, name, namespace, grace_period_seconds=None):
                cluster._check()
                cluster._pod(name, namespace)
                del cluster.pods[name]
                cluster.deleted.append((namespace, name))

            def list_namespaced_event(self, namespace, field_selector=""):
                cluster._check()
                wanted = dict(part.split("=", 1) for part in field_selector.split(","))
                items = [e for e in cluster.events if e.involved_object.name == wanted.get("involvedObject.name")]
                return real.CoreV1EventList(items=items)

            def read_namespaced_pod_log(self, pod, namespace, container=None, previous=False, tail_lines=None, **_):
                if (namespace, pod) in cluster.deleted:
                    cluster._pod(pod, namespace)  # gone: the API server's 404
                return cluster.logs.get((pod, container), "")

            def list_namespaced_pod(self, namespace, label_selector=None):
                return real.V1PodList(items=list(cluster.pods.values()))

        def unused() -> SimpleNamespace:  # workloads and custom resources: not served by this fake
            return SimpleNamespace()

        return SimpleNamespace(
            CoreV1Api=CoreV1Api,
            AppsV1Api=unused,
            BatchV1Api=unused,
            CustomObjectsApi=unused,
            exceptions=real.exceptions,
            ApiClient=real.ApiClient,
            Configuration=SimpleNamespace(get_default_copy=lambda: SimpleNamespace(host="https://127.0.0.1:6443")),
        )

    def _check(self) -> None:
        if self.unreachable:
            import urllib3

            raise urllib3.exceptions.MaxRetryError(
                None,
                "/api/v1",
                urllib3.exceptions.NewConnectionError(
                    None, "Failed to establish a new connection: [Errno 111] Connection refused"
                ),
            )


class _Response:
    """What ``ApiException(http_resp=...)`` reads: the API server's status line and JSON body."""

    def __init__(self, status: int, reason: str, body: str) -> None:
        self.status, self.reason, self.data = status, reason, body.encode()
        self.headers = {"Content-Type": "application/json"}

    def getheaders(self) -> dict:
        return self.headers


def kubeconfig(tmp_path, namespace: str) -> str:
    """A kubeconfig file whose current context ``team`` names ``namespace`` (another context,
    ``other``, names ``other-ns``); its server is never called."""
    import yaml

    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "team",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [
                    {"name": "team", "context": {"cluster": "c", "user": "u", "namespace": namespace}},
                    {"name": "other", "context": {"cluster": "c", "user": "u", "namespace": "other-ns"}},
                ],
            }
        )
    )
    return str(path)
