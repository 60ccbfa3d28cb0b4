"""`llmstep image build` with podman: a chain whose step imports a package the default step image
does not have runs in an image built with that package (offline, from a wheel directory) and equals
invoke; in the default image the step fails, and compile's warning names the module first.

Needs podman and LLMSTEP_TEST_BASE_IMAGE, as tests/test_container.py, whose step image (the
session's ``step_image``) this builds on: it is built once when both run.
"""

from __future__ import annotations

import base64
import hashlib
import os
import sys
import warnings
import zipfile

import pytest
from conftest import CONTAINER_MARKS, run_cli
from langchain_core.runnables import RunnableLambda

import llmstep
from llmstep.compiler import pickling
from llmstep.errors import RunFailed
from llmstep.local import image_check
from llmstep.local.image_check import MissingModuleWarning

pytestmark = CONTAINER_MARKS
DEPS_TAG = "localhost/llmstep-test-deps:latest"
PACKAGE = "llmstep_testpkg"
SOURCE = "def shout(text):\n    return str(text).upper() + '!'\n"


def make_wheel(folder):
    """A wheel of the tiny package ``llmstep_testpkg`` (written by hand: nothing is downloaded)."""
    dist = f"{PACKAGE}-1.0.dist-info"
    files = {
        f"{PACKAGE}/__init__.py": SOURCE,
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {PACKAGE}\nVersion: 1.0\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: llmstep-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{dist}/top_level.txt": f"{PACKAGE}\n",
    }
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(text.encode())}")
    files[f"{dist}/RECORD"] = "\n".join([*record, f"{dist}/RECORD,,"]) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{PACKAGE}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as whl:
        for name, text in files.items():
            whl.writestr(name, text)
    return path


@pytest.fixture(scope="module")
def images(tmp_path_factory, step_image):
    work = tmp_path_factory.mktemp("deps")
    make_wheel(work / "wheels")
    (work / "requirements.txt").write_text(f"{PACKAGE}==1.0\n")
    built = run_cli(
        "image",
        "build",
        "--from",
        step_image,
        "-r",
        "requirements.txt",
        "--wheels",
        "wheels",
        "--tag",
        DEPS_TAG,
        "--engine",
        "podman",
        cwd=work,
        timeout=1200,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    assert built.stdout.strip() == DEPS_TAG
    assert f'llmstep.compile(chain, image="{DEPS_TAG}")' in built.stderr
    return step_image, DEPS_TAG


@pytest.fixture
def testpkg(tmp_path, monkeypatch):
    """``llmstep_testpkg`` importable here as an installed package (so its function travels by
    reference, as one from any installed distribution does)."""
    site = tmp_path / "site"
    with zipfile.ZipFile(make_wheel(tmp_path / "w")) as whl:
        whl.extractall(site)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(pickling, "_INSTALLED", (*pickling._INSTALLED, os.path.realpath(site)))
    image_check.engine_modules.cache_clear()
    yield __import__(PACKAGE)
    sys.modules.pop(PACKAGE, None)
    image_check.engine_modules.cache_clear()


def test_a_step_needing_a_package_runs_in_the_image_built_with_it(images, testpkg, tmp_path):
    default, deps = images
    chain = RunnableLambda(testpkg.shout)
    with warnings.catch_warnings():
        warnings.simplefilter("error", MissingModuleWarning)  # the image records the package: no warning
        compiled = llmstep.compile(chain, allow_pickle=True, image=deps)
    assert compiled.run_local("boxed", isolation="container", runs_dir=tmp_path / "r") == chain.invoke("boxed")

    with pytest.warns(MissingModuleWarning) as caught:
        in_default = llmstep.compile(chain, allow_pickle=True, image=default)
    message = str(caught[0].message)
    assert f"imports the module '{PACKAGE}'" in message and f"the image '{default}'" in message
    assert caught[0].filename == __file__
    with pytest.raises(RunFailed, match=f"No module named '{PACKAGE}'"):
        in_default.run_local("boxed", isolation="container", runs_dir=tmp_path / "r2")


def test_both_images_record_their_modules(images):
    default, deps = images
    image_check.engine_modules.cache_clear()
    in_default, in_deps = image_check.engine_modules(default), image_check.engine_modules(deps)
    assert in_default is not None and in_deps is not None
    assert {"llmstep", "langchain_core", "langchain_openai", "cloudpickle"} <= in_default
    assert PACKAGE not in in_default and in_default <= in_deps
    assert PACKAGE in in_deps and "pip" not in in_deps
