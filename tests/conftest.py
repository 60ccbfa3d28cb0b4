"""Shared fixtures: real chains, real processes, and the project's own paths."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

CONTAINER_MARKS = [
    pytest.mark.container,
    pytest.mark.skipif(shutil.which("podman") is None, reason="podman is not installed (CI installs it: see .ci/run)"),
    pytest.mark.skipif(
        "LLMSTEP_TEST_BASE_IMAGE" not in os.environ,
        reason="no base image to build the step image from: set LLMSTEP_TEST_BASE_IMAGE (CI makes one with "
        "images/base-debian.sh after sourcing images/podman-env.sh)",
    ),
]
"""The marks of a test that runs steps in the real step image (``pytestmark = CONTAINER_MARKS``)."""
STEP_IMAGE = "localhost/llmstep-test:latest"


@pytest.fixture(scope="session")
def step_image() -> str:
    """The step image built from this checkout on LLMSTEP_TEST_BASE_IMAGE, offline (the
    wheelhouse): once per session, for every container test."""
    base = os.environ["LLMSTEP_TEST_BASE_IMAGE"]
    build = subprocess.run(
        [str(ROOT / "images" / "build.sh"), "--engine", "podman", "--tag", STEP_IMAGE, "--base", base, "--wheelhouse"],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    return STEP_IMAGE


@pytest.fixture(scope="session")
def _user_cache(tmp_path_factory):
    """The session's own user cache directory: what llmstep keeps between processes (rendered
    Workflows, the fork server's lessons) neither comes from earlier sessions nor stays after."""
    return tmp_path_factory.mktemp("user-cache")


@pytest.fixture(scope="session")
def _user_runtime(tmp_path_factory):
    """The session's own runtime directory, where the fork servers' sockets are: a session never
    hands its steps to a server that another session (another checkout of llmstep) started."""
    path = tmp_path_factory.mktemp("runtime")
    path.chmod(0o700)
    return path


@pytest.fixture(autouse=True)
def _isolated_runs(tmp_path, monkeypatch, _user_cache, _user_runtime):
    """Every test runs in its own folder, so run records never mix or land in the repo."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(_user_cache))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(_user_runtime))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    # fork servers outlive the runs that start them, as by default, but not the test session by long
    monkeypatch.setenv("LLMSTEP_FORKSERVER_IDLE", "10")


@pytest.fixture
def server():
    """A loopback stand-in for the Argo Server (tests/argo_server.py) that runs the qa chain; its
    token is ``argo_server.TOKEN``."""
    from argo_server import TOKEN, FakeArgoServer
    from chains import qa_chain

    with FakeArgoServer(qa_chain(), token=TOKEN) as s:
        yield s


def run_cli(*args: str, env: dict | None = None, cwd: Path | None = None, timeout: float = 120):
    """Run the real `llmstep` console entry point in a fresh process."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "llmstep", *args], capture_output=True, text=True, env=full_env, cwd=cwd, timeout=timeout
    )


def as_from_a_terminal(argv: list[str]) -> list[str]:
    """``argv`` started as a terminal starts a command: with SIGINT at its default action, so a test
    can press Ctrl-C. A CI started in the background (``nohup ... &``) ignores SIGINT and its
    processes inherit that, so a Python child would never raise KeyboardInterrupt. A small
    wrapper resets the signal and execs ``argv`` (an exec keeps a default action); ``preexec_fn``
    would do the same but is unsafe in a test process that runs threads (loopback servers)."""
    reset = "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp(sys.argv[1], sys.argv[1:])"
    return [sys.executable, "-c", reset, *argv]


def chain_module(folder: Path, body: str) -> str:
    """Write ``mychain.py`` into ``folder`` (importing from the tests' ``chains``); ``body`` defines
    the chains. Returns the reference prefix, ``mychain.py``."""
    tests = str(Path(__file__).parent)
    (folder / "mychain.py").write_text(f"import sys\nsys.path.insert(0, {tests!r})\n{body}", encoding="utf-8")
    return "mychain.py"


def copy_of_llmstep(folder: Path) -> Path:
    """A copy of the llmstep package in ``folder`` (``folder/llmstep``), for processes that import it
    from there (``PYTHONPATH=folder``): a test that changes a module file's modification time changes
    the copy's, never the repository's (which other processes and sessions go by). Returns ``folder``."""
    shutil.copytree(ROOT / "llmstep", folder / "llmstep", ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def write_step(data_dir: Path, payload: dict, inputs: dict[str, str] | str | None) -> Path:
    """Lay out a step's data directory as the engine would: payload plus input file(s)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "runnable.json").write_text(json.dumps(payload))
    if isinstance(inputs, str):
        (data_dir / "input.json").write_text(inputs)
    elif inputs:
        (data_dir / "input").mkdir(exist_ok=True)
        for name, text in inputs.items():
            (data_dir / "input" / f"{name}.json").write_text(text)
    return data_dir


def exec_step(data_dir: Path, env: dict | None = None):
    """Run `llmstep exec` on a data directory with exactly ``env`` (plus PATH), like a pod."""
    base = {"PATH": os.environ.get("PATH", ""), "HOME": str(data_dir)}
    return subprocess.run(
        [sys.executable, "-m", "llmstep", "exec", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        timeout=120,
    )


@pytest.fixture(scope="session")
def k8s():
    """The real single-node Kubernetes with Argo Workflows on loopback (tests/cluster/). A cluster
    already started with ``python tests/cluster/cluster.py start`` is used as it is (and left
    running); otherwise the session starts one and stops it at the end. Opt in with `-m cluster`;
    when it cannot start, the tests fail with the failing component's log tail."""
    sys.path.insert(0, str(ROOT / "tests" / "cluster"))
    from cluster import Cluster

    cluster = Cluster()
    if cluster.running():
        yield cluster
        return
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def argo_namespace(cluster, namespace: str) -> None:
    """A namespace ready for Workflows (the executor's Role and the artifact store's Secret)."""
    import argo

    if cluster.kubectl("get", "namespace", namespace, check=False).returncode != 0:
        cluster.kubectl("create", "namespace", namespace)
    argo.prepare_namespace(cluster, namespace)


def kube_api(cluster, namespace: str | None = None):
    """The kubernetes ``client`` module configured for the test cluster; ``namespace`` is created."""
    from kubernetes import client, config

    config.load_kube_config(str(cluster.kubeconfig))
    if namespace:
        client.CoreV1Api().create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    return client
