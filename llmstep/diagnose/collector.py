"""Read a failed object and what it owns from the Kubernetes API, as evidence: its status and
conditions, its pods' container states, trimmed pod specs, events (newest first, deduplicated with
counts) and log tails (and the previous instance's).

Targets are named like kubectl's: ``workflow/NAME`` (Argo), ``pipelinerun/NAME``, ``taskrun/NAME``
(Tekton), ``pod/``, ``deployment/``, ``replicaset/``, ``statefulset/``, ``daemonset/``, ``job/``,
``cronjob/``, with kubectl's aliases and plurals. The cluster is reached through the kubernetes
client's API objects, passed in (kubeconfig or in-cluster config is the CLI's business).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from llmstep import contract
from llmstep.diagnose.evidence import Evidence
from llmstep.diagnose.spec import pod_template, trimmed_pod_spec
from llmstep.errors import UsageError

KINDS = {
    "pod": "pods",
    "deployment": "deployments",
    "replicaset": "replicasets",
    "statefulset": "statefulsets",
    "daemonset": "daemonsets",
    "job": "jobs",
    "cronjob": "cronjobs",
    "workflow": "workflows",
    "pipelinerun": "pipelineruns",
    "taskrun": "taskruns",
}
ALIASES = {
    "po": "pod",
    "deploy": "deployment",
    "rs": "replicaset",
    "sts": "statefulset",
    "ds": "daemonset",
    "cj": "cronjob",
    "wf": "workflow",
    "pr": "pipelinerun",
    "tr": "taskrun",
}


def parse_target(target: str) -> tuple[str, str]:
    """``KIND/NAME`` as (kind, name), kubectl's aliases and plurals accepted; a usage error (exit 2),
    not a failed diagnosis, when it is not one."""
    kind, sep, name = target.partition("/")
    kind = ALIASES.get(kind.lower(), kind.lower().rstrip("s") if kind.lower().rstrip("s") in KINDS else kind.lower())
    if not sep or not kind or not name:
        raise UsageError(
            f"target {target!r} is not KIND/NAME; KIND is one of {', '.join(sorted(KINDS))} (or use -f FILE)"
        )
    if kind not in KINDS:
        raise UsageError(
            f"kind {kind!r} ({target}) is not one that llmstep diagnose reads from a cluster: "
            f"{', '.join(sorted(KINDS))}; for any other object: kubectl get {kind} {name} -o yaml "
            "| llmstep diagnose -f -"
        )
    return kind, name


class Collector:
    """Reads a target and what it owns from the Kubernetes API. ``client`` is the kubernetes
    package's ``client`` module (or anything shaped like it, for a fake). Its callers translate the
    API's errors (``llmstep diagnose`` through ``llmstep.cluster.transports.kube_errors``)."""

    def __init__(self, client: Any, namespace: str, tail: int = 50) -> None:
        self.core = client.CoreV1Api()
        self.apps = client.AppsV1Api()
        self.batch = client.BatchV1Api()
        self.custom = client.CustomObjectsApi()
        self.exceptions = client.exceptions
        self.serialize = client.ApiClient().sanitize_for_serialization
        self.ns = namespace
        self.tail = tail

    def collect(self, target: str) -> Evidence:
        kind, name = parse_target(target)
        evidence = Evidence(target=f"{kind}/{name}", names=[("Namespace", self.ns)])
        getattr(self, f"_{kind}")(name, evidence)
        return evidence

    def _spec(self, title: str, pod_spec: Any, evidence: Evidence) -> None:
        """The trimmed pod spec: which image, command, Secret and key each container uses."""
        spec = self.serialize(pod_spec) if pod_spec is not None else None
        if isinstance(spec, dict):
            evidence.add_object(title, trimmed_pod_spec(spec))

    # ------------------------------------------------------------------ kinds

    def _pod(self, name: str, evidence: Evidence, pod: Any = None) -> None:
        pod = pod or self.core.read_namespaced_pod(name, self.ns)
        evidence.names.append(("Pod", pod.metadata.name))
        status = pod.status
        lines = [
            f"phase: {status.phase}"
            + (f", reason: {status.reason}" if status.reason else "")
            + (f", message: {status.message}" if status.message else "")
        ]
        where = [
            f"{label} {value}"
            for label, value in (
                ("node", pod.spec.node_name if pod.spec else None),
                ("pod IP", status.pod_ip),
                ("host IP", status.host_ip),
            )
            if value
        ]
        if where:
            lines.append(", ".join(where))
        for c in status.conditions or []:
            if c.status != "True":
                lines.append(f"condition {c.type}={c.status}" + (f" ({c.reason}: {c.message})" if c.reason else ""))
        failing: list[tuple[str, bool]] = []
        for label, statuses in (
            ("init container", status.init_container_statuses),
            ("container", status.container_statuses),
        ):
            for cs in statuses or []:
                lines.append(
                    f"{label} {cs.name}: {self._state(cs.state)}; ready={cs.ready}; restarts={cs.restart_count}"
                )
                if cs.last_state and (cs.last_state.terminated or cs.last_state.waiting):
                    lines.append(f"  last state: {self._state(cs.last_state)}")
                terminated = cs.state.terminated
                bad = (
                    (terminated and terminated.exit_code != 0)
                    or (cs.state.waiting and cs.restart_count)
                    or cs.restart_count
                )
                if bad:
                    failing.append((cs.name, bool(cs.restart_count)))
        evidence.add(f"pod {pod.metadata.name}", lines)
        self._spec(f"spec of pod {pod.metadata.name} (trimmed)", pod.spec, evidence)
        self._events("Pod", pod.metadata.name, evidence)
        for container, previous in failing:
            self._logs(pod.metadata.name, container, False, evidence)
            if previous:
                self._logs(pod.metadata.name, container, True, evidence)

    @staticmethod
    def _state(state: Any) -> str:
        if state is None:
            return "unknown"
        if state.waiting:
            return f"waiting ({state.waiting.reason}" + (
                f": {state.waiting.message})" if state.waiting.message else ")"
            )
        if state.terminated:
            t = state.terminated
            return (
                f"terminated ({t.reason}, exit code {t.exit_code}"
                + (f", signal {t.signal}" if t.signal else "")
                + (f": {t.message})" if t.message else ")")
            )
        if state.running:
            return f"running since {state.running.started_at}"
        return "unknown"

    def _events(self, kind: str, name: str, evidence: Evidence) -> None:
        events = self.core.list_namespaced_event(
            self.ns, field_selector=f"involvedObject.name={name},involvedObject.kind={kind}"
        ).items
        events.sort(key=lambda e: str(e.last_timestamp or e.event_time or e.first_timestamp or ""), reverse=True)
        counts: Counter[tuple[str, str, str]] = Counter()
        order: list[tuple[str, str, str]] = []
        for e in events:
            key = (e.type or "", e.reason or "", e.message or "")
            if key not in counts:
                order.append(key)
            counts[key] += e.count or 1
        lines = [
            f"{t} {reason}: {message}"
            + (f" (x{counts[(t, reason, message)]})" if counts[(t, reason, message)] > 1 else "")
            for t, reason, message in order
        ]
        evidence.add(f"events of {kind.lower()} {name} (newest first)", lines)

    def _logs(self, pod: str, container: str, previous: bool, evidence: Evidence) -> None:
        try:
            text = self.core.read_namespaced_pod_log(
                pod, self.ns, container=container, previous=previous, tail_lines=self.tail
            )
        except self.exceptions.ApiException:
            return
        title = f"log of {pod}/{container}" + (" (previous instance)" if previous else "") + f", last {self.tail} lines"
        evidence.add(title, (text or "").splitlines())

    def _owned_pods(self, uid: str) -> list[Any]:
        return [
            p
            for p in self.core.list_namespaced_pod(self.ns).items
            if any(o.uid == uid for o in p.metadata.owner_references or [])
        ]

    def _workload(self, obj: Any, kind: str, evidence: Evidence, pods: bool = True) -> None:
        """A workload's status, conditions and events, then (``pods``) the pods it owns."""
        evidence.names.append((kind, obj.metadata.name))
        lines = [f"{kind} {obj.metadata.name}: {self._short_status(obj.status)}"]
        for c in getattr(obj.status, "conditions", None) or []:
            lines.append(f"condition {c.type}={c.status}" + (f" ({c.reason}: {c.message})" if c.reason else ""))
        evidence.add(f"{kind.lower()} {obj.metadata.name}", lines)
        spec = self.serialize(obj.spec) if getattr(obj, "spec", None) is not None else None
        template = pod_template(spec) if isinstance(spec, dict) else None
        if template is not None:
            evidence.add_object(
                f"pod template of {kind.lower()} {obj.metadata.name} (trimmed)", trimmed_pod_spec(template)
            )
        self._events(kind, obj.metadata.name, evidence)
        if pods:
            for pod in self._owned_pods(obj.metadata.uid):
                self._pod(pod.metadata.name, evidence, pod)

    @staticmethod
    def _short_status(status: Any) -> str:
        fields = (
            "replicas",
            "ready_replicas",
            "available_replicas",
            "unavailable_replicas",
            "active",
            "succeeded",
            "failed",
        )
        return (
            ", ".join(f"{f}={getattr(status, f)}" for f in fields if getattr(status, f, None) is not None)
            or "no status"
        )

    def _deployment(self, name: str, evidence: Evidence) -> None:
        dep = self.apps.read_namespaced_deployment(name, self.ns)
        self._workload(dep, "Deployment", evidence, pods=False)
        for rs in self.apps.list_namespaced_replica_set(self.ns).items:
            if (
                any(o.uid == dep.metadata.uid for o in rs.metadata.owner_references or [])
                and (rs.status.replicas or 0) > 0
            ):
                self._replicaset(rs.metadata.name, evidence, rs)

    def _replicaset(self, name: str, evidence: Evidence, rs: Any = None) -> None:
        self._workload(rs or self.apps.read_namespaced_replica_set(name, self.ns), "ReplicaSet", evidence)

    def _statefulset(self, name: str, evidence: Evidence) -> None:
        self._workload(self.apps.read_namespaced_stateful_set(name, self.ns), "StatefulSet", evidence)

    def _daemonset(self, name: str, evidence: Evidence) -> None:
        self._workload(self.apps.read_namespaced_daemon_set(name, self.ns), "DaemonSet", evidence)

    def _job(self, name: str, evidence: Evidence, job: Any = None) -> None:
        self._workload(job or self.batch.read_namespaced_job(name, self.ns), "Job", evidence)

    def _cronjob(self, name: str, evidence: Evidence) -> None:
        cron = self.batch.read_namespaced_cron_job(name, self.ns)
        self._workload(cron, "CronJob", evidence, pods=False)
        for job in self.batch.list_namespaced_job(self.ns).items:
            if any(o.uid == cron.metadata.uid for o in job.metadata.owner_references or []):
                self._job(job.metadata.name, evidence, job)

    def _workflow(self, name: str, evidence: Evidence) -> None:
        wf = self.custom.get_namespaced_custom_object("argoproj.io", "v1alpha1", self.ns, "workflows", name)
        evidence.names.append(("Workflow", name))
        status = wf.get("status") or {}
        lines = [
            f"phase: {status.get('phase')}" + (f", message: {status.get('message')}" if status.get("message") else "")
        ]
        failed = [
            n
            for n in (status.get("nodes") or {}).values()
            if n.get("type") == "Pod" and n.get("phase") in contract.FAILED_PHASES
        ]
        for node in failed:
            code = (node.get("outputs") or {}).get("exitCode")
            lines.append(
                f"failed node {node.get('displayName')} (template {node.get('templateName')}): "
                f"{node.get('phase')}, exit code {code}, message: {node.get('message')}"
            )
        evidence.add(f"workflow {name}", lines)
        self._events("Workflow", name, evidence)
        pods = self.core.list_namespaced_pod(self.ns, label_selector=f"workflows.argoproj.io/workflow={name}").items
        by_node = {(p.metadata.annotations or {}).get("workflows.argoproj.io/node-id"): p for p in pods}
        for node in failed:
            pod = by_node.get(node.get("id"))
            if pod is not None:
                self._pod(pod.metadata.name, evidence, pod)

    def _pipelinerun(self, name: str, evidence: Evidence) -> None:
        pr = self.custom.get_namespaced_custom_object("tekton.dev", "v1", self.ns, "pipelineruns", name)
        evidence.names.append(("PipelineRun", name))
        evidence.add(f"pipelinerun {name}", self._conditions(pr))
        self._events("PipelineRun", name, evidence)
        runs = self.custom.list_namespaced_custom_object(
            "tekton.dev", "v1", self.ns, "taskruns", label_selector=f"tekton.dev/pipelineRun={name}"
        )["items"]
        for tr in runs:
            if any(c.get("status") == "False" for c in (tr.get("status") or {}).get("conditions") or []):
                self._taskrun(tr["metadata"]["name"], evidence, tr)

    def _taskrun(self, name: str, evidence: Evidence, tr: Any = None) -> None:
        tr = tr or self.custom.get_namespaced_custom_object("tekton.dev", "v1", self.ns, "taskruns", name)
        evidence.names.append(("TaskRun", name))
        status = tr.get("status") or {}
        lines = self._conditions(tr)
        for step in status.get("steps") or []:
            term = step.get("terminated") or {}
            if term:
                lines.append(f"step {step.get('name')}: {term.get('reason')}, exit code {term.get('exitCode')}")
        evidence.add(f"taskrun {name}", lines)
        self._events("TaskRun", name, evidence)
        if status.get("podName"):
            try:
                self._pod(status["podName"], evidence)
            except self.exceptions.ApiException:
                evidence.add(f"pod {status['podName']}", ["the pod is gone"])

    @staticmethod
    def _conditions(obj: dict[str, Any]) -> list[str]:
        return [
            f"condition {c.get('type')}={c.get('status')} ({c.get('reason')}: {c.get('message')})"
            for c in (obj.get("status") or {}).get("conditions") or []
        ]
