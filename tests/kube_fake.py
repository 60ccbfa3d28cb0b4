"""An in-memory stand-in for the kubernetes package's ``client`` module, as the diagnosis
collector uses it: real model objects (``V1Pod``, ``CoreV1Event``) served from dicts, the real
``ApiClient`` serializer, and ``ApiException`` for what is not there. No network at all."""

from __future__ import annotations

from types import SimpleNamespace

from kubernetes import client as real


class FakeCluster:
    def __init__(self, namespace: str = "default") -> None:
        self.ns = namespace
        self.pods: dict[str, real.V1Pod] = {}
        self.events: list[real.CoreV1Event] = []
        self.logs: dict[tuple[str, str], str] = {}
        self.unreachable = False

    def client(self) -> SimpleNamespace:
        """The module-shaped object ``Collector`` takes."""
        cluster = self

        class CoreV1Api:
            def read_namespaced_pod(self, name, namespace):
                cluster._check()
                if (name, namespace) not in {(p.metadata.name, p.metadata.namespace) for p in cluster.pods.values()}:
                    raise real.exceptions.ApiException(status=404, reason="Not Found")
                return cluster.pods[name]

            def list_namespaced_event(self, namespace, field_selector=""):
                cluster._check()
                wanted = dict(part.split("=", 1) for part in field_selector.split(","))
                items = [e for e in cluster.events if e.involved_object.name == wanted.get("involvedObject.name")]
                return real.CoreV1EventList(items=items)

            def read_namespaced_pod_log(self, pod, namespace, container=None, previous=False, tail_lines=None):
                return cluster.logs.get((pod, container), "")

            def list_namespaced_pod(self, namespace, label_selector=None):
                return real.V1PodList(items=list(cluster.pods.values()))

        def unused() -> SimpleNamespace:  # workloads and custom resources: not served by this fake
            return SimpleNamespace()

        return SimpleNamespace(CoreV1Api=CoreV1Api, AppsV1Api=unused, BatchV1Api=unused, CustomObjectsApi=unused,
                               exceptions=real.exceptions, ApiClient=real.ApiClient,
                               Configuration=SimpleNamespace(get_default_copy=lambda: SimpleNamespace(host="https://127.0.0.1:6443")))

    def _check(self) -> None:
        if self.unreachable:
            import urllib3

            raise urllib3.exceptions.MaxRetryError(None, "/api/v1", urllib3.exceptions.NewConnectionError(
                None, "Failed to establish a new connection: [Errno 111] Connection refused"))
