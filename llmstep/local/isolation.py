"""How the local runner starts a step: as a process (the default) or in a container.

Each kind is one strategy with the same two methods, as kfp.local has one handler per kind, so
the Argo and the Tekton runner never ask which kind they have:

- :meth:`Steps.preflight`: what must hold before the run starts (a container run's images);
- :meth:`Steps.attempt`: the command and environment of one attempt of a step, from the pod's
  command, its data directory and its environment.

:class:`Isolation` is the user's choice (``--isolation``, ``run_local(isolation=...)``); its
:meth:`Isolation.steps` gives the strategy.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmstep import contract, jsonio
from llmstep.errors import UsageError
from llmstep.local.attempts import Attempt
from llmstep.local.command import check_paths, parse
from llmstep.local.process import PASSTHROUGH, Launcher, local_argv
from llmstep.local.trust import Policy

KINDS = ("process", "container")
IDLE_ENV = "LLMSTEP_FORKSERVER_IDLE"
DEFAULT_IDLE = 300.0


@dataclass(frozen=True)
class Isolation:
    """How the local runner starts steps: as processes (default) or in containers."""

    kind: str = "process"
    engine_cli: str = "podman"
    engine_env: dict[str, str] = field(default_factory=dict)
    """The engine CLI's own settings (CONTAINERS_CONF, DOCKER_HOST, ...); see :func:`engine_env`."""
    fork: bool = True
    """Process isolation only: fork steps from a server that has LangChain imported already."""
    fork_idle: float = DEFAULT_IDLE
    """How long a fork server waits for work before it ends: while it lives, runs in any process
    of this user fork their steps from it warm. 0: each process has its own, ending with it."""
    runtime_dir: str | None = None
    """Where persistent fork servers' sockets go (``$XDG_RUNTIME_DIR``; default the temporary directory)."""
    cache_dir: str | None = None
    """Where fork servers keep what they learn (the user's cache directory; None: nothing kept)."""

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], **settings: Any) -> Isolation:
        """The isolation ``settings`` with the fork server's defaults from ``environ``, as the CLI and
        ``Compiled.run_local`` read them: ``LLMSTEP_FORKSERVER_IDLE`` (seconds, default 300),
        ``XDG_RUNTIME_DIR``, ``XDG_CACHE_HOME``, and the engine CLI's own variables."""
        from llmstep.render.cache import user_dir

        raw = environ.get(IDLE_ENV, "").strip()
        idle = DEFAULT_IDLE
        if raw:
            try:
                idle = float(raw)
            except ValueError:
                idle = -1.0
            if not 0 <= idle < float("inf"):
                raise UsageError(
                    f"{IDLE_ENV}={raw!r} is not a number of seconds: use for example 300, or 0 for a "
                    "fork server that ends with the process that started it"
                )
        defaults = {
            "fork_idle": idle,
            "runtime_dir": environ.get("XDG_RUNTIME_DIR") or None,
            "cache_dir": user_dir(environ) or None,
            "engine_env": engine_env(environ),
        }
        return cls(**{**defaults, **settings})

    def start_launcher(
        self, docs: list[dict[str, Any]] | None = None, classes: list[list[str]] | None = None
    ) -> Launcher:
        """A Launcher for a run of ``docs`` (or of payloads with these class ids): with a fork
        server when processes may be forked. The server starts in the background."""
        if self.kind != "process" or not self.fork:
            return Launcher()
        from llmstep.local.forkserver import shared_server

        try:
            server = shared_server(
                classes if classes is not None else payload_classes(docs),
                self.fork_idle,
                runtime=self.runtime_dir,
                cache=self.cache_dir,
            )
            return Launcher(server, keep_server=True)
        except OSError:
            return Launcher()  # a cold start per step is slower, never wrong

    def check(self) -> None:
        """A usage error when the kind is unknown or its engine is not installed."""
        if self.kind not in KINDS:
            raise UsageError(f"--isolation {self.kind!r}: use process or container")
        if self.kind == "container" and shutil.which(self.engine_cli) is None:
            raise UsageError(
                f"--isolation container needs {self.engine_cli}, which is not installed; install it "
                "(apt-get install podman) or run with --isolation process"
            )

    def steps(self) -> Steps:
        """The strategy for this kind (checked first)."""
        self.check()
        return ContainerSteps(self.engine_cli, self.engine_env) if self.kind == "container" else ProcessSteps()


class Steps:
    """A way to start a run's steps (one object per run)."""

    uses_images = False
    """Whether :meth:`attempt` needs the step's image (a runner resolves it only then)."""

    def preflight(self, images: Iterable[str]) -> None:
        """What must hold before the run starts, given the images the documents name."""

    def attempt(
        self,
        argv: list[str],
        data_dir: Path,
        env: dict[str, str],
        *,
        where: str = "step",
        policy: Policy | None = None,
        root: str | None = None,
        image: str = "",
        declared: Sequence[str] = (),
        extra: Sequence[str] = (),
        mounts: Sequence[tuple[Path, str]] = (),
        network: bool = False,
        keep_data_dir: bool = False,
    ) -> Attempt:
        """One attempt of a step (``where`` names it) whose pod runs ``argv`` (``llmstep ...``) with ``env``.

        ``data_dir`` is the local data directory (mounted at ``root`` in a container, or at
        ``mounts``); ``declared`` are the env names the pod spec declares, ``extra`` the runner's
        own (the pickle refusal); ``network``: the step calls a model. ``keep_data_dir`` records
        ``data_dir`` as where the step writes error.json (Tekton keeps it in a workspace).

        Whatever starts the step, its command is checked first, substituted: the grammar, its
        paths inside ``data_dir`` and ``mounts``, its endpoints and declared env by ``policy``."""
        policy = policy or Policy()
        policy.check_command(argv, where)
        # the paths as the step's process gets them (the container's data directory mapped to data_dir)
        command = parse(["llmstep", *local_argv(argv, data_dir, root)[3:]], where)
        check_paths(command, where, [data_dir, *(host for host, _ in mounts)])
        policy.check_env(((name, False) for name in declared if name not in extra), where)
        return self._attempt(
            argv,
            data_dir,
            env,
            root=root,
            image=image,
            declared=declared,
            extra=extra,
            mounts=mounts,
            network=network,
            keep_data_dir=keep_data_dir,
        )

    def _attempt(
        self,
        argv: list[str],
        data_dir: Path,
        env: dict[str, str],
        *,
        root: str | None,
        image: str,
        declared: Sequence[str],
        extra: Sequence[str],
        mounts: Sequence[tuple[Path, str]],
        network: bool,
        keep_data_dir: bool,
    ) -> Attempt:
        raise NotImplementedError


class ProcessSteps(Steps):
    """Each step is a local process running the pod's command (``python -m llmstep ...``)."""

    def _attempt(
        self,
        argv: list[str],
        data_dir: Path,
        env: dict[str, str],
        *,
        root: str | None,
        image: str,
        declared: Sequence[str],
        extra: Sequence[str],
        mounts: Sequence[tuple[Path, str]],
        network: bool,
        keep_data_dir: bool,
    ) -> Attempt:
        return Attempt(local_argv(argv, data_dir, root), env, data_dir if keep_data_dir else None)


class ContainerSteps(Steps):
    """Each step runs in its image with ``podman run`` (or docker): see :mod:`llmstep.local.container`."""

    uses_images = True

    def __init__(self, engine_cli: str, engine_env: Mapping[str, str]) -> None:
        self.engine_cli, self.engine_env = engine_cli, dict(engine_env)
        self._present: set[str] = set()

    def preflight(self, images: Iterable[str]) -> None:
        for image in sorted(set(images)):
            self._check(image)

    def _check(self, image: str) -> None:
        from llmstep.local.container import check_image

        if image not in self._present:  # an image from a param is known only when its step runs
            check_image(self.engine_cli, self.engine_env, image)
            self._present.add(image)

    def _attempt(
        self,
        argv: list[str],
        data_dir: Path,
        env: dict[str, str],
        *,
        root: str | None,
        image: str,
        declared: Sequence[str],
        extra: Sequence[str],
        mounts: Sequence[tuple[Path, str]],
        network: bool,
        keep_data_dir: bool,
    ) -> Attempt:
        from llmstep.local.container import container_argv

        self._check(image)
        # the pod's declared variables, the runner's own, then this machine's way out (PASSTHROUGH)
        names = (
            [n for n in declared if n in env] + list(extra) + [n for n in PASSTHROUGH if n in env and n not in declared]
        )
        command = container_argv(
            self.engine_cli,
            image=image,
            argv=argv,
            env_names=names,
            mounts=list(mounts) or [(data_dir, root or contract.DATA_DIR)],
            network=network,
        )
        return Attempt(command, {**env, **self.engine_env}, data_dir if keep_data_dir else None)


_ENGINE_PREFIXES = ("CONTAINERS_", "DOCKER_", "XDG_", "REGISTRY_AUTH_FILE", "BUILDAH_", "STORAGE_")


def engine_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables that configure podman/docker themselves; the container never sees them."""
    return {k: v for k, v in environ.items() if k.startswith(_ENGINE_PREFIXES) or k in ("PATH", "HOME", "TMPDIR")}


def payload_classes(node: Any) -> list[list[str]]:
    """The class ids recorded in every llmstep payload inside some documents."""
    found: list[list[str]] = []
    if isinstance(node, str):
        if node.lstrip().startswith("{") and '"llmstep"' in node:
            try:
                payload = jsonio.loads(node)
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
