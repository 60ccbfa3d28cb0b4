"""Argo Workflows in the test cluster: CRDs, the S3 artifact repository, images, the controller
and the Argo Server (used by cluster.py's start).

The controller and the Argo Server run as host processes with a kubeconfig, as Argo's own e2e
set-up runs them. Their configuration is the ConfigMap ``workflow-controller-configmap`` in the
``argo`` namespace:

- ``workflowDefaults`` gives every Workflow ``hostNetwork: true`` (pods reach nothing but the
  host's loopback), so the documents under test stay exactly as users get them;
- ``executor.env`` points Argo's init and wait containers at the API server on 127.0.0.1;
- ``artifactRepository`` is versitygw (S3 over its posix backend) on 127.0.0.1;
- the ``main`` containers' OpenAI clients default to the cluster's model gateway on 127.0.0.1
  (``OPENAI_BASE_URL`` through the default ``podSpecPatch``).

The executor image is the debootstrap base with ``argoexec`` on its PATH, named with the
controller's ``--executor-image`` (a module build reports its own version, so Argo's default image
name would not exist). The step image is ``llmstep:<version>``, built from this checkout, under the
very name ``llmstep.compile`` writes into documents.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CRDS = ROOT / "tests" / "data" / "crds"
NAMESPACE = "argo"
ARGO_VERSION = "v4.0.5"
EXECUTOR_IMAGE = f"localhost/llmstep-argoexec:{ARGO_VERSION}"
BASE_IMAGE = "localhost/llmstep-base:bookworm"
BUCKET = "llmstep-artifacts"
S3_ACCESS, S3_SECRET = "llmstep-test-access", "llmstep-test-secret-key"  # the loopback store's own keys
S3_SECRET_NAME = "llmstep-artifacts-s3"
# The README's commands for the Workflow's service account: Argo's recommended minimum for the
# emissary executor (manifests/quick-start/base/executor).
EXECUTOR_RBAC = (
    "kubectl create role executor --verb=create,patch --resource=workflowtaskresults.argoproj.io -n {ns}",
    "kubectl create rolebinding executor-default --role=executor --serviceaccount={ns}:default -n {ns}",
)


def version() -> str:
    text = (ROOT / "pyproject.toml").read_text()
    return re.search(r'^version = "([^"]+)"', text, re.M).group(1)


STEP_IMAGE = f"llmstep:{version()}"


def install(cluster: Any) -> None:
    """Everything Argo needs, then the controller and the Argo Server, each waited for."""
    _start_s3(cluster)
    for crd in sorted(CRDS.glob(f"argo-workflows-{ARGO_VERSION}-*.crd.yaml")):
        cluster.kubectl("create", "-f", str(crd))  # `apply` would exceed the annotation limit
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
    cluster.kubectl("create", "namespace", NAMESPACE)
    prepare_namespace(cluster, NAMESPACE)
    cluster.kubectl("apply", "-n", NAMESPACE, "-f", "-", input_text=_controller_configmap(cluster))
    images(cluster)
    _start_controller(cluster)
    _start_server(cluster)


def prepare_namespace(cluster: Any, namespace: str) -> None:
    """What a namespace needs to run Workflows: the executor's Role and the artifact store's
    credentials (Argo mounts the repository's Secret from the Workflow's own namespace)."""
    if cluster.kubectl("get", "role", "executor", "-n", namespace, check=False).returncode != 0:
        for command in EXECUTOR_RBAC:
            cluster.kubectl(*command.format(ns=namespace).split()[1:])
    secret = cluster.kubectl(
        "create",
        "secret",
        "generic",
        S3_SECRET_NAME,
        "-n",
        namespace,
        "--dry-run=client",
        "-o",
        "yaml",
        f"--from-literal=accesskey={S3_ACCESS}",
        f"--from-literal=secretkey={S3_SECRET}",
    ).stdout
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input_text=secret)


def _start_s3(cluster: Any) -> None:
    root = cluster.state / "s3"
    root.mkdir()
    cluster._start(
        "versitygw",
        [
            str(cluster.bins["versitygw"] / "versitygw"),
            "--access",
            S3_ACCESS,
            "--secret",
            S3_SECRET,
            "--port",
            f"127.0.0.1:{cluster.ports['s3']}",
            "posix",
            str(root),
        ],
    )

    def listening() -> bool:  # any HTTP answer will do (403 without a signature); refused is not ready
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{cluster.ports['s3']}/", timeout=2)
        except urllib.error.HTTPError:
            pass
        return True

    cluster._wait("versitygw", listening, 30)


def _controller_configmap(cluster: Any) -> str:
    executor = {
        "imagePullPolicy": "IfNotPresent",
        "env": [
            {"name": "KUBERNETES_SERVICE_HOST", "value": "127.0.0.1"},
            {"name": "KUBERNETES_SERVICE_PORT", "value": str(cluster.ports["apiserver"])},
        ],
    }
    # Model calls go to the cluster's own loopback gateway, as a platform team routes them to an
    # internal one: an OpenAI client that names no base URL never reaches for the internet.
    gateway = {"containers": [{"name": "main", "env": [{"name": "OPENAI_BASE_URL", "value": cluster.gateway_url}]}]}
    repository = {
        "s3": {
            "bucket": BUCKET,
            "endpoint": f"127.0.0.1:{cluster.ports['s3']}",
            "insecure": True,
            "createBucketIfNotPresent": {},
            "accessKeySecret": {"name": S3_SECRET_NAME, "key": "accesskey"},
            "secretKeySecret": {"name": S3_SECRET_NAME, "key": "secretkey"},
        }
    }
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "workflow-controller-configmap"},
            "data": {
                "executor": yaml.safe_dump(executor),
                "workflowDefaults": yaml.safe_dump(
                    {"spec": {"hostNetwork": True, "podSpecPatch": json.dumps(gateway)}}
                ),
                "artifactRepository": yaml.safe_dump(repository),
                "metricsConfig": yaml.safe_dump({"enabled": False}),
                "telemetryConfig": yaml.safe_dump({"enabled": False}),
            },
        }
    )


def podman_env() -> dict[str, str]:
    """The environment images/podman-env.sh sets up (its own config files, no global ones)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "llmstep" / "podman-ci"
    out = subprocess.run(
        ["bash", "-c", f'. "{ROOT}/images/podman-env.sh" "{cache}" >/dev/null && env -0'],
        capture_output=True,
        check=True,
    )
    return dict(item.split("=", 1) for item in out.stdout.decode().split("\0") if "=" in item)


def _run(argv: list[str], env: dict[str, str], what: str) -> None:
    out = subprocess.run(argv, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        from cluster import ClusterError

        raise ClusterError(f"{what} failed:\n{(out.stdout + out.stderr)[-3000:]}")


def images(cluster: Any) -> None:
    """The executor image, the step image and the base image they are built from, built with podman
    and imported into containerd."""
    env = podman_env()
    base = os.environ.get("LLMSTEP_TEST_BASE_IMAGE", BASE_IMAGE)
    _run([str(ROOT / "images" / "base-debian.sh"), base], env, "building the Debian base image")
    with tempfile.TemporaryDirectory() as context:
        (Path(context) / "argoexec").write_bytes((cluster.bins["argo"] / "argoexec").read_bytes())
        os.chmod(Path(context) / "argoexec", 0o755)
        (Path(context) / "Containerfile").write_text(
            f'FROM {base}\nCOPY argoexec /usr/local/bin/argoexec\nENTRYPOINT ["argoexec"]\n'
        )
        _run(["podman", "build", "-q", "-t", EXECUTOR_IMAGE, context], env, "building the Argo executor image")
    _run(
        [str(ROOT / "images" / "build.sh"), "--engine", "podman", "--tag", STEP_IMAGE, "--base", base, "--wheelhouse"],
        env,
        "building the step image",
    )
    # The base image is also Tekton's shell image (tests/cluster/tekton.py): the one that runs a
    # TaskRun's ``place-scripts`` init container, so a Task with a ``script:`` step needs it.
    for name, names in (
        (EXECUTOR_IMAGE, (EXECUTOR_IMAGE,)),
        (f"localhost/{STEP_IMAGE}", (f"docker.io/library/{STEP_IMAGE}",)),
        (base, (BASE_IMAGE,)),
    ):
        archive = cluster.state / f"{name.rsplit('/', 1)[-1].replace(':', '_')}.tar"
        _run(["podman", "save", "--format", "docker-archive", "-o", str(archive), name], env, f"saving {name}")
        cluster.import_image(archive, *names)
        archive.unlink()
    cluster.step_image = STEP_IMAGE
    (cluster.state / "step-image").write_text(STEP_IMAGE)


def _kubeconfig_in(cluster: Any, namespace: str) -> Path:
    from cluster import TOKEN

    path = cluster.state / f"kubeconfig-{namespace}"
    path.write_text(json.dumps(cluster.kubeconfig_for(TOKEN, namespace)))
    return path


def _host_env(cluster: Any, **extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(cluster.state),
        "KUBECONFIG": str(_kubeconfig_in(cluster, NAMESPACE)),
        **extra,
    }


def _start_controller(cluster: Any) -> None:
    # DEFAULT_REQUEUE_TIME and LEADER_ELECTION_DISABLE as Argo's own e2e controller runs (tasks.yaml).
    cluster._start(
        "workflow-controller",
        [
            str(cluster.bins["argo"] / "workflow-controller"),
            "--executor-image",
            EXECUTOR_IMAGE,
            "--executor-image-pull-policy",
            "IfNotPresent",
            "--namespace",
            NAMESPACE,
            "--loglevel",
            "info",
        ],
        env=_host_env(cluster, LEADER_ELECTION_DISABLE="true", DEFAULT_REQUEUE_TIME="1s"),
    )

    def healthy() -> bool:
        with urllib.request.urlopen("http://127.0.0.1:6060/healthz", timeout=2) as resp:
            return resp.status == 200

    cluster._wait("workflow-controller", healthy, 60)


def _start_server(cluster: Any) -> None:
    port = cluster.ports["argo-server"]
    cluster._start(
        "argo-server",
        [
            str(cluster.bins["argo"] / "argo"),
            "server",
            "--auth-mode=server",
            "--secure=false",
            "--port",
            str(port),
            "--namespace",
            NAMESPACE,
        ],
        env=_host_env(cluster),
    )

    def answering() -> bool:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/version", timeout=2) as resp:
            return resp.status == 200

    cluster._wait("argo-server", answering, 60)
