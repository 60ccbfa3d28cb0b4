"""The `llmstep` command: compile the examples, clear errors, documented exit codes."""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import ROOT, run_cli
from schemas import argo_errors


@pytest.mark.parametrize(("ref", "extra"), [("examples/qa.py:chain", []), ("examples/parallel.py:chain", []),
                                            ("examples/retrieval.py:chain", ["--allow-pickle"])])
def test_compile_examples(ref, extra, tmp_path):
    out = tmp_path / "wf.yaml"
    result = run_cli("compile", ref, "-o", str(out), "--image", "registry.example/llmstep:0.1", *extra, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    doc = yaml.safe_load(out.read_text())
    assert argo_errors(doc, "v4.1.2") == []
    images = {t["container"]["image"] for t in doc["spec"]["templates"] if "container" in t}
    assert images == {"registry.example/llmstep:0.1"}
    assert doc["metadata"]["generateName"] == ref.split("/")[1].split(".")[0] + "-"


def test_compile_to_stdout_with_options(tmp_path):
    result = run_cli("compile", "examples/qa.py:chain", "--name", "my-qa", "--data", "parameters", cwd=ROOT)
    assert result.returncode == 0, result.stderr
    doc = yaml.safe_load(result.stdout)
    assert doc["metadata"]["generateName"] == "my-qa-"
    assert "parameters.output" in result.stdout


def test_compile_accepts_a_module_reference(tmp_path):
    (tmp_path / "chainmod.py").write_text(
        "from langchain_core.prompts import PromptTemplate\nchain = PromptTemplate.from_template('{x}')\n"
    )
    result = run_cli("compile", "chainmod:chain", cwd=tmp_path, env={"PYTHONPATH": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert "PromptTemplate" in result.stdout


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["compile", "nope.py:chain"], 2, "no such file: nope.py"),
        (["compile", "examples/qa.py:missing"], 2, "has no attribute 'missing'"),
        (["compile", "examples/retrieval.py:NOTES"], 2, "is a list, not a Runnable"),
        (["compile", "examples/retrieval.py:chain"], 2, "allow_pickle=True"),
        (["compile", "examples/qa.py:chain", "--name", "BAD"], 2, "not a valid name"),
        (["compile", "no_such_module_xyz:chain"], 2, "cannot import no_such_module_xyz"),
        (["compile"], 2, "required: REF"),
        (["frobnicate"], 2, "invalid choice"),
    ],
)
def test_errors_are_clear_and_have_no_traceback(args, code, fragment):
    result = run_cli(*args, cwd=ROOT)
    assert result.returncode == code, result.stderr
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr


def test_debug_shows_the_traceback():
    result = run_cli("--debug", "compile", "examples/retrieval.py:chain", cwd=ROOT)
    assert result.returncode != 0 and "Traceback" in result.stderr


@pytest.mark.parametrize("command", [[], ["compile"], ["exec"], ["run"], ["runs"], ["show"]])
def test_help_on_every_command(command):
    result = run_cli(*command, "--help")
    assert result.returncode == 0 and "usage: llmstep" in result.stdout


def test_console_script_and_module_are_the_same_command():
    import subprocess
    import sys
    from pathlib import Path

    exe = Path(sys.executable).parent / "llmstep"  # installed beside the interpreter
    assert exe.is_file(), "the llmstep console script is installed"
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "exit codes" in out.stdout


@pytest.mark.parametrize("command", [["diagnose", "pod/web", "--dry-run"], ["submit", "examples/qa.py:chain"], ["result", "wf-1"]])
def test_unreachable_api_server_is_named_without_retry_noise(command, tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "dead",
        "clusters": [{"name": "dead", "cluster": {"server": "https://127.0.0.1:9"}}],  # nothing listens on port 9
        "contexts": [{"name": "dead", "context": {"cluster": "dead", "user": "u", "namespace": "shop"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
    }))  # fmt: skip
    result = run_cli(*command, "--kubeconfig", str(kubeconfig), cwd=ROOT)
    assert result.returncode == 1, result.stderr
    assert "cannot reach the Kubernetes API server at https://127.0.0.1:9: Failed to establish a new connection" in result.stderr
    assert "Retrying" not in result.stderr and "internal error" not in result.stderr and "Traceback" not in result.stderr
