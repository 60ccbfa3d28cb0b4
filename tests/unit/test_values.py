"""Values between steps: every kind LangChain Runnables commonly pass travels, on both engines,
with the result equal to chain.invoke's; a value names a class and a step loads it only when the
compiled workflow vouches for it (which classes it declares: tests/unit/compiler/test_valuetypes.py)."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import uuid

import pytest
from conftest import ROOT, run_cli
from langchain_core.runnables import RunnableLambda
from value_chains import AI, DECLARED, Color, Legacy, Point, Reason, Verdict, same_values, value_corpus

import llmstep
from llmstep import serde, valueclasses, values
from llmstep.errors import PayloadError, RunFailed


@pytest.mark.parametrize("engine", ["argo", "tekton"])
@pytest.mark.parametrize("case", list(value_corpus()))
def test_every_value_kind_travels_and_equals_invoke(case, engine, tmp_path):
    chain, x = value_corpus()[case]
    want = chain.invoke(x)
    compiled = llmstep.compile(chain, allow_pickle=True, value_types=DECLARED)
    got = compiled.run_local(x, engine=engine, runs_dir=tmp_path / "runs", progress=False)
    same_values(got, want)


@pytest.mark.parametrize(
    "value",
    [
        (1, (2, "3")),
        {1, 2},
        frozenset({"a"}),
        b"\x00\xff",
        math.inf,
        -math.inf,
        dt.date(2026, 1, 2),
        dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC),
        dt.time(1, 2),
        dt.timedelta(days=-2, seconds=3),
        uuid.UUID(int=7),
        decimal.Decimal("3.140"),
        {7: "int key", (1, 2): "tuple key"},
        {"__llmstep__": "dict", "items": []},
        {"lc": 1, "type": "secret", "id": ["OPENAI_API_KEY"]},
        AI,
        Verdict(label="a", score=1, reasons=[Reason(text="r")]),
        Legacy(name="n"),
        Point(1, 2),
        Color.RED,
        [Point(0, 0), {"p": Point(1, 1)}],
    ],
)
def test_round_trip_of_each_kind(value):
    classes = valueclasses.Classes.of([Verdict, Reason, Legacy, Point, Color])
    text = serde.dumps_value(value, classes=classes)
    back = serde.loads_value(text, classes=classes)
    same_values(back, value)
    json.loads(text)  # strict JSON: no NaN, no Infinity


def test_a_zoneinfo_keeps_its_zone():
    from zoneinfo import ZoneInfo

    when = dt.datetime(2026, 7, 1, 12, tzinfo=ZoneInfo("Europe/Paris"))
    back = serde.loads_value(serde.dumps_value(when))
    assert back == when and back.tzinfo == ZoneInfo("Europe/Paris")


def test_a_user_dict_with_reserved_keys_stays_a_dict():
    for value in (
        {"__llmstep__": "model", "class": "os:system", "fields": {}},
        {"lc": 1, "type": "constructor", "id": ["langchain", "schema", "messages", "AIMessage"], "kwargs": {}},
    ):
        back = serde.loads_value(serde.dumps_value(value))
        assert back == value and type(back) is dict


def test_a_value_of_an_undeclared_class_fails_in_the_step_that_made_it(tmp_path):
    chain = RunnableLambda(lambda _: Point(1, 2)) | RunnableLambda(lambda p: p.x)
    with pytest.raises(RunFailed) as err:
        llmstep.compile(chain, allow_pickle=True).run_local(0, runs_dir=tmp_path / "runs", progress=False)
    message = str(err.value)
    assert "the output of step 'runnablelambda' is a Point (value_chains:Point)" in message
    assert "a class the compiled workflow does not declare" in message and "value_types=[Point]" in message


def test_a_tampered_value_naming_a_non_model_class_is_refused():
    for tag in ("model", "dataclass", "enum"):
        tree = {"__llmstep__": tag, "class": "subprocess:Popen", "fields": {}, "set": [], "name": "x"}
        with pytest.raises(PayloadError, match="is not a"):
            values.decode(tree, valueclasses.Classes(modules=True))


def test_user_input_that_looks_like_an_envelope_stays_data(tmp_path):
    lookalike = {"llmstep": serde.FORMAT_VERSION, "kind": "json", "value": {"a": 1}}
    chain = RunnableLambda(lambda d: sorted(d)) | RunnableLambda(lambda keys: keys)
    compiled = llmstep.compile(chain, allow_pickle=True)
    got = compiled.run_local(lookalike, runs_dir=tmp_path / "runs", progress=False)
    assert got == ["kind", "llmstep", "value"]
    # and as argo submit -p input= passes it, written by hand: still data
    (tmp_path / "wf.yaml").write_text(compiled.to_yaml())
    out = run_cli("run", "wf.yaml", "--allow-pickle", "-p", f"input={json.dumps(lookalike)}", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["output"] == ["kind", "llmstep", "value"]


def test_the_cli_prints_a_model_it_has_not_imported_as_its_data(tmp_path):
    chain_file = tmp_path / "structured.py"
    chain_file.write_text(
        "from langchain_core.runnables import RunnableLambda\nfrom pydantic import BaseModel\n\n"
        "class Verdict(BaseModel):\n    label: str\n    score: float\n\n"
        "def judge(x) -> Verdict:\n    return Verdict(label=x, score=0.5)\n\n"
        "chain = RunnableLambda(judge) | RunnableLambda(lambda v: v)\n"
    )
    ran = run_cli("run", f"{chain_file}:chain", "--allow-pickle", "--input", '"fine"', "--json", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["output"] == {"label": "fine", "score": 0.5}
    shown = run_cli("show", json.loads(ran.stdout)["run"], "--json", cwd=tmp_path)  # a new process: no Verdict class
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["output"] == {"label": "fine", "score": 0.5}


def test_a_chain_ending_in_a_prompt_prints_its_text(tmp_path):
    (tmp_path / "p.py").write_text(
        "from langchain_core.prompts import PromptTemplate\nchain = PromptTemplate.from_template('Say {word}!')\n"
    )
    ran = run_cli("run", f"{tmp_path / 'p.py'}:chain", "--input", '{"word": "hi"}', cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "Say hi!"


def test_each_step_loads_its_own_copy_of_a_stateful_object(tmp_path):
    """Documented in the README: a fake model used in two places answers 'first' twice."""
    from langchain_core.language_models import FakeListChatModel
    from langchain_core.output_parsers import StrOutputParser

    model = FakeListChatModel(responses=["first", "second"])
    chain = {"a": model | StrOutputParser(), "b": model | StrOutputParser()} | RunnableLambda(
        lambda d: [d["a"], d["b"]]
    )
    assert chain.invoke("q") == ["first", "second"]
    model.i = 0
    got = llmstep.compile(chain, allow_pickle=True).run_local("q", runs_dir=tmp_path / "runs", progress=False)
    assert got == ["first", "first"]


def test_readme_documents_values_and_stateful_objects():
    readme = (ROOT / "README.md").read_text()
    assert "## Values between steps" in readme and "value_types=" in readme
    assert "FakeListChatModel" in readme
