"""Rendered Workflows kept between processes: a new process renders a chain it rendered before
without importing Hera, gets the very same document, and renders afresh when anything the
rendering depends on changes (the chain, llmstep's code) or when it has imported Hera itself.
The rendering processes import a copy of llmstep, so that an edit to its code is made to the copy."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT, copy_of_llmstep

RENDER = """
import json, sys
if sys.argv[2] == "hera-first":
    import hera.workflows  # a process that uses Hera itself (and may have set its global defaults)
sys.path.insert(0, {tests!r})
import llmstep
from chains import qa_prompt
from llmstep.offline import OfflineChatModel
chain = qa_prompt() | OfflineChatModel(prefix=sys.argv[1])
doc = llmstep.compile(chain).to_dict()
print(json.dumps({{"hera_imported": "hera" in sys.modules, "doc": doc, "llmstep": llmstep.__file__}}))
"""


@pytest.fixture
def source(tmp_path):
    """The llmstep package the rendering processes import: a copy, ``source/llmstep``."""
    return copy_of_llmstep(tmp_path / "src")


@pytest.fixture
def render(tmp_path, source):
    path = [str(source), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "PYTHONPATH": os.pathsep.join(path)}

    def run(prefix: str = "A", mode: str = "") -> dict:
        code = RENDER.format(tests=str(ROOT / "tests"))
        result = subprocess.run(
            [sys.executable, "-c", code, prefix, mode], env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
        out = json.loads(result.stdout)
        assert out["llmstep"] == str(source / "llmstep" / "__init__.py")  # the copy, not the repository's
        return out

    return run


def _entries(tmp_path):
    return sorted((tmp_path / "cache" / "llmstep" / "render").glob("argo-*.json"))


def test_a_new_process_renders_a_chain_it_rendered_before_without_hera(tmp_path, render):
    first = render()
    assert first["hera_imported"] is True  # nothing cached yet: Hera rendered it
    [entry] = _entries(tmp_path)
    again = render()
    assert again["hera_imported"] is False and again["doc"] == first["doc"]
    other = render(prefix="B")  # another chain: another key, rendered by Hera
    assert other["hera_imported"] is True and other["doc"] != first["doc"]
    assert len(_entries(tmp_path)) == 2 and entry in _entries(tmp_path)


def test_the_cache_is_what_a_new_process_reads_and_a_hera_user_does_not(tmp_path, render):
    real = render()["doc"]
    [entry] = _entries(tmp_path)
    planted = json.loads(entry.read_text())
    planted["metadata"]["annotations"]["planted"] = "yes"
    entry.write_text(json.dumps(planted))
    assert render()["doc"] == planted  # proves the entry is what is read
    assert render(mode="hera-first")["doc"] == real  # Hera imported first: rendered afresh


def test_an_edit_to_llmstep_makes_a_new_key(tmp_path, render, source):
    render()
    assert render()["hera_imported"] is False  # the same code: the entry is used
    _touch(source / "llmstep" / "render" / "tekton.py")  # any module of the copy the process imports
    after_edit = render()
    assert after_edit["hera_imported"] is True and len(_entries(tmp_path)) == 2


def _touch(module):
    before = os.stat(module)
    os.utime(module, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))


def test_an_edit_to_a_module_outside_render_makes_a_new_key(tmp_path, render, source):
    """The rendering reads facts that live outside render/ (names, fields, payload text, settings):
    an edit to any of them must not serve the Workflow rendered before it."""
    render()
    assert render()["hera_imported"] is False
    edited = [
        "contract.py",
        "plan.py",
        "serde.py",
        "payloads.py",
        "naming.py",
        "compiler/naming.py",
        "diagnose/settings.py",
        "shapes.py",
    ]
    for i, name in enumerate(edited, start=2):
        _touch(source / "llmstep" / name)
        assert render()["hera_imported"] is True, f"an edit to {name} served the cached Workflow"
        assert len(_entries(tmp_path)) == i


def test_an_edit_of_the_same_modification_time_makes_a_new_key(tmp_path, render, source):
    # a file rewritten within the file system's time granularity: its size still tells
    render()
    module = source / "llmstep" / "contract.py"
    before = os.stat(module)
    module.write_text(module.read_text() + "\n# edited\n")
    os.utime(module, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert render()["hera_imported"] is True and len(_entries(tmp_path)) == 2


def test_the_key_covers_every_llmstep_module_the_rendering_loads():
    """The class, not the list: whatever llmstep module a rendering imports is in the key."""
    from chains import qa_chain

    import llmstep
    from llmstep.render import cache
    from llmstep.render.argo import render_dict

    compiled = llmstep.compile(qa_chain())
    render_dict(compiled.plan)
    compiled.to_tekton_yaml()
    package = os.path.dirname(llmstep.__file__)
    loaded = {
        os.path.abspath(m.__file__)
        for m in list(sys.modules.values())
        if getattr(m, "__file__", None) and os.path.abspath(m.__file__).startswith(package + os.sep)
    }
    stamped = {path for path, _, _ in cache.source_stamps()}
    assert loaded and loaded <= stamped, sorted(loaded - stamped)


def test_only_the_newest_entries_are_kept(tmp_path, monkeypatch):
    from llmstep.render import cache

    monkeypatch.setattr(cache, "KEEP", 2)
    folder = tmp_path / "render"
    for i in range(3):
        cache._keep(str(folder / f"argo-{i}.json"), {"n": i})
        os.utime(folder / f"argo-{i}.json", ns=(i * 10**9, i * 10**9))  # distinct ages, oldest first
    cache._keep(str(folder / "argo-3.json"), {"n": 3})
    assert sorted(p.name for p in folder.iterdir()) == ["argo-2.json", "argo-3.json"]
    assert json.loads((folder / "argo-3.json").read_text()) == {"n": 3}


def test_render_cache_files_are_private_to_the_user(tmp_path, render):
    old = os.umask(0o022)
    try:
        render()
    finally:
        os.umask(old)
    [entry] = _entries(tmp_path)
    assert entry.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "cache" / "llmstep" / "render").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "cache" / "llmstep").stat().st_mode & 0o777 == 0o700


def test_render_cache_neither_reads_nor_keeps_an_entry_others_can_read(tmp_path, render):
    render()
    [entry] = _entries(tmp_path)
    planted = json.loads(entry.read_text())
    planted["metadata"]["annotations"]["planted"] = "yes"
    entry.write_text(json.dumps(planted))
    entry.chmod(0o644)  # as entries were written before they were private (and could hold a key)
    again = render()
    assert again["hera_imported"] is True and "planted" not in again["doc"]["metadata"]["annotations"]
    [kept] = _entries(tmp_path)
    assert kept.stat().st_mode & 0o777 == 0o600 and "planted" not in kept.read_text()


def test_render_cache_never_keeps_a_payload_holding_a_secret(tmp_path, monkeypatch):
    # A plan not made by compile (Plan is public data) whose payload holds a key in a header.
    import dataclasses

    from chains import qa_chain

    import llmstep
    from llmstep.render import cache

    plan = llmstep.compile(qa_chain()).plan
    step = plan.steps[1]
    payload = json.loads(json.dumps(step.payload))
    payload["data"]["kwargs"]["default_headers"] = {"X-Api-Key": "sk-test-handmade-0123456789"}
    plan = dataclasses.replace(plan, steps=(plan.steps[0], dataclasses.replace(step, payload=payload), *plan.steps[2:]))
    entry = tmp_path / "render" / "argo-x.json"
    monkeypatch.setattr(cache, "_entry", lambda plan, batch, folder: str(entry))
    doc = llmstep.Compiled(plan).to_dict()
    assert "sk-test-handmade-0123456789" in json.dumps(doc)  # rendered as asked...
    assert not entry.exists()  # ...but never kept on disk
    clean = llmstep.compile(qa_chain()).plan
    cache.argo_dict(clean, folder=str(tmp_path))
    assert not entry.exists()  # a caller that checks nothing keeps nothing
    llmstep.Compiled(clean).to_dict()
    assert entry.exists()  # the same path keeps a plan without a secret
