"""Run a step inside the step image (``--isolation container``): ``podman run``/``docker run``
with the same command, the data directory mounted, only the step's env, no network unless the
step calls a model (then the host network, never a bridge), a read-only root filesystem and
the image's non-root user, as the pod would run it."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmstep.errors import WorkflowError
from llmstep.local.process import Launcher

STEP_UID = 10001
"""The image's user (images/Dockerfile); also the pod's user."""


@dataclass(frozen=True)
class Isolation:
    """How the local runner starts steps: as processes (default) or in containers."""

    kind: str = "process"
    engine_cli: str = "podman"
    engine_env: dict[str, str] = field(default_factory=dict)
    """The engine CLI's own settings (CONTAINERS_CONF, DOCKER_HOST, ...); see :func:`engine_env`."""
    fork: bool = True
    """Process isolation only: fork steps from a server that has LangChain imported already."""

    def start_launcher(self, docs: list[dict[str, Any]] | None = None, classes: list[list[str]] | None = None) -> Launcher:
        """A Launcher for a run of ``docs`` (or of payloads with these class ids): with a fork
        server when processes may be forked. The server starts in the background."""
        if self.kind != "process" or not self.fork:
            return Launcher()
        from llmstep.local.forkserver import shared_server

        try:
            return Launcher(shared_server(classes if classes is not None else payload_classes(docs)), keep_server=True)
        except OSError:
            return Launcher()  # a cold start per step is slower, never wrong

    def check(self) -> None:
        if self.kind not in ("process", "container"):
            raise WorkflowError(f"--isolation {self.kind!r}: use process or container")
        if self.kind == "container" and shutil.which(self.engine_cli) is None:
            raise WorkflowError(
                f"--isolation container needs {self.engine_cli}, which is not installed; install it "
                "(apt-get install podman) or run with --isolation process"
            )

    def check_image(self, image: str) -> None:
        """A clear error, with the build command, when the step image is not present."""
        found = subprocess.run([self.engine_cli, "image", "inspect", image], capture_output=True,
                               env={**os.environ, **self.engine_env})
        if found.returncode != 0:
            said = found.stderr.decode(errors="replace").strip().splitlines()
            raise WorkflowError(
                f"image {image!r} is not in {self.engine_cli}'s store; build it with "
                f"images/build.sh --engine {self.engine_cli} --tag {image} (see images/Dockerfile)"
                + (f" [{self.engine_cli}: {said[-1]}]" if said else "")
            )


_ENGINE_PREFIXES = ("CONTAINERS_", "DOCKER_", "XDG_", "REGISTRY_AUTH_FILE", "BUILDAH_", "STORAGE_")


def engine_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables that configure podman/docker themselves; the container never sees them."""
    return {k: v for k, v in environ.items() if k.startswith(_ENGINE_PREFIXES) or k in ("PATH", "HOME", "TMPDIR")}


def container_argv(
    isolation: Isolation,
    *,
    image: str,
    argv: list[str],
    env_names: list[str],
    mounts: list[tuple[Path, str]],
    network: bool,
) -> list[str]:
    """``podman run ...`` for one step. Env values are not in the command line: ``-e NAME``
    takes them from the engine CLI's own environment, so secrets never show in ``ps``."""
    command = [
        isolation.engine_cli, "run", "--rm", "--read-only", "--tmpfs", "/tmp",
        "--user", f"{STEP_UID}:{STEP_UID}", "--network", "host" if network else "none",
    ]
    for host, inside in mounts:
        _open_for_step_user(host)
        command += ["-v", f"{host}:{inside}"]
    for name in env_names:
        command += ["-e", name]
    return [*command, "--entrypoint", argv[0], image, *argv[1:]]


def payload_classes(node: Any) -> list[list[str]]:
    """The class ids recorded in every llmstep payload inside some documents."""
    import json

    found: list[list[str]] = []
    if isinstance(node, str):
        if node.lstrip().startswith("{") and '"llmstep"' in node:
            try:
                payload = json.loads(node)
            except ValueError:
                return found
            if isinstance(payload, dict):
                found.extend(payload.get("allowed") or [])
    elif isinstance(node, dict):
        for value in node.values():
            found.extend(payload_classes(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(payload_classes(value))
    return found


def _open_for_step_user(path: Path) -> None:
    """Let the image's non-root user write its data directory (created here by another user)."""
    path.mkdir(parents=True, exist_ok=True)
    for folder, _dirs, files in os.walk(path):
        os.chmod(folder, 0o777)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o666)
