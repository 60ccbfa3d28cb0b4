"""How a step runs inside the step image (``--isolation container``, see :mod:`llmstep.local.isolation`).

``podman run``/``docker run`` with the same command, the data directory mounted, only the step's
env, no network unless the step calls a model (then the host network, never a bridge), a
read-only root filesystem and the image's non-root user, as the pod would run it."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from llmstep.errors import WorkflowError

STEP_UID = 10001
"""The image's user (images/Dockerfile); also the pod's user."""


def container_argv(
    engine_cli: str, *, image: str, argv: list[str], env_names: list[str], mounts: list[tuple[Path, str]], network: bool
) -> list[str]:
    """``podman run ...`` for one step. Env values are not in the command line: ``-e NAME``
    takes them from the engine CLI's own environment, so secrets never show in ``ps``."""
    command = [
        engine_cli,
        "run",
        "--rm",
        "--read-only",
        "--tmpfs",
        "/tmp",
        "--user",
        f"{STEP_UID}:{STEP_UID}",
        "--network",
        "host" if network else "none",
    ]
    for host, inside in mounts:
        _open_for_step_user(host)
        command += ["-v", f"{host}:{inside}"]
    for name in env_names:
        command += ["-e", name]
    return [*command, "--entrypoint", argv[0], image, *argv[1:]]


def _open_for_step_user(path: Path) -> None:
    """Let the image's non-root user write its data directory (created here by another user)."""
    path.mkdir(parents=True, exist_ok=True)
    for folder, _dirs, files in os.walk(path):
        os.chmod(folder, 0o777)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o666)


def check_image(engine_cli: str, engine_env: Mapping[str, str], image: str) -> None:
    """A clear error, with the build command, when the step image is not in the engine's store. The
    engine runs with ``engine_env``, its own settings, as it does to start each step's container."""
    found = subprocess.run([engine_cli, "image", "inspect", image], capture_output=True, env=dict(engine_env))
    if found.returncode != 0:
        said = found.stderr.decode(errors="replace").strip().splitlines()
        raise WorkflowError(
            f"image {image!r} is not in {engine_cli}'s store; build it with "
            f"images/build.sh --engine {engine_cli} --tag {image} (see images/Dockerfile)"
            + (f" [{engine_cli}: {said[-1]}]" if said else "")
        )
