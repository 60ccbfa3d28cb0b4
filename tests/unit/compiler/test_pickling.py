"""Opt-in pickle payloads: user code travels by value; secrets never travel by pickle."""

from __future__ import annotations

import base64
import json
import textwrap

import pytest
from conftest import exec_step, run_cli, write_step
from langchain_core.runnables import RunnableLambda

import llmstep
from llmstep import serde

USER_SCRIPT = """
from langchain_core.runnables import RunnableLambda
from helper_mod import shout          # a sibling module of the script: user code too

SUFFIX = "!"

def add_suffix(text):
    return shout(text) + SUFFIX

chain = RunnableLambda(add_suffix) | RunnableLambda(lambda s: {"result": s, "n": len(s)})
"""


def test_lambdas_from_a_user_script_run_where_the_script_cannot_be_imported(tmp_path):
    src = tmp_path / "project"
    src.mkdir()
    (src / "helper_mod.py").write_text("def shout(t):\n    return t.upper()\n")
    (src / "my_chain.py").write_text(textwrap.dedent(USER_SCRIPT))
    out = tmp_path / "wf.yaml"
    result = run_cli("compile", "my_chain.py:chain", "--allow-pickle", "-o", str(out), cwd=src)
    assert result.returncode == 0, result.stderr
    # the user's source is gone: the step must not need it
    (src / "helper_mod.py").unlink()
    (src / "my_chain.py").unlink()
    import yaml

    doc = yaml.safe_load(out.read_text())
    payloads = [
        json.loads(a["raw"]["data"])
        for t in doc["spec"]["templates"][1:]
        for a in t["inputs"]["artifacts"]
        if a["name"] == "payload"
    ]
    first = write_step(tmp_path / "s1", payloads[0], '"hello"')
    r1 = exec_step(first)
    assert r1.returncode == 0, r1.stderr
    second = write_step(tmp_path / "s2", payloads[1], (first / "output.json").read_text())
    r2 = exec_step(second)
    assert r2.returncode == 0, r2.stderr
    assert serde.loads_value((second / "output.json").read_text()) == {"result": "HELLO!", "n": 6}
    blob = b"".join(base64.b64decode(p["data"]) for p in payloads)
    assert str(tmp_path).encode() not in blob  # no path of the compiling machine in the payload


def test_pickled_step_holding_a_secret_is_refused():
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(model="m", api_key="sk-should-never-be-pickled")
    sneaky = RunnableLambda(lambda x: llm.invoke(x))
    with pytest.raises(llmstep.CompileError, match="holds a secret"):
        llmstep.compile(sneaky, allow_pickle=True)


def test_chain_mixing_langchain_json_and_pickle():
    from langchain_openai import ChatOpenAI

    chain = RunnableLambda(lambda x: x) | ChatOpenAI(model="m", api_key="sk-mixed-1234567890")
    plan = llmstep.compile(chain, allow_pickle=True).plan
    assert [s.payload["format"] for s in plan.steps] == ["pickle", "lc"]
    assert plan.steps[1].secrets == ("OPENAI_API_KEY",)


def test_pickle_from_another_python_is_refused_clearly(tmp_path):
    payload = llmstep.compile(RunnableLambda(lambda x: x), allow_pickle=True).plan.steps[0].payload
    result = exec_step(write_step(tmp_path / "s", {**payload, "python": "3.99"}, '"x"'))
    assert result.returncode == 2 and "Python 3.99" in result.stderr


def _project(root, files: dict[str, str]):
    """The user's project: files written under ``root``, none of them installed."""
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text))
    return root


SIBLINGS = {
    "helper.py": """
        def shout(t):
            return t.upper()

        class Tagger:
            def tag(self, t):
                return f"<{t}>"
    """,
    "mypkg/__init__.py": "from .mod import exclaim\n",
    "mypkg/mod.py": "def exclaim(t):\n    return t + '!'\n",
    "mypkg/sub/__init__.py": "",
    "mypkg/sub/deep.py": "from ..mod import exclaim\n\ndef twice(t):\n    return exclaim(exclaim(t))\n",
    "nspkg/tool.py": "def dash(t):\n    return t + '-'\n",  # a namespace package: no __init__.py
    "chain.py": """
        from langchain_core.runnables import RunnableLambda
        import helper
        import helper as h
        import mypkg
        import mypkg.sub.deep
        import nspkg.tool
        from mypkg import mod

        def use_alias(t):
            return h.Tagger().tag(t)

        chain = (RunnableLambda(lambda t: helper.shout(t)) | RunnableLambda(use_alias)
                 | RunnableLambda(lambda t: mod.exclaim(t)) | RunnableLambda(lambda t: mypkg.exclaim(t))
                 | RunnableLambda(lambda t: mypkg.sub.deep.twice(t)) | RunnableLambda(lambda t: nspkg.tool.dash(t)))
    """,
}


def test_modules_the_chain_imports_travel_by_value(tmp_path):
    """`import helper`, `import helper as h`, `from pkg import mod`, `import pkg.sub.mod` and a
    namespace package: a step run from another folder, which cannot import the project by path,
    gets each module by value (it said No module named 'helper')."""
    project = _project(tmp_path / "project", SIBLINGS)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    ref = f"{project / 'chain.py'}:chain"
    result = run_cli("run", ref, "--allow-pickle", "--input", '"hi"', cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "<HI>!!!!-"
    out = tmp_path / "wf.yaml"
    assert run_cli("compile", ref, "--allow-pickle", "-o", str(out), cwd=elsewhere).returncode == 0
    import yaml

    doc = yaml.safe_load(out.read_text())
    blobs = [
        base64.b64decode(json.loads(a["raw"]["data"])["data"])
        for t in doc["spec"]["templates"][1:]
        for a in t["inputs"]["artifacts"]
        if a["name"] == "payload"
    ]
    assert len(blobs) == 6
    assert not any(str(tmp_path).encode() in b for b in blobs)  # no module's path of this machine travels
    assert not any(b"SourceFileLoader" in b or b"ModuleSpec" in b for b in blobs)


def test_a_module_of_the_project_named_by_the_pickle_is_refused_at_compile(tmp_path):
    # An object whose __reduce__ returns a name is looked up in its module by name when loaded:
    # a module of the project cannot be imported in the step, so compile says so.
    project = _project(
        tmp_path / "project",
        {
            "flags.py": """
            class _Default:
                def __reduce__(self):
                    return "DEFAULT"

            DEFAULT = _Default()
        """,
            "chain.py": """
            from langchain_core.runnables import RunnableLambda
            from flags import DEFAULT

            chain = RunnableLambda(lambda t, d=DEFAULT: t)
        """,
        },
    )
    result = run_cli("compile", f"{project / 'chain.py'}:chain", "--allow-pickle", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "refers to 'DEFAULT' of the module 'flags' (project/flags.py) by name" in result.stderr
    assert "Install your project in the step image" in result.stderr


def test_a_secret_in_a_module_that_travels_by_value_is_refused(tmp_path):
    project = _project(
        tmp_path / "project",
        {
            "settings.py": 'API_TOKEN = "tok-live-0123456789abcdef0123"\n\ndef fmt(t):\n    return t\n',
            "chain.py": """
            from langchain_core.runnables import RunnableLambda
            import settings

            chain = RunnableLambda(lambda t: settings.fmt(t))
        """,
        },
    )
    result = run_cli("compile", f"{project / 'chain.py'}:chain", "--allow-pickle", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "API_TOKEN" in result.stderr and "tok-live-0123456789abcdef0123" not in result.stderr


def test_names_by_reference_reads_globals_and_cloudpickles_module_imports():
    import cloudpickle

    from llmstep.compiler.pickling import names_by_reference

    def uses_json(x):
        return json.dumps(x) + textwrap.dedent(x)

    names = names_by_reference(cloudpickle.dumps([uses_json, json, textwrap.dedent, textwrap], protocol=5))
    assert names["json"] == "the module itself"  # a module the function uses: cloudpickle's subimport
    assert names["textwrap"] == "'dedent'"  # a function by reference (the module comes again, memoized)
    assert "cloudpickle.cloudpickle" in names and "tests" not in " ".join(names)


_OWN_SENTINEL = object()


def test_a_sentinel_of_an_installed_module_keeps_its_identity():
    """A library compares its sentinels with ``is`` (LangGraph's ``MISSING``): pickled by value it
    would load as a new object, so a sentinel that is a global of an installed module travels as
    that global."""
    import dataclasses
    import pickle

    from langchain_core.utils import pydantic as lc_pydantic

    from llmstep.compiler.pickling import dumps, names_by_reference

    def defaults(a=dataclasses.MISSING, b=lc_pydantic.NO_DEFAULT):
        return a is dataclasses.MISSING, b is lc_pydantic.NO_DEFAULT

    blob = dumps(defaults, where="defaults")
    assert pickle.loads(blob)() == (True, True)
    names = names_by_reference(blob)
    assert names["dataclasses"] == "the module itself" and names["langchain_core.utils.pydantic"] == "the module itself"


def test_an_object_with_state_and_a_sentinel_of_the_users_code_still_travel_by_value():
    """Only what means nothing but its identity goes by reference: a global with state may have been
    set at run time (it travels as it is now), and the step cannot import the user's modules."""
    import pickle

    from llmstep.compiler.pickling import dumps, names_by_reference, only_identity

    def state(encoder=json._default_encoder, own=_OWN_SENTINEL):
        return encoder, own

    blob = dumps(state, where="state")
    encoder, own = pickle.loads(blob)()
    assert encoder is not json._default_encoder and vars(encoder) == vars(json._default_encoder)
    assert own is not _OWN_SENTINEL and type(own) is object
    assert not any(module.endswith("test_pickling") for module in names_by_reference(blob))
    assert only_identity(object()) and not only_identity(json._default_encoder)
