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

USER_SCRIPT = '''
from langchain_core.runnables import RunnableLambda
from helper_mod import shout          # a sibling module of the script: user code too

SUFFIX = "!"

def add_suffix(text):
    return shout(text) + SUFFIX

chain = RunnableLambda(add_suffix) | RunnableLambda(lambda s: {"result": s, "n": len(s)})
'''


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
    payloads = [json.loads(a["raw"]["data"]) for t in doc["spec"]["templates"][1:]
                for a in t["inputs"]["artifacts"] if a["name"] == "payload"]
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
