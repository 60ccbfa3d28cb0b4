"""Step images with the user's own dependencies, and what an image holds.

``llmstep image build`` makes a step image from a base step image (``llmstep.DEFAULT_IMAGE`` unless
told) plus the user's requirements (a requirements file, or a project with a ``pyproject.toml``),
optionally installed offline from a directory of wheels, with whichever of podman, buildah or docker
is present.

Every step image llmstep builds records its Python modules: the top-level names importable in its
virtualenv, beyond the standard library (:func:`installed_modules`), in :data:`MODULES_FILE` inside
the image and in its label :data:`MODULES_LABEL`. :mod:`llmstep.local.image_check` reads that label
from the local engine to warn at compile time about a step whose payload names a module its image
lacks.

Nothing at this module's top level imports more than the standard library: the image runs
``python -m llmstep.local.images`` to list its own modules.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from llmstep.errors import LlmstepError, UsageError
from llmstep.exitcodes import EXIT_FAILED

MODULES_LABEL = "io.llmstep.modules"
"""The image label holding its modules, comma-separated (``langchain_core,openai,...``)."""
MODULES_FILE = "/opt/llmstep/modules.txt"
"""The same list inside the image, one name a line."""
VENV = "/opt/llmstep"
ENGINES = ("podman", "buildah", "docker")
STEP_UID = 10001
"""The step image's user (``images/Dockerfile``'s ``UID``), restored after installing as root."""
_SKIPPED = frozenset({".git", ".venv", "__pycache__"})
"""What of a ``--project`` directory is neither copied into the build nor part of its digest."""


class ImageBuildError(LlmstepError):
    """The container engine could not build, label or push the image (exit 1): its output says why."""

    exit_code = EXIT_FAILED


def installed_modules() -> list[str]:
    """The top-level modules this interpreter can import beyond the standard library: those on its
    path (``pkgutil``) and those every installed distribution ships (its ``top_level.txt`` and the
    files it records, so namespace packages count too)."""
    import importlib.metadata
    import pkgutil

    names = {m.name for m in pkgutil.iter_modules()}
    for dist in importlib.metadata.distributions():
        names.update((dist.read_text("top_level.txt") or "").split())
        for file in dist.files or ():
            first = file.parts[0] if file.parts else ""
            if first in ("..", "__pycache__") or first.endswith((".dist-info", ".egg-info", ".data", ".pth")):
                continue
            names.add(first.partition(".")[0])  # pkg, mod.py, ext.cpython-311-x86_64-linux-gnu.so
    return sorted(n for n in names if n.isidentifier() and n not in sys.stdlib_module_names)


def parse_modules(text: str) -> frozenset[str]:
    """The modules of a label (comma-separated) or of :data:`MODULES_FILE` (one a line)."""
    return frozenset(n for n in text.replace(",", "\n").split() if n.isidentifier())


def find_engine(engine: str | None = None, which: Callable[[str], str | None] = shutil.which) -> str:
    """The container engine to use: ``engine`` if installed, else the first installed of podman,
    buildah and docker; UsageError naming ``--engine`` when there is none."""
    if engine is not None:
        if engine not in ENGINES:
            raise UsageError(f"--engine {engine!r} is not one of {', '.join(ENGINES)}")
        if which(engine) is None:
            raise UsageError(f"--engine {engine}: {engine} is not installed (or not on PATH)")
        return engine
    for name in ENGINES:
        if which(name) is not None:
            return name
    raise UsageError(
        f"no container engine found: install one of {', '.join(ENGINES)} (or put it on PATH), or pass --engine"
    )


@dataclass(frozen=True)
class BuildSpec:
    """What ``llmstep image build`` puts into an image. Exactly one of ``requirements`` (a file) and
    ``project`` (a directory with a ``pyproject.toml``); ``wheels``, a directory to install from
    with ``pip --no-index`` (nothing is downloaded)."""

    base: str
    requirements: Path | None = None
    project: Path | None = None
    wheels: Path | None = None

    def check(self) -> BuildSpec:
        """Itself, with absolute paths; UsageError naming the option when an input is wrong."""
        if (self.requirements is None) == (self.project is None):
            raise UsageError("give exactly one of -r/--requirements FILE and --project DIR")
        if not self.base.strip() or any(c.isspace() for c in self.base):
            raise UsageError(f"--from {self.base!r} is not an image reference")
        requirements = project = wheels = None
        if self.requirements is not None:
            requirements = Path(self.requirements).resolve()
            if not requirements.is_file():
                raise UsageError(f"-r/--requirements {self.requirements}: no such file")
        if self.project is not None:
            project = Path(self.project).resolve()
            if not (project / "pyproject.toml").is_file():
                raise UsageError(f"--project {self.project}: no pyproject.toml in that directory")
        if self.wheels is not None:
            wheels = Path(self.wheels).resolve()
            if not wheels.is_dir():
                raise UsageError(f"--wheels {self.wheels}: no such directory")
        return BuildSpec(self.base, requirements, project, wheels)

    def default_tag(self) -> str:
        """``localhost/llmstep-deps:<digest>``: the digest of the base and the inputs' contents, so a
        changed requirement gets a new tag (a cluster never runs a stale image under an old one)."""
        digest = hashlib.sha256(self.base.encode())
        if self.requirements is not None:
            digest.update(self.requirements.read_bytes())
        if self.project is not None:
            for path in sorted(self.project.rglob("*")):
                inside = path.relative_to(self.project)
                if path.is_file() and not _SKIPPED.intersection(inside.parts):
                    digest.update(str(inside).encode() + b"\0" + path.read_bytes())
        for wheel in sorted(self.wheels.iterdir()) if self.wheels else ():
            digest.update(wheel.name.encode())
        return f"localhost/llmstep-deps:{digest.hexdigest()[:12]}"


def containerfile(spec: BuildSpec) -> str:
    """The Containerfile that installs ``spec`` into its base (build context: see :func:`stage`).
    The base step image has no pip (``images/Dockerfile`` removes it): ``ensurepip`` brings it back
    from the interpreter's own wheel, offline, and it goes again after the install (setuptools, which
    ``ensurepip`` brings too, stays: a requirement may need it at run time)."""
    pip = f"{VENV}/bin/python -m pip install --no-cache-dir"
    if spec.wheels is not None:
        pip += " --no-index --find-links /build/wheels"
    target = "-r /build/requirements.txt" if spec.requirements is not None else "/build/project"
    lines = [f"FROM {spec.base}", f'LABEL io.llmstep.base="{spec.base}"', "USER 0:0"]
    if spec.requirements is not None:
        lines.append("COPY requirements.txt /build/requirements.txt")
    if spec.project is not None:
        lines.append("COPY project/ /build/project/")
    if spec.wheels is not None:
        lines.append("COPY wheels/ /build/wheels/")
    lines += [
        "RUN set -eu; \\",
        f"    {VENV}/bin/python -m ensurepip --default-pip >/dev/null; \\",
        f"    {pip} {target}; \\",
        f"    {VENV}/bin/python -m pip uninstall -y -q pip; \\",
        f"    {VENV}/bin/python -m compileall -q {VENV}/lib; \\",
        f"    {VENV}/bin/python -m llmstep.local.images > {MODULES_FILE}; \\",
        "    rm -rf /build /root/.cache",
        f"USER {STEP_UID}:{STEP_UID}",
    ]
    return "\n".join(lines) + "\n"


def label_containerfile(tag: str, modules: Sequence[str]) -> str:
    """The one-line build that records ``modules`` as the label of ``tag`` (a label cannot take a
    value the build computes, so it is a second, instant build)."""
    return f'FROM {tag}\nLABEL {MODULES_LABEL}="{",".join(modules)}"\n'


def stage(spec: BuildSpec, where: Path) -> Path:
    """Write the build context for ``spec`` into ``where``: its Containerfile and copies of the inputs."""
    if spec.requirements is not None:
        shutil.copyfile(spec.requirements, where / "requirements.txt")
    if spec.project is not None:
        shutil.copytree(spec.project, where / "project", ignore=shutil.ignore_patterns(*_SKIPPED))
    if spec.wheels is not None:
        shutil.copytree(spec.wheels, where / "wheels")
    (where / "Containerfile").write_text(containerfile(spec), encoding="utf-8")
    return where / "Containerfile"


Runner = Callable[[list[str]], "subprocess.CompletedProcess[bytes]"]


def _run(argv: list[str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)


def _checked(run: Runner, argv: list[str], what: str) -> bytes:
    try:
        done = run(argv)
    except OSError as exc:
        raise ImageBuildError(f"{what}: {argv[0]} could not start: {exc}") from None
    if done.returncode != 0:
        tail = done.stdout.decode("utf-8", "replace").strip().splitlines()[-20:]
        raise ImageBuildError(f"{what} failed (`{' '.join(argv[:2])}` exited {done.returncode}):\n" + "\n".join(tail))
    return done.stdout


def read_modules_file(engine: str, tag: str, run: Runner = _run) -> list[str]:
    """The list :data:`MODULES_FILE` of the built image ``tag``, read without starting it where the
    engine allows (podman and docker: ``create`` and ``cp``; buildah: a working container)."""
    what = f"reading {MODULES_FILE} of {tag}"
    if engine == "buildah":
        ctr = _checked(run, [engine, "from", "--pull=never", tag], what).decode().strip().splitlines()[-1]
        try:
            return sorted(parse_modules(_checked(run, [engine, "run", ctr, "--", "cat", MODULES_FILE], what).decode()))
        finally:
            run([engine, "rm", ctr])
    ctr = _checked(run, [engine, "create", tag], what).decode().strip().splitlines()[-1]
    try:
        archive = _checked(run, [engine, "cp", f"{ctr}:{MODULES_FILE}", "-"], what)
    finally:
        run([engine, "rm", ctr])
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        member = next((m for m in tar.getmembers() if m.isfile()), None)
        data = tar.extractfile(member).read() if member is not None else b""  # type: ignore[union-attr]
    return sorted(parse_modules(data.decode()))


def build(
    spec: BuildSpec,
    tag: str,
    engine: str,
    *,
    push: bool = False,
    run: Runner = _run,
    say: Callable[[str], None] = print,
) -> list[str]:
    """Build ``spec`` as ``tag`` with ``engine``, label it with its modules and push it if asked;
    the modules. ImageBuildError with the engine's output when a command fails."""
    with tempfile.TemporaryDirectory(prefix="llmstep-image-") as tmp:
        context = Path(tmp)
        file = stage(spec, context)
        say(f"building {tag} from {spec.base} with {engine}")
        _checked(run, [engine, "build", "-f", str(file), "-t", tag, str(context)], f"building {tag}")
        modules = read_modules_file(engine, tag, run)
        (context / "label").mkdir()
        label = context / "label" / "Containerfile"
        label.write_text(label_containerfile(tag, modules), encoding="utf-8")
        _checked(run, [engine, "build", "-f", str(label), "-t", tag, str(label.parent)], f"labelling {tag}")
    if push:
        say(f"pushing {tag}")
        _checked(run, [engine, "push", tag], f"pushing {tag}")
    return modules


if __name__ == "__main__":  # inside an image: its modules, one a line (MODULES_FILE)
    print("\n".join(installed_modules()))
