"""A cluster in memory, behind the same interface as the Kubernetes API: test code written on top
of ``submit()`` without a cluster (as httpx's ``MockTransport`` stands in for a server).

    from llmstep.cluster.fake import FakeCluster

    cluster = FakeCluster()
    run = llmstep.compile(chain).submit({"question": "hi"}, namespace="ml", transport=cluster)
    cluster.set_status("Workflow", run.name, {"phase": "Failed", "message": "child failed"}, namespace="ml")
    run.wait()                     # raises WorkflowFailed, as on a cluster

``FakeCluster`` stores what is created (names from ``generateName``, a ``uid``, a
``resourceVersion``), answers reads, lists (label and field selectors), JSON merge patches and
deletes as the API server does, and records every request (``requests``). Nothing moves on its
own: a test plays the controller with ``set_status`` and ``set_log``, and ``refuse`` makes the
next matching request fail as the API server would refuse it. Its refusals are worded by the
same translation as the real transport's, so what a caller catches is what it would catch there.
"""

from __future__ import annotations

import copy
import itertools
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from llmstep.cluster.transports import Object, hints_for, refusal


@dataclass(frozen=True)
class Request:
    """One call the fake answered: ``verb`` (create, apply, get, list, patch, delete, log,
    follow), the ``kind``, ``namespace`` and ``name``, and the ``body`` sent (a copy)."""

    verb: str
    kind: str
    namespace: str
    name: str = ""
    body: Object | None = None


class FakeCluster:
    """An in-memory ``Transport``: objects by (kind, namespace, name), pod logs, the requests."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], Object] = {}
        self.logs: dict[tuple[str, str, str], str] = {}
        self.requests: list[Request] = []
        self._refusals: list[tuple[str, str, int, str]] = []
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ what a test does

    def set_status(self, kind: str, name: str, status: Object, *, namespace: str = "default") -> Object:
        """Replace the object's ``status``, as its controller writes it; returns the object."""
        with self._lock:
            obj = self._stored(namespace, kind, name, "reading")
            obj["status"] = copy.deepcopy(status)
            self._bump(obj)
            return copy.deepcopy(obj)

    def set_log(self, pod: str, text: str, *, container: str = "main", namespace: str = "default") -> None:
        """What ``pod``'s ``container`` has written (the pod itself need not be stored)."""
        self.logs[(namespace, pod, container)] = text

    def refuse(self, verb: str, kind: str, status: int, message: str) -> None:
        """The next ``verb`` request for ``kind`` fails as the API server's ``status`` with ``message``."""
        self._refusals.append((verb, kind, status, message))

    def find(self, kind: str, *, namespace: str | None = None) -> list[Object]:
        """The stored objects of ``kind`` (copies), oldest first; no request is recorded."""
        return [copy.deepcopy(o) for (k, ns, _), o in self.objects.items() if k == kind and namespace in (None, ns)]

    # ------------------------------------------------------------------ the Transport interface

    def create(self, namespace: str, body: Object) -> Object:
        kind = body["kind"]
        self._record("create", kind, namespace, body.get("metadata", {}).get("name", ""), body)
        self._check("create", kind, f"creating the {kind} in namespace {namespace}")
        with self._lock:
            obj = copy.deepcopy(body)
            meta = obj.setdefault("metadata", {})
            meta["name"] = (
                meta.get("name") or f"{meta.pop('generateName', kind.lower() + '-')}{next(self._counter):05d}"
            )
            meta.pop("generateName", None)
            if (kind, namespace, meta["name"]) in self.objects:
                raise refusal(
                    409,
                    f'{kind.lower()}s "{meta["name"]}" already exists',
                    f"creating the {kind} in namespace {namespace}",
                    hints_for(kind),
                )
            meta.update(namespace=namespace, uid=str(uuid.uuid4()), resourceVersion="1")
            if kind == "Pod":
                obj.setdefault("status", {"phase": "Pending"})
            self.objects[(kind, namespace, meta["name"])] = obj
            return copy.deepcopy(obj)

    def apply(self, namespace: str, body: Object) -> Object:
        kind, name = body["kind"], body["metadata"]["name"]
        self._record("apply", kind, namespace, name, body)
        self._check("apply", kind, f"creating {kind.lower()} {namespace}/{name}")
        with self._lock:
            obj = copy.deepcopy(body)
            current = self.objects.get((kind, namespace, name))
            obj["metadata"].update(
                namespace=namespace,
                uid=(current or {}).get("metadata", {}).get("uid") or str(uuid.uuid4()),
                resourceVersion=(current or {}).get("metadata", {}).get("resourceVersion", "0"),
            )
            self._bump(obj)
            self.objects[(kind, namespace, name)] = obj
            return copy.deepcopy(obj)

    def get(self, namespace: str, kind: str, name: str) -> Object:
        self._record("get", kind, namespace, name)
        self._check("get", kind, f"reading {kind.lower()} {namespace}/{name}")
        with self._lock:
            return copy.deepcopy(self._stored(namespace, kind, name, "reading"))

    def list(self, namespace: str, kind: str, *, labels: str = "", fields: str = "") -> list[Object]:
        self._record("list", kind, namespace)
        self._check("list", kind, f"listing the {kind.lower()}s in namespace {namespace}")
        with self._lock:
            return [
                copy.deepcopy(o)
                for (k, ns, _), o in self.objects.items()
                if k == kind and ns == namespace and _matches(o, labels, fields)
            ]

    def patch(self, namespace: str, kind: str, name: str, patch: Object) -> Object:
        self._record("patch", kind, namespace, name, patch)
        self._check("patch", kind, f"updating {kind.lower()} {namespace}/{name}")
        with self._lock:
            obj = self._stored(namespace, kind, name, "updating")
            _merge(obj, copy.deepcopy(patch))
            self._bump(obj)
            return copy.deepcopy(obj)

    def delete(self, namespace: str, kind: str, name: str) -> None:
        self._record("delete", kind, namespace, name)
        self._check("delete", kind, f"deleting {kind.lower()} {namespace}/{name}")
        with self._lock:
            self._stored(namespace, kind, name, "deleting")
            del self.objects[(kind, namespace, name)]

    def log(self, namespace: str, pod: str, container: str) -> str:
        self._record("log", "Pod", namespace, pod)
        self._check("log", "Pod", f"reading the log of pod {namespace}/{pod}")
        return self._log(namespace, pod, container)

    def follow(self, namespace: str, pod: str, container: str) -> Iterator[str]:
        self._record("follow", "Pod", namespace, pod)
        self._check("follow", "Pod", f"following the log of pod {namespace}/{pod}")
        yield from self._log(namespace, pod, container).splitlines()

    # ------------------------------------------------------------------ helpers

    def _log(self, namespace: str, pod: str, container: str) -> str:
        if (namespace, pod, container) in self.logs:
            return self.logs[(namespace, pod, container)]
        with self._lock:
            self._stored(namespace, "Pod", pod, "reading the log of")
        return ""

    def _record(self, verb: str, kind: str, namespace: str, name: str = "", body: Object | None = None) -> None:
        self.requests.append(Request(verb, kind, namespace, name, copy.deepcopy(body)))

    def _check(self, verb: str, kind: str, what: str) -> None:
        for i, (v, k, status, message) in enumerate(self._refusals):
            if (v, k) == (verb, kind):
                del self._refusals[i]
                raise refusal(status, message, what, hints_for(kind))

    def _stored(self, namespace: str, kind: str, name: str, doing: str) -> Object:
        obj = self.objects.get((kind, namespace, name))
        if obj is None:
            raise refusal(
                404,
                f'{kind.lower()}s "{name}" not found',
                f"{doing} {kind.lower()} {namespace}/{name}",
                hints_for(kind),
            )
        return obj

    @staticmethod
    def _bump(obj: Object) -> None:
        meta = obj.setdefault("metadata", {})
        meta["resourceVersion"] = str(int(meta.get("resourceVersion") or 0) + 1)


def _matches(obj: Object, labels: str, fields: str) -> bool:
    """Whether ``obj`` matches equality selectors, as the API server reads them."""
    for selector, lookup in (
        (labels, lambda key: (obj.get("metadata") or {}).get("labels", {}).get(key)),
        (fields, lambda key: _field(obj, key)),
    ):
        for term in filter(None, selector.split(",")):
            key, _, value = term.partition("=")
            if lookup(key.strip()) != value.strip():
                return False
    return True


def _field(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = obj.get(part) if isinstance(obj, dict) else None
    return obj


def _merge(target: Object, patch: Object) -> None:
    """RFC 7386: a JSON merge patch (``None`` removes a key, dicts merge, anything else replaces)."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value
