"""`llmstep run`, `runs` and `show`: a run's report as text or JSON, its record listed and shown
step by step, a failed run's exit code and its resume."""

from __future__ import annotations

import json

from conftest import ROOT, run_cli


def test_cli_run_json_runs_and_show(tmp_path):
    result = run_cli("run", f"{ROOT}/examples/qa.py:chain", "--input", '{"question": "json?"}', "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["phase"] == "Succeeded" and report["output"] == "offline answer: json?"
    assert set(report["steps"]) == {"ChatPromptTemplate", "OfflineChatModel", "StrOutputParser"}
    runs = run_cli("runs", cwd=tmp_path)
    assert report["run"] in runs.stdout and "Succeeded" in runs.stdout
    shown = run_cli("show", report["run"], cwd=tmp_path)
    assert "OfflineChatModel" in shown.stdout and "offline answer: json?" in shown.stdout
    step = run_cli("show", report["run"], "StrOutputParser", cwd=tmp_path)
    assert "--- output.json" in step.stdout and "--- log" in step.stdout
    missing = run_cli("show", report["run"], "Nope", cwd=tmp_path)
    assert missing.returncode == 2 and "no step 'Nope'" in missing.stderr


def test_cli_failed_run_exit_code_show_and_resume(tmp_path):
    flag = tmp_path / "flag"
    script = tmp_path / "gate_chain.py"
    script.write_text(
        "from pathlib import Path\nfrom langchain_core.runnables import RunnableLambda\n"
        f"FLAG = Path({str(flag)!r})\n"
        "def gate(x):\n    if not FLAG.exists():\n        raise RuntimeError('flag missing')\n    return x * 2\n"
        "chain = RunnableLambda(lambda x: x + 1) | RunnableLambda(gate)\n"
    )
    failed = run_cli("run", "gate_chain.py:chain", "--allow-pickle", "--input", "1", cwd=tmp_path)
    assert failed.returncode == 1
    assert "step gate" in failed.stderr and "RuntimeError: flag missing" in failed.stderr
    run_id = failed.stderr.split("run --resume ")[1].split()[0]
    shown = run_cli("show", run_id, cwd=tmp_path)
    assert "Failed" in shown.stdout and "flag missing" in shown.stdout
    flag.write_text("ok")
    resumed = run_cli("run", "--resume", run_id, "--allow-pickle", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.strip() == "4"
    assert "RunnableLambda succeeded" not in resumed.stderr  # the finished step was reused, not re-run


BOMB = "".join(f"    l{i}: &l{i} [{', '.join(['lol'] * 9 if i == 0 else [f'*l{i - 1}'] * 9)}]\n" for i in range(9))
DEEP_JSON = "[" * 30_000 + "]" * 30_000


def test_hostile_workflow_files_are_refused_with_exit_2_not_a_hang_or_a_crash(tmp_path):
    qa = (ROOT / "workflows" / "qa.yaml").read_text()
    bomb = tmp_path / "bomb.yaml"  # the billion laughs, in a field the runner carries
    bomb.write_text(qa.replace("metadata:\n", "metadata:\n  labels:\n" + BOMB, 1))
    deep_block = tmp_path / "deep-block.yaml"
    deep_block.write_text(qa + "status:\n  x:\n    " + "- " * 500 + "1\n")
    deep_flow = tmp_path / "deep.json"
    deep_flow.write_text('{"kind": "Workflow", "spec": ' + DEEP_JSON + "}")
    recursive = tmp_path / "recursive.yaml"
    recursive.write_text(qa.replace("metadata:\n", "metadata:\n  labels: &l {a: *l}\n", 1))
    for path, fragment in [
        (bomb, "excessive aliasing"),
        (deep_block, "more than 200 levels"),
        (deep_flow, "nesting depth"),
        (recursive, "refers to a node that contains it"),
    ]:
        result = run_cli("run", str(path), cwd=tmp_path, timeout=60)
        assert result.returncode == 2, (path.name, result.stderr)
        assert fragment in result.stderr and str(path) in result.stderr, result.stderr
        assert "internal error" not in result.stderr
