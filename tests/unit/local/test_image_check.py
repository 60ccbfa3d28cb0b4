"""The check that a step's image has the modules its payload imports: the modules of each payload kind,
the warning at compile naming step, module and image, and the engine look-up of an image's module list
(never a process without an engine, once per image, none for a step every image serves)."""

from __future__ import annotations

import subprocess
import warnings

import yaml
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda

import llmstep
from llmstep.local import image_check
from llmstep.local.image_check import MissingModuleWarning


def test_payload_modules_of_each_payload_kind():
    lc = llmstep.compile(ChatPromptTemplate.from_template("hi {x}"), image_modules=False).plan.steps[0].payload
    assert set(image_check.payload_modules(lc)) == {"langchain_core"}
    pickled = llmstep.compile(RunnableLambda(yaml.safe_dump), allow_pickle=True, image_modules=False)
    assert "yaml" in image_check.payload_modules(pickled.plan.steps[0].payload)


def test_compile_warns_at_the_callers_line_naming_step_module_and_image():
    chain = RunnableLambda(yaml.safe_dump)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        llmstep.compile(
            chain,
            allow_pickle=True,
            image="localhost/slim:1",
            image_modules={"localhost/slim:1": ["langchain_core", "cloudpickle"]},
        )
    found = [w for w in caught if issubclass(w.category, MissingModuleWarning)]
    assert len(found) == 1 and found[0].filename == __file__
    message = str(found[0].message)
    assert "imports the module 'yaml'" in message and "'localhost/slim:1'" in message
    assert "llmstep image build --from localhost/slim:1 -r requirements.txt" in message
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the image has it, or the check is off: no warning
        llmstep.compile(
            chain, allow_pickle=True, image="i:1", image_modules={"i:1": ["yaml", "cloudpickle", "langchain_core"]}
        )
        llmstep.compile(chain, allow_pickle=True, image="localhost/slim:1", image_modules=False)


def test_no_engine_no_process(monkeypatch):
    def no_process(*a, **k):
        raise AssertionError("a process was started")

    monkeypatch.setattr(image_check.shutil, "which", lambda name: None)
    monkeypatch.setattr(image_check.subprocess, "run", no_process)
    image_check.engine_modules.cache_clear()
    assert image_check.engine_modules("llmstep:unknown-to-any-engine") is None
    image_check.engine_modules.cache_clear()


def test_engine_label_is_read_once_per_image(monkeypatch):
    calls = []

    def inspect(argv, **kwargs):
        calls.append(argv)
        return subprocess.CompletedProcess(argv, 0, "langchain_core,yaml\n", "")

    monkeypatch.setattr(image_check.shutil, "which", lambda name: "/bin/podman" if name == "podman" else None)
    monkeypatch.setattr(image_check.subprocess, "run", inspect)
    image_check.engine_modules.cache_clear()
    try:
        assert image_check.engine_modules("localhost/a:1") == {"langchain_core", "yaml"}
        assert image_check.engine_modules("localhost/a:1") == {"langchain_core", "yaml"}
        assert calls == [
            ["podman", "image", "inspect", "--format", '{{index .Labels "io.llmstep.modules"}}', "localhost/a:1"]
        ]
    finally:
        image_check.engine_modules.cache_clear()


def test_a_step_naming_only_what_every_image_has_needs_no_look_up():
    looked = []
    chain = ChatPromptTemplate.from_template("hi {x}") | llmstep.OfflineChatModel()
    plan = llmstep.compile(chain, image_modules=False).plan
    assert image_check.missing_modules(plan, lambda image: looked.append(image) or frozenset()) == []
    assert looked == []
    pickled = llmstep.compile(RunnableLambda(yaml.safe_dump), allow_pickle=True, image_modules=False).plan
    assert [
        m for _, _, m, _ in image_check.missing_modules(pickled, lambda image: looked.append(image) or frozenset())
    ] == ["yaml"]
    assert looked == [pickled.image]
