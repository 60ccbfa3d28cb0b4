"""The README's two commands are the ones CI runs, and its CLI examples work."""

from __future__ import annotations

import re

from conftest import ROOT, run_cli


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S)][:2]


def test_readme_opens_with_install_and_test_commands():
    main, tests = readme_commands()
    assert "pip install" in main and "llmstep run" in main
    assert "pip install" in tests and "pytest" in tests


def test_ci_runs_the_readme_commands_and_fails_on_failure():
    ci = (ROOT / ".ci" / "run").read_text()
    main, tests = readme_commands()
    assert tests in ci and main in ci
    assert "set -euo pipefail" in ci
    # a failing pytest fails CI: the fast suite's exit is kept while the cluster suite still runs
    assert f"{tests} || status=$?" in ci and 'exit "$status"' in ci and 'exit "$cluster_status"' in ci


def test_readme_local_run_of_a_compiled_file(tmp_path):
    out = tmp_path / "qa.yaml"
    assert run_cli("compile", "examples/qa.py:chain", "-o", str(out), cwd=ROOT).returncode == 0
    result = run_cli("run", str(out), "-p", 'input={"question": "What does Argo do?"}', cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "offline answer: What does Argo do?"


def test_readme_local_batch_of_the_example_questions(tmp_path):
    import json

    assert (
        "llmstep run examples/qa.py:chain --inputs examples/questions.jsonl --parallelism 8"
        in (ROOT / "README.md").read_text()
    )
    result = run_cli(
        "run",
        "examples/qa.py:chain",
        "--inputs",
        "examples/questions.jsonl",
        "--parallelism",
        "8",
        "--runs-dir",
        str(tmp_path),
        cwd=ROOT,
        env={"OPENAI_API_KEY": ""},
    )
    assert result.returncode == 0, result.stderr
    questions = [
        json.loads(line)["question"] for line in (ROOT / "examples" / "questions.jsonl").read_text().splitlines()
    ]
    assert [json.loads(line) for line in result.stdout.splitlines()] == [
        {"index": i, "output": f"offline answer: {q}"} for i, q in enumerate(questions)
    ]


def test_readme_executor_rbac_is_what_the_test_cluster_runs():
    """The executor Role the README tells users to create is the one every Workflow of the
    cluster tests runs with (tests/cluster/argo.py runs these very commands)."""
    import sys

    sys.path.insert(0, str(ROOT / "tests" / "cluster"))
    from argo import EXECUTOR_RBAC

    text = (ROOT / "README.md").read_text()
    for command in EXECUTOR_RBAC:
        assert command.format(ns="argo") in text


def test_readme_cluster_commands_are_the_ones_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text()
    text = (ROOT / "README.md").read_text()
    for command in ("tests/cluster/cluster.py start", "tests/cluster/cluster.py stop", "-m pytest -m cluster"):
        assert command in text and command in ci


def test_readme_compile_with_an_input_runs_as_written(tmp_path):
    """`llmstep compile --input` writes the input parameter's value; the file then runs as it is."""
    import yaml

    out = tmp_path / "qa.yaml"
    made = run_cli(
        "compile", "examples/qa.py:chain", "-o", str(out), "--input", '{"question": "As written?"}', cwd=ROOT
    )
    assert made.returncode == 0, made.stderr
    [param] = yaml.safe_load(out.read_text())["spec"]["arguments"]["parameters"]
    assert param["value"] == '{"question": "As written?"}'  # plain JSON, as argo submit -p gives it
    result = run_cli("run", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "offline answer: As written?"


def test_readme_image_build_command(tmp_path):
    """The README's `llmstep image build` line parses and makes the Containerfile it describes."""
    import shlex

    text = (ROOT / "README.md").read_text()
    line = next(x for x in text.splitlines() if x.startswith("llmstep image build "))
    (tmp_path / "requirements.txt").write_text("my_pkg==1.0\n")
    (tmp_path / "wheels").mkdir()
    result = run_cli(*shlex.split(line)[1:], "--dry-run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (
        result.stdout.startswith("FROM llmstep:")
        and "--no-index --find-links /build/wheels -r /build/requirements.txt" in result.stdout
    )
