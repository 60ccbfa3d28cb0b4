"""Tekton Pipelines in the test cluster: the release's CRDs, ConfigMaps and webhook
configurations, the per-pod images, the webhook and the controller (used by cluster.py's start).

Tekton Pipelines v1.15.0 is built from its module by ``build.sh tekton``, which also copies the
release's ``config/`` beside the programs; everything installed here is read from that folder.
The webhook and the controller run as host processes with the admin kubeconfig and the
environment and arguments of the release's own Deployments (``config/webhook.yaml``,
``config/controller.yaml``), read from those files.

What differs from the release, and why (each change is made here, in code, on the release's
files as read):

- the ``tekton-pipelines-webhook`` Service is ``type: ExternalName`` with ``externalName:
  127.0.0.1``: the webhook is a host process, and a loopback Endpoint is forbidden. The API
  server's default service resolver dials an ExternalName Service's name and verifies TLS
  against ``tekton-pipelines-webhook.tekton-pipelines.svc``, the name in the certificate the
  webhook makes for itself;
- so the webhook configurations of ``500-webhooks.yaml`` and the conversion stanzas of the six
  CRDs that have one name the webhook's port (``clientConfig.service.port``), a free one;
- ``config-defaults``: ``default-pod-template`` gives every TaskRun pod ``hostNetwork: true``
  (pods reach only the host's loopback) and ``OPENAI_BASE_URL`` pointing at the cluster's model
  gateway on 127.0.0.1, as Argo's ``workflowDefaults`` do, so the documents under test stay as
  users get them;
- ``feature-flags``: ``running-in-environment-with-injected-sidecars: "false"`` (no service
  mesh injects sidecars here; with the default, each first step waits on a downward-API refresh);
- ``config-observability``: ``metrics-protocol: none`` (no Prometheus listener on all addresses);
- ``pipelines-info``: ``version: v1.15.0`` (the release pipeline rewrites ``devel``; tkn reads it);
- the controller's image flags name the images built here: ``/ko-app/NAME`` as ko lays them out,
  one static binary each (the nop image holds nothing but ``/ko-app/nop``), and the shell image is
  the debootstrap base image (``sh``, ``cat``, ``chmod`` for ``script:`` steps).

Workspaces: the ``llmstep-local`` StorageClass is the cluster's default, served by a pool of
static hostPath PersistentVolumes (world-writable folders under the cluster's state), so a
``volumeClaimTemplate`` binds as on a cluster with a provisioner.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from argo import BASE_IMAGE

TEKTON_VERSION = "v1.15.0"
NAMESPACE = "tekton-pipelines"
IMAGES = {
    name: f"localhost/tekton-{name}:{TEKTON_VERSION}"
    for name in ("entrypoint", "nop", "workingdirinit", "sidecarlogresults")
}
SHELL_IMAGE = BASE_IMAGE  # imported into the node by argo.images
STORAGE_CLASS = "llmstep-local"
VOLUMES = 160  # one per PipelineRun with a volumeClaimTemplate in a test session, with room to spare
CONVERTED_CRDS = (
    "300-pipeline.yaml",
    "300-pipelinerun.yaml",
    "300-resolutionrequest.yaml",
    "300-stepaction.yaml",
    "300-task.yaml",
    "300-taskrun.yaml",
)


def config_dir(cluster: Any) -> Path:
    return cluster.bins["tekton"].parent / "config"


def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _apply(cluster: Any, docs: list[dict], verb: str = "apply") -> None:
    args = ("create", "-f", "-") if verb == "create" else ("apply", "-f", "-")
    cluster.kubectl(*args, input_text="\n---\n".join(json.dumps(d) for d in docs))


def install(cluster: Any) -> None:
    """Tekton's objects, images, webhook and controller, each waited for."""
    cfg = config_dir(cluster)
    port = cluster.ports["tekton-webhook"]
    _apply(cluster, _docs(cfg / "100-namespace" / "100-namespace.yaml"))
    crds = []
    for path in sorted((cfg / "300-crds").glob("*.yaml")):
        for crd in _docs(path):
            if path.name in CONVERTED_CRDS:
                crd["spec"]["conversion"]["webhook"]["clientConfig"]["service"]["port"] = port
            crds.append(crd)
    _apply(cluster, crds, "create")  # `apply` would exceed the annotation limit
    cluster.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", *(f"crd/{c['metadata']['name']}" for c in crds)
    )
    _apply(cluster, [_configure(d, cluster) for p in sorted(cfg.glob("config-*.yaml")) for d in _docs(p)])
    _apply(cluster, [*_docs(cfg / "clusterrole-aggregate-edit.yaml"), *_docs(cfg / "clusterrole-aggregate-view.yaml")])
    hooks = _docs(cfg / "500-webhooks.yaml")
    for doc in hooks:
        for hook in doc.get("webhooks", []):
            hook["clientConfig"]["service"]["port"] = port
    _apply(cluster, [*hooks, _webhook_service()])
    _storage(cluster)
    _images(cluster)
    _start_webhook(cluster)
    _start_controller(cluster)


def _configure(doc: dict, cluster: Any) -> dict:
    name, data = doc["metadata"]["name"], doc.setdefault("data", {})
    if name == "config-defaults":
        data["default-pod-template"] = yaml.safe_dump(
            {"hostNetwork": True, "env": [{"name": "OPENAI_BASE_URL", "value": cluster.gateway_url}]}
        )
    elif name == "feature-flags":
        data["running-in-environment-with-injected-sidecars"] = "false"
    elif name == "config-observability":
        data["metrics-protocol"] = "none"
    elif name == "pipelines-info":
        data["version"] = TEKTON_VERSION
    return doc


def _webhook_service() -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "tekton-pipelines-webhook",
            "namespace": NAMESPACE,
            "labels": {"app.kubernetes.io/part-of": "tekton-pipelines", "app.kubernetes.io/component": "webhook"},
        },
        "spec": {"type": "ExternalName", "externalName": "127.0.0.1"},
    }


def _storage(cluster: Any) -> None:
    root = cluster.state / "volumes"
    docs: list[dict] = [
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": STORAGE_CLASS, "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "kubernetes.io/no-provisioner",
            "volumeBindingMode": "Immediate",
            "reclaimPolicy": "Retain",
        }
    ]
    for i in range(VOLUMES):
        path = root / f"pv-{i:03d}"
        path.mkdir(parents=True)
        path.chmod(0o1777)  # steps run as the image's non-root user; hostPath knows no fsGroup
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {"name": f"llmstep-local-{i:03d}"},
                "spec": {
                    "capacity": {"storage": "10Gi"},
                    "accessModes": ["ReadWriteOnce", "ReadWriteMany"],
                    "persistentVolumeReclaimPolicy": "Retain",
                    "storageClassName": STORAGE_CLASS,
                    "hostPath": {"path": str(path), "type": "Directory"},
                },
            }
        )
    _apply(cluster, docs)


def _images(cluster: Any) -> None:
    from image_archive import single_binary_image

    for name, tag in IMAGES.items():
        archive = single_binary_image(cluster.bins["tekton"] / name, tag, f"/ko-app/{name}")
        cluster.ctr("images", "import", "-", input_bytes=archive)


def _container(deployment: Path) -> dict:
    """The one container of the release's Deployment in ``deployment``."""
    (container,) = next(d for d in _docs(deployment) if d["kind"] == "Deployment")["spec"]["template"]["spec"][
        "containers"
    ]
    return container


def _process_env(cluster: Any, deployment: Path, **ports: int) -> dict[str, str]:
    """The release Deployment's container environment, for a host process: literal values,
    SYSTEM_NAMESPACE from its fieldRef, the ports given, and no in-pod certificate paths."""
    import os

    container = _container(deployment)
    env = {"PATH": os.environ["PATH"], "HOME": str(cluster.state), "KUBECONFIG": str(cluster.kubeconfig)}
    for entry in container.get("env", []):
        if entry["name"].startswith("SSL_CERT_"):
            continue
        if "value" in entry:
            env[entry["name"]] = entry["value"]
        elif entry.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.namespace":
            env[entry["name"]] = NAMESPACE
    env.update({k: str(v) for k, v in ports.items()})
    return env


def _start_webhook(cluster: Any) -> None:
    from cluster import free_port

    env = _process_env(
        cluster,
        config_dir(cluster) / "webhook.yaml",
        WEBHOOK_PORT=cluster.ports["tekton-webhook"],
        PROBES_PORT=free_port(),
        PROFILING_PORT=free_port(),
    )
    cluster._start("tekton-webhook", [str(cluster.bins["tekton"] / "webhook"), "-disable-ha"], env=env)

    def ready() -> bool:
        secret = cluster.api(f"/api/v1/namespaces/{NAMESPACE}/secrets/webhook-certs")
        if "ca-cert.pem" not in (secret.get("data") or {}):
            return False
        for path in (
            "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/webhook.pipeline.tekton.dev",
            "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/validation.webhook.pipeline.tekton.dev",
            "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/config.webhook.pipeline.tekton.dev",
        ):
            hook = cluster.api(path)["webhooks"][0]
            if not hook["clientConfig"].get("caBundle") or not hook.get("rules"):
                return False
        for crd in ("tasks", "pipelines", "taskruns", "pipelineruns"):
            conversion = cluster.api(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd}.tekton.dev")[
                "spec"
            ]["conversion"]
            if not conversion["webhook"]["clientConfig"].get("caBundle"):
                return False
        # The webhook defaults a v1 Task (a param's type): the API server reaches it, and it answers.
        probe = {
            "apiVersion": "tekton.dev/v1",
            "kind": "Task",
            "metadata": {"name": "webhook-probe", "namespace": "default"},
            "spec": {"params": [{"name": "p"}], "steps": [{"name": "s", "image": "x", "command": ["true"]}]},
        }
        out = cluster.kubectl(
            "create", "--dry-run=server", "-o", "json", "-f", "-", input_text=json.dumps(probe), check=False
        )
        return out.returncode == 0 and json.loads(out.stdout)["spec"]["params"][0].get("type") == "string"

    cluster._wait("tekton-webhook", ready, 120)


def _start_controller(cluster: Any) -> None:
    from cluster import free_port

    cfg = config_dir(cluster)
    env = _process_env(
        cluster, cfg / "controller.yaml", PROBES_PORT=cluster.ports["tekton-probes"], PROFILING_PORT=free_port()
    )
    args = list(_container(cfg / "controller.yaml")["args"])
    images = {
        **{f"-{name}-image": tag for name, tag in IMAGES.items()},
        "-shell-image": SHELL_IMAGE,
        "-shell-image-win": "windows.invalid/none:unused",
    }
    for i, arg in enumerate(args[:-1]):
        if arg in images:
            args[i + 1] = images[arg]
    cluster._start("tekton-controller", [str(cluster.bins["tekton"] / "controller"), "-disable-ha", *args], env=env)

    def ready() -> bool:
        url = f"http://127.0.0.1:{cluster.ports['tekton-probes']}/readiness"
        with urllib.request.urlopen(url, timeout=2) as resp:  # loopback only
            return resp.status == 200

    cluster._wait("tekton-controller", ready, 60)


def prepare_namespace(cluster: Any, namespace: str) -> None:
    """What a namespace needs for the README's Tekton commands: tekton/rbac.yaml (the ``llmstep``
    ServiceAccount the steps run as, the submitter and diagnosis Roles) and the Task."""
    root = Path(__file__).resolve().parent.parent.parent
    cluster.kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        str(root / "tekton" / "rbac.yaml"),
        "-f",
        str(root / "tekton" / "llmstep-run.yaml"),
    )
