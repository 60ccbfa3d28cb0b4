"""A run's token totals: a chain with two model steps against a loopback server that counts the
tokens of each request; the run's totals per model are exactly what the server reported, on both
local engines, in ``llmstep run``'s last line, ``llmstep show`` (text and ``--json``) and with
``--prices`` an estimated cost; a bad price table is a usage error naming the file and field."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli
from openai_server import FakeOpenAI

import llmstep
from llmstep.local.records import RunRecord


def _counts(body: dict, text: str) -> tuple[int, int]:
    """Tokens as this server counts them: words of every message sent, words of the reply."""
    return sum(len(str(m.get("content", "")).split()) for m in body["messages"]), len(text.split())


def _counted(tokens: dict) -> dict:
    """The counts the server reports (LangChain adds empty ``*_token_details``)."""
    return {m: {k: c[k] for k in ("input_tokens", "output_tokens", "total_tokens")} for m, c in tokens.items()}


def _expected(server: FakeOpenAI) -> dict:
    out: dict = {}
    for u in server.usage:
        t = out.setdefault(u["model"], {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0})
        t["input_tokens"] += u["prompt_tokens"]
        t["output_tokens"] += u["completion_tokens"]
        t["total_tokens"] += u["total_tokens"]
    return out




def _chain(url: str):
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_openai import ChatOpenAI

    first = ChatOpenAI(model="model-a", api_key="sk-placeholder", base_url=url, max_retries=0)
    second = ChatOpenAI(model="model-b", api_key="sk-placeholder", base_url=url, max_retries=0)
    return (ChatPromptTemplate.from_messages([("human", "tell me about {topic} in a few words")]) | first
            | StrOutputParser() | ChatPromptTemplate.from_messages([("human", "now shorter: {x}")]) | second)


TWO_MODELS = """
from langchain_core.prompts import ChatPromptTemplate
from langchain_openai import ChatOpenAI

chain = (ChatPromptTemplate.from_messages([("human", "tell me about {{topic}} in a few words")])
         | ChatOpenAI(model="model-a", api_key="sk-placeholder", base_url="{url}", max_retries=0)
         | ChatPromptTemplate.from_messages([("human", "now shorter: {{x}}")])
         | ChatOpenAI(model="model-b", api_key="sk-placeholder", base_url="{url}", max_retries=0))
"""


@pytest.mark.parametrize("engine", ["argo", "tekton"])
def test_run_totals_are_the_servers_counts_on_both_engines(tmp_path, engine):
    with FakeOpenAI(counts=_counts) as server:
        run = llmstep.compile(_chain(server.url)).local_run({"topic": "tokens and their counts"}, engine=engine,
                                                            secrets={"OPENAI_API_KEY": "sk-test"}, runs_dir=tmp_path)
    assert "echo" in run.result().content
    tokens = run.usage()
    assert set(tokens) == {"model-a", "model-b"} and len(server.usage) == 2
    assert _counted(tokens) == _expected(server)
    assert RunRecord.open(tmp_path, run.run_id).usage() == tokens  # read back from the record
    assert tokens["model-a"]["input_tokens"] != tokens["model-b"]["input_tokens"]  # each step counted as its own


def test_cli_run_show_json_and_prices(tmp_path):
    with FakeOpenAI(counts=_counts) as server:
        (tmp_path / "two.py").write_text(TWO_MODELS.format(url=server.url))
        env = {"OPENAI_API_KEY": "sk-test"}
        prices = tmp_path / "prices.yaml"
        prices.write_text("model-a: {input: 2.5, output: 10}\n")
        ran = run_cli("run", "two.py:chain", "--input", '{"topic": "a b c"}', "--allow-pickle", "--prices", str(prices),
                      env=env, cwd=tmp_path)
        assert ran.returncode == 0, ran.stderr
        expected = _expected(server)
        last = ran.stderr.strip().splitlines()[-1]
        a, b = expected["model-a"], expected["model-b"]
        assert last.startswith(f"llmstep: tokens: model-a input={a['input_tokens']} output={a['output_tokens']} "
                               f"total={a['total_tokens']}; model-b input={b['input_tokens']}")
        cost_a = (a["input_tokens"] * 2.5 + a["output_tokens"] * 10) / 1_000_000
        assert f"estimated cost (prices from {prices}): model-a {cost_a:.6f}; model-b not in the price table" in last
        runs = json.loads(run_cli("runs", "--json", cwd=tmp_path).stdout)
        run_id = runs[0]["run"]
        shown = json.loads(run_cli("show", run_id, "--json", "--prices", str(prices), cwd=tmp_path).stdout)
        assert _counted(shown["usage"]) == expected
        assert shown["cost"] == {"estimate": True, "prices": str(prices), "perModel": {"model-a": cost_a},
                                 "total": cost_a, "missing": ["model-b"]}
        steps = [_counted(s["usage"]) for s in shown["steps"].values() if s.get("usage")]
        assert sorted(steps, key=str) == sorted([{"model-a": a}, {"model-b": b}], key=str)
        text = run_cli("show", run_id, cwd=tmp_path).stdout
        assert f"tokens: model-a input={a['input_tokens']}" in text and "estimated cost" not in text
        priced = run_cli("show", run_id, "--prices", str(prices), cwd=tmp_path).stdout.splitlines()
        assert priced[-1] == (f"estimated cost (prices from {prices}): model-a {cost_a:.6f}; model-b not in the price "
                              f"table; total {cost_a:.6f} (without the models missing from the table)")
        as_json = json.loads(run_cli("run", "two.py:chain", "--input", '{"topic": "x"}', "--allow-pickle", "--json",
                                     env=env, cwd=tmp_path).stdout)
        assert set(as_json["usage"]) == {"model-a", "model-b"} and "cost" not in as_json


def test_a_failed_run_counts_the_steps_that_called_the_model(tmp_path):
    from langchain_core.runnables import RunnableLambda

    def refuse(_):
        raise RuntimeError("no")

    with FakeOpenAI(counts=_counts) as server:
        chain = _chain(server.url) | RunnableLambda(refuse)
        run = llmstep.compile(chain, allow_pickle=True).local_run({"topic": "t"}, secrets={"OPENAI_API_KEY": "sk-test"},
                                                                  runs_dir=tmp_path)
    assert run.phase == "Failed"
    with pytest.raises(llmstep.RunFailed):
        run.result()
    assert _counted(run.usage()) == _expected(server) and len(server.usage) == 2


def test_no_model_no_line(tmp_path):
    ran = run_cli("run", "--allow-pickle", "-p", "input=1", str(_lambda_file(tmp_path)) + ":chain", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert "tokens" not in ran.stderr


def _lambda_file(tmp_path):
    path = tmp_path / "plain.py"
    path.write_text("from langchain_core.runnables import RunnableLambda\nchain = RunnableLambda(lambda x: x)\n")
    return path.name


@pytest.mark.parametrize(("text", "message"), [
    ("[1, 2]", "expected a table of models"),
    ("m: 3", "m: expected {input: PRICE, output: PRICE}, found int"),
    ("m: {input: 1}", "m.output: expected a price per 1,000,000 tokens (a number, 0 or more), found missing"),
    ("m: {input: -1, output: 1}", "m.input: expected a price per 1,000,000 tokens (a number, 0 or more), found -1"),
    ('{"m": {"input": "1", "output": 1}}', "m.input: expected a price per 1,000,000 tokens (a number, 0 or more), found '1'"),
    ("m: {input: 1, output: 1, cached: 1}", "m.cached: not a field"),
    ("m: [", "neither JSON nor YAML"),
])
def test_bad_price_file_is_a_usage_error_naming_file_and_field(tmp_path, text, message):
    prices = tmp_path / "p.yaml"
    prices.write_text(text)
    result = run_cli("show", "no-such-run", "--prices", str(prices), cwd=tmp_path)
    assert result.returncode == 2 and f"--prices {prices}: {message}" in result.stderr, result.stderr
