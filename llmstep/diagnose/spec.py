"""The part of an object's spec a diagnosis needs, trimmed: per container its image,
command and args, env (names, ``valueFrom`` references, values redacted later), resources,
probes and mounts; the pod's volumes and the settings that decide where and as whom it runs.

A ``CreateContainerConfigError`` names no Secret; the spec does (``secretKeyRef``), so the
evidence must carry it, not only the status.
"""

from __future__ import annotations

from typing import Any

CONTAINER_FIELDS = (
    "name",
    "image",
    "imagePullPolicy",
    "command",
    "args",
    "workingDir",
    "env",
    "envFrom",
    "resources",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "volumeMounts",
    "ports",
    "securityContext",
)
POD_FIELDS = (
    "serviceAccountName",
    "nodeName",
    "nodeSelector",
    "restartPolicy",
    "imagePullSecrets",
    "securityContext",
    "tolerations",
    "priorityClassName",
)


def pod_template(spec: dict[str, Any]) -> dict[str, Any] | None:
    """The pod spec inside a workload's spec (Deployment, Job, CronJob, ...), if it has one."""
    for path in (("template", "spec"), ("jobTemplate", "spec", "template", "spec")):
        node: Any = spec
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            return node
    return None


def trimmed_pod_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """A pod spec with only what explains a failure."""
    out: dict[str, Any] = {}
    for key in ("initContainers", "containers"):
        containers = [
            {k: c[k] for k in CONTAINER_FIELDS if c.get(k) not in (None, [], {})}
            for c in spec.get(key) or []
            if isinstance(c, dict)
        ]
        if containers:
            out[key] = containers
    out.update({k: spec[k] for k in POD_FIELDS if spec.get(k) not in (None, [], {})})
    if spec.get("volumes"):
        out["volumes"] = spec["volumes"]
    return out
