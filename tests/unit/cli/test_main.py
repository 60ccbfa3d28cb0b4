"""The `llmstep` command: compile the examples, clear errors, documented exit codes."""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import ROOT, run_cli
from schemas import argo_errors


@pytest.mark.parametrize(
    ("ref", "extra"),
    [
        ("examples/qa.py:chain", []),
        ("examples/parallel.py:chain", []),
        ("examples/retrieval.py:chain", ["--allow-pickle"]),
    ],
)
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


UNREACHABLE = "cannot reach the Kubernetes API server at https://127.0.0.1:9: Failed to establish a new connection"


@pytest.mark.parametrize(
    ("command", "fragment"),
    [
        (["diagnose", "pod/web", "--dry-run"], UNREACHABLE),
        (["submit", "examples/qa.py:chain"], UNREACHABLE),
        (["result", "wf-1"], UNREACHABLE),
        (
            ["diagnose", "-f", "README.md", "--api-key-secret", "app/KEY"],
            "cannot read the key from Secret app/KEY: Failed to establish a new connection: [Errno 111] Connection refused",
        ),
    ],
)
def test_unreachable_api_server_is_named_without_retry_noise(command, fragment, tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "dead",
                "clusters": [
                    {"name": "dead", "cluster": {"server": "https://127.0.0.1:9"}}
                ],  # nothing listens on port 9
                "contexts": [{"name": "dead", "context": {"cluster": "dead", "user": "u", "namespace": "shop"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
            }
        )
    )
    result = run_cli(*command, "--kubeconfig", str(kubeconfig), cwd=ROOT)
    assert result.returncode == 1, result.stderr
    assert fragment in result.stderr
    assert (
        "Retrying" not in result.stderr and "internal error" not in result.stderr and "Traceback" not in result.stderr
    )


@pytest.mark.parametrize("command", [["submit", "examples/qa.py:chain"], ["result", "wf-1"]])
def test_unreachable_argo_server_is_named_without_transport_wrappers(command):
    result = run_cli(*command, "--argo-server", "http://127.0.0.1:9", cwd=ROOT)  # nothing listens on port 9
    _clean(result, 1, "cannot reach the Argo Server at http://127.0.0.1:9/: Failed to establish a new connection")
    assert "Max retries exceeded" not in result.stderr and "HTTPConnectionPool" not in result.stderr


# ---------------------------------------------------------------- exit codes and messages (issue 16)


def _clean(result, code: int, *fragments: str) -> None:
    assert result.returncode == code, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "option",
    ["diagnose -f", "run examples/qa.py:chain --inputs", "run examples/qa.py:chain --secrets", "run", "submit"],
)
@pytest.mark.parametrize(
    ("content", "fragment"), [(None, "no such file"), (b"\xffnot utf-8", "not UTF-8 text (byte 0xff at offset 0)")]
)
def test_missing_or_non_utf8_file_is_named_exit_2(option, content, fragment, tmp_path):
    path = tmp_path / "input.yaml"
    if content is not None:
        path.write_bytes(content)
    result = run_cli(
        *option.split(),
        str(path),
        *(["--dry-run"] if option.startswith("diagnose") else []),
        cwd=ROOT,
        env={"LLMSTEP_RUNS_DIR": str(tmp_path / "runs")},
    )
    _clean(result, 2, f"{path}: {fragment}")


def test_unwritable_runs_dir_is_named_exit_2(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    result = run_cli(
        "run", "examples/qa.py:chain", "--input", '{"question": "q"}', "--runs-dir", str(blocker / "runs"), cwd=ROOT
    )
    _clean(result, 2, f"--runs-dir {blocker / 'runs'}: cannot write run records there")
    result = run_cli(
        "run", "examples/qa.py:chain", "--input", '{"question": "q"}', "--runs-dir", str(blocker), cwd=ROOT
    )
    _clean(result, 2, "(it is not a directory)")


def _closed_reader(*args: str, cwd=ROOT):
    """Run llmstep with its stdout's reader gone before it writes (what `| head` does, sooner)."""
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "llmstep", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        cwd=cwd,
    )
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    return proc.wait(timeout=120), stderr


def test_broken_pipe_is_silent(tmp_path):
    runs = tmp_path / "runs"
    done = run_cli(
        "run", "examples/qa.py:chain", "--input", '{"question": "q"}', "--runs-dir", str(runs), "--json", cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    run_id = json.loads(done.stdout)["run"]
    assert _closed_reader("show", run_id, "--runs-dir", str(runs)) == (141, "")
    big = tmp_path / "big.log"
    big.write_text("line\n" * 100_000)
    assert _closed_reader("diagnose", "-f", str(big), "--dry-run") == (141, "")


def test_name_leaves_room_for_batch_and_argo_suffix():
    result = run_cli("compile", "examples/qa.py:chain", "--name", "a" * 63, cwd=ROOT)
    _clean(result, 2, "at most 51 characters (room for '-batch-' and the 5 characters Argo appends, within 63)")
    result = run_cli("compile", "examples/qa.py:chain", "--name", "a" * 51, "--batch", "2", cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert len(yaml.safe_load(result.stdout)["metadata"]["generateName"]) + 5 <= 63


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ([], "llmstep diagnose needs a TARGET (KIND/NAME) or -f FILE"),
        (["-f", "-", "--prompt", "custom"], "--prompt custom needs the prompt text: --custom-prompt TEXT"),
        (["service/web"], "kind 'service' (service/web) is not one that llmstep diagnose reads from a cluster"),
        (["web"], "target 'web' is not KIND/NAME"),
    ],
)
def test_diagnose_usage_errors_exit_2(args, fragment):
    result = run_cli("diagnose", *args, "--dry-run", cwd=ROOT)
    _clean(result, 2, fragment)


def _strict_json(text: str):
    def refuse(word):
        raise AssertionError(f"{word} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_diagnosis_json_never_prints_nan():
    from llmstep.diagnose.report import parse

    report = parse(
        '{"summary": "s", "root_cause": "r", "confidence": NaN}', target="t", prompt="diagnose", redactions=0, model="m"
    )
    assert report.confidence is None and _strict_json(report.to_json())["confidence"] is None
    assert "confidence unknown" in report.to_markdown()


def test_unwritable_output_file_is_named_exit_2(tmp_path):
    from openai_server import FakeOpenAI

    blocked = tmp_path / "a-file"
    blocked.write_text("x")
    _clean(
        run_cli("compile", "examples/qa.py:chain", "-o", str(blocked / "wf.yaml"), cwd=ROOT),
        2,
        f"-o {blocked / 'wf.yaml'}: cannot write it",
    )
    answer = json.dumps({"summary": "s", "root_cause": "r", "fix_steps": [], "confidence": 0.5})
    with FakeOpenAI(reply=answer) as server:
        result = run_cli(
            "diagnose",
            "-f",
            str(blocked),
            "--provider",
            "compatible",
            "--base-url",
            server.url,
            "--summary-file",
            str(blocked / "summary.txt"),
            env={"OPENAI_API_KEY": "k"},
            cwd=ROOT,
        )
    _clean(result, 2, f"--summary-file {blocked / 'summary.txt'}: cannot write it")


def test_api_key_file_that_is_not_utf8_is_named(tmp_path):
    key = tmp_path / "key"
    key.write_bytes(b"\xff\xfe")
    (tmp_path / "log.txt").write_text("a log line")
    result = run_cli("diagnose", "-f", str(tmp_path / "log.txt"), "--api-key-file", str(key), cwd=ROOT)
    _clean(result, 1, f"--api-key-file {key}: not UTF-8 text")


def test_one_kubernetes_config_loader_whose_errors_are_the_callers_kind(tmp_path):
    """Llmstep submit and llmstep diagnose load a kubeconfig the same way; each says it in its own error."""
    from llmstep.cluster.transports import kube_client
    from llmstep.errors import DiagnosisError, SubmissionError

    missing = str(tmp_path / "no-kubeconfig")
    with pytest.raises(SubmissionError, match="cannot load a Kubernetes configuration"):
        kube_client(missing)
    with pytest.raises(DiagnosisError, match="cannot load a Kubernetes configuration"):
        kube_client(missing, error=DiagnosisError, purpose="reading from a cluster")
    result = run_cli("diagnose", "pod/web", "--kubeconfig", missing, "--dry-run", env={"KUBERNETES_SERVICE_HOST": ""})
    assert result.returncode == 1, result.stderr
    assert "cannot load a Kubernetes configuration" in result.stderr
