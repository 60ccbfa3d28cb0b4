"""llmstep.local.images, the build behind `llmstep image build`, without an engine: its Containerfile,
its argument errors, the commands it runs (a fake runner), and the modules this interpreter has."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from llmstep.errors import UsageError
from llmstep.local import images
from llmstep.local.images import BuildSpec, ImageBuildError


def _spec(tmp_path: Path, wheels: bool = False, project: bool = False) -> BuildSpec:
    if project:
        (tmp_path / "proj").mkdir()
        (tmp_path / "proj" / "pyproject.toml").write_text("[project]\nname = 'p'\nversion = '1'\n")
        req, proj = None, tmp_path / "proj"
    else:
        (tmp_path / "requirements.txt").write_text("llmstep_testpkg==1.0\n")
        req, proj = tmp_path / "requirements.txt", None
    if wheels:
        (tmp_path / "wheels").mkdir()
        (tmp_path / "wheels" / "llmstep_testpkg-1.0-py3-none-any.whl").write_bytes(b"PK")
    return BuildSpec("llmstep:0.1.0", req, proj, tmp_path / "wheels" if wheels else None).check()


def test_containerfile_installs_requirements_offline_from_wheels_and_records_modules(tmp_path):
    text = images.containerfile(_spec(tmp_path, wheels=True))
    lines = text.splitlines()
    assert lines[0] == "FROM llmstep:0.1.0"
    assert "COPY requirements.txt /build/requirements.txt" in lines and "COPY wheels/ /build/wheels/" in lines
    assert "/opt/llmstep/bin/python -m ensurepip --default-pip" in text
    assert (
        "/opt/llmstep/bin/python -m pip install --no-cache-dir --no-index --find-links /build/wheels "
        "-r /build/requirements.txt"
    ) in text
    assert "/opt/llmstep/bin/python -m llmstep.local.images > /opt/llmstep/modules.txt" in text
    assert text.index("pip install") < text.index("pip uninstall") < text.index("modules.txt")
    assert lines[-1] == "USER 10001:10001" and "USER 0:0" in lines


def test_containerfile_of_a_project_without_wheels_uses_the_index(tmp_path):
    text = images.containerfile(_spec(tmp_path, project=True))
    assert "COPY project/ /build/project/" in text and "requirements" not in text
    assert "pip install --no-cache-dir /build/project" in text and "--no-index" not in text


def test_stage_copies_the_inputs_beside_the_containerfile(tmp_path):
    spec = _spec(tmp_path, wheels=True)
    (tmp_path / "ctx").mkdir()
    file = images.stage(spec, tmp_path / "ctx")
    assert file.read_text() == images.containerfile(spec)
    assert (tmp_path / "ctx" / "requirements.txt").read_text() == "llmstep_testpkg==1.0\n"
    assert (tmp_path / "ctx" / "wheels" / "llmstep_testpkg-1.0-py3-none-any.whl").is_file()


def test_label_containerfile():
    assert images.label_containerfile("t:1", ["a", "b_c"]) == 'FROM t:1\nLABEL io.llmstep.modules="a,b_c"\n'


@pytest.mark.parametrize(
    "kwargs, option",
    [
        ({}, "exactly one of -r/--requirements FILE and --project DIR"),
        ({"requirements": "nope.txt"}, "-r/--requirements nope.txt: no such file"),
        ({"project": "."}, "--project .: no pyproject.toml"),
        ({"requirements": "req.txt", "wheels": "nowheels"}, "--wheels nowheels: no such directory"),
        ({"requirements": "req.txt", "project": "."}, "exactly one of"),
    ],
)
def test_bad_inputs_name_their_option(tmp_path, monkeypatch, kwargs, option):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "req.txt").write_text("x\n")
    with pytest.raises(UsageError, match=option.replace(".", r"\.").replace("/", "/")):
        BuildSpec("llmstep:0.1.0", **{k: Path(v) for k, v in kwargs.items()}).check()


def test_default_tag_follows_the_inputs(tmp_path):
    spec = _spec(tmp_path)
    first = spec.default_tag()
    assert first.startswith("localhost/llmstep-deps:") and first == spec.default_tag()
    (tmp_path / "requirements.txt").write_text("llmstep_testpkg==2.0\n")
    assert spec.default_tag() != first


def test_find_engine():
    assert images.find_engine(which=lambda n: "/bin/" + n) == "podman"
    assert images.find_engine(which=lambda n: "/bin/docker" if n == "docker" else None) == "docker"
    assert images.find_engine("buildah", which=lambda n: "/bin/" + n) == "buildah"
    with pytest.raises(UsageError, match="no container engine found: install one of podman, buildah, docker"):
        images.find_engine(which=lambda n: None)
    with pytest.raises(UsageError, match="--engine docker: docker is not installed"):
        images.find_engine("docker", which=lambda n: None)


def _tar(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class FakeEngine:
    def __init__(self, fail: str | None = None):
        self.calls: list[list[str]] = []
        self.files: list[str] = []
        self.fail = fail

    def __call__(self, argv):
        self.calls.append(argv)
        if argv[1] == "build":
            self.files.append(Path(argv[argv.index("-f") + 1]).read_text())
        out = {"create": b"ctr1\n", "cp": _tar("modules.txt", b"langchain_core\nllmstep_testpkg\nyaml\n")}.get(
            argv[1], b""
        )
        if argv[1] == self.fail:
            return subprocess.CompletedProcess(argv, 125, b"STEP 3/9: RUN ...\nERROR: No matching distribution found\n")
        return subprocess.CompletedProcess(argv, 0, out)


def test_build_runs_build_reads_the_list_labels_and_pushes(tmp_path):
    engine = FakeEngine()
    modules = images.build(
        _spec(tmp_path, wheels=True), "localhost/x:1", "podman", push=True, run=engine, say=lambda m: None
    )
    assert modules == ["langchain_core", "llmstep_testpkg", "yaml"]
    verbs = [c[1] for c in engine.calls]
    assert verbs == ["build", "create", "cp", "rm", "build", "push"]
    assert engine.calls[2][2] == "ctr1:/opt/llmstep/modules.txt" and engine.calls[3] == ["podman", "rm", "ctr1"]
    assert engine.files[1] == 'FROM localhost/x:1\nLABEL io.llmstep.modules="langchain_core,llmstep_testpkg,yaml"\n'
    assert engine.calls[-1] == ["podman", "push", "localhost/x:1"]


def test_engine_failure_is_an_image_build_error_with_its_output(tmp_path):
    with pytest.raises(
        ImageBuildError,
        match=r"(?s)building localhost/x:1 failed \(`podman build` exited 125\).*"
        "No matching distribution found",
    ) as caught:
        images.build(_spec(tmp_path), "localhost/x:1", "podman", run=FakeEngine(fail="build"), say=lambda m: None)
    assert caught.value.exit_code == 1


def test_installed_modules_are_this_interpreters_beyond_the_standard_library():
    found = images.installed_modules()
    assert {"yaml", "langchain_core", "llmstep", "pydantic"} <= set(found)
    assert "os" not in found and "json" not in found and found == sorted(found)


def test_default_tag_of_a_project_follows_its_sources(tmp_path):
    spec = _spec(tmp_path, project=True)
    (tmp_path / "proj" / "p.py").write_text("X = 1\n")
    first = spec.default_tag()
    (tmp_path / "proj" / "__pycache__").mkdir()
    (tmp_path / "proj" / "__pycache__" / "p.pyc").write_bytes(b"x")
    assert spec.default_tag() == first
    (tmp_path / "proj" / "p.py").write_text("X = 2\n")
    assert spec.default_tag() != first
