"""What `llmstep runs` and `llmstep show` print (llmstep.cli.show): a run's steps in run order in the engine's
words, a tool-call-only answer, and JSON that never holds NaN."""

from __future__ import annotations

import json

from conftest import run_cli

SHOWN_CHAIN = (
    "from langchain_core.messages import AIMessage\nfrom langchain_core.runnables import RunnableLambda\n"
    "def boom(x):\n    raise ValueError('boom')\n"
    "def calls_tools(x):\n"
    "    return AIMessage(content='', tool_calls=[{'name': 'search', 'args': {'q': x}, 'id': 'c1'},\n"
    "                                             {'name': 'fetch', 'args': {}, 'id': 'c2'}])\n"
    "first = RunnableLambda(lambda x: x + '!').with_config(run_name='zeta_first')\n"
    "failing = first | RunnableLambda(boom) | RunnableLambda(lambda x: x, name='alpha') | RunnableLambda(lambda x: x)\n"
    "tools = first | RunnableLambda(calls_tools)\n"
)


def test_show_lists_steps_in_run_order_in_the_engines_words(tmp_path):
    """Steps as they ran (not alphabetically), a step that never started as its engine says it
    (Argo: Omitted; Tekton: Skipped), never Pending after the run ended; a step named by its
    run_name, as LangSmith shows it."""
    (tmp_path / "shown.py").write_text(SHOWN_CHAIN)
    for engine, never in (("argo", "Omitted"), ("tekton", "Skipped")):
        failed = run_cli(
            "run", "shown.py:failing", "--allow-pickle", "--engine", engine, "--input", '"x"', cwd=tmp_path
        )
        assert failed.returncode == 1, failed.stderr
        run_id = failed.stderr.split("run --resume ")[1].split()[0]
        shown = run_cli("show", run_id, cwd=tmp_path).stdout
        rows = [line.split() for line in shown.splitlines() if line.startswith("  ") and not line.startswith("      ")]
        steps = [(r[0].lower(), r[1]) for r in rows if r[0].lower() != "on-failure"]
        assert steps == [
            ("zeta-first", "Succeeded"),
            ("boom", "Failed"),
            ("alpha", never),
            ("runnablelambda", never),
        ], shown
        assert "Pending" not in shown
        report = json.loads(run_cli("show", run_id, "--json", cwd=tmp_path).stdout)
        order = [t.lower() for t in report["steps"] if t != "on-failure"]
        assert order == ["zeta-first", "boom", "alpha", "runnablelambda"]
        assert {report["steps"][t]["phase"] for t in report["steps"] if t.lower() in ("alpha", "runnablelambda")} == {
            never
        }
        one = run_cli("show", run_id, next(t for t in report["steps"] if t.lower() == "alpha"), cwd=tmp_path).stdout
        assert one.split()[:3] == ["step", one.split()[1], never]


def test_a_tool_call_only_answer_shows_its_tool_calls(tmp_path):
    (tmp_path / "shown.py").write_text(SHOWN_CHAIN)
    ran = run_cli("run", "shown.py:tools", "--allow-pickle", "--input", '"argo"', cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip().splitlines() == ['tool call: search({"q": "argo!"})', "tool call: fetch({})"]
    run_id = json.loads(run_cli("runs", "--json", cwd=tmp_path).stdout)[0]["run"]
    shown = run_cli("show", run_id, cwd=tmp_path).stdout
    assert 'out tool call: search({"q": "argo!"}) tool call: fetch({})' in shown


def _strict_json(text: str):
    def refuse(word):
        raise AssertionError(f"{word} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_json_never_prints_nan(tmp_path):
    from conftest import chain_module

    chain_module(
        tmp_path,
        "from langchain_core.runnables import RunnableLambda\n"
        "chain = RunnableLambda(lambda x: {'score': float('nan'), 'big': float('inf'), 'ok': 1.5})\n",
    )
    result = run_cli(
        "run",
        "mychain.py:chain",
        "--allow-pickle",
        "--input",
        "{}",
        "--json",
        "--runs-dir",
        str(tmp_path / "r"),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert _strict_json(result.stdout)["output"] == {"score": None, "big": None, "ok": 1.5}
    (tmp_path / "inputs.jsonl").write_text("{}\n")
    result = run_cli(
        "run",
        "mychain.py:chain",
        "--allow-pickle",
        "--inputs",
        "inputs.jsonl",
        "--runs-dir",
        str(tmp_path / "r"),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert _strict_json(result.stdout.splitlines()[0])["output"]["score"] is None
