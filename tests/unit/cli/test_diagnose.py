"""`llmstep diagnose`: a dry run shows what would be sent, reports go to files, stdout and a
webhook, and usage errors are clear."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from conftest import run_cli
from diagnose_cases import ANSWER, MANIFEST, SECRETS
from openai_server import FakeOpenAI


def test_cli_dry_run_prints_what_would_be_sent_and_calls_nothing(tmp_path):
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(MANIFEST)
    result = run_cli("diagnose", "-f", str(manifest), "--dry-run", "--redact", r"corp-token-\d+")
    assert result.returncode == 0
    assert "invalid" in result.stdout and all(s not in result.stdout for s in SECRETS)
    assert "redacted; no model was called" in result.stderr


def test_cli_report_files_json_and_webhook(tmp_path):
    received = []

    class Hook(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
            self.send_response(200)
            self.end_headers()

    hook = ThreadingHTTPServer(("127.0.0.1", 0), Hook)  # stands in for a Slack incoming webhook
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(MANIFEST)
    with FakeOpenAI(reply=json.dumps(ANSWER)) as server:
        env = {"OPENAI_API_KEY": "sk-cli-key-0000000000000000", "HOOK": f"http://127.0.0.1:{hook.server_address[1]}/"}
        result = run_cli(
            "diagnose",
            "-f",
            str(manifest),
            "--provider",
            "compatible",
            "--base-url",
            server.url,
            "--format",
            "json",
            "--output",
            str(tmp_path / "report.json"),
            "--summary-file",
            str(tmp_path / "summary.txt"),
            "--webhook-env",
            "HOOK",
            env=env,
        )
    hook.shutdown()
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["summary"] == ANSWER["summary"]
    assert json.loads((tmp_path / "report.json").read_text())["fix_steps"][0]["command"].startswith("kubectl")
    assert "Root cause" in (tmp_path / "summary.txt").read_text() and len((tmp_path / "summary.txt").read_text()) < 4096
    assert "kubectl set image" in received[0]["text"]


def test_cli_errors(tmp_path):
    missing = run_cli("diagnose", "-f", "-", env={"OPENAI_API_KEY": ""}).stderr
    assert "no API key: set OPENAI_API_KEY" in missing and "--api-key-file FILE" in missing
    bad = run_cli("diagnose", "bogus/x")
    assert bad.returncode == 2 and "kind 'bogus' (bogus/x) is not one" in bad.stderr
    with FakeOpenAI(reply="not json at all: the pod lacks its ConfigMap") as server:
        manifest = tmp_path / "m.yaml"
        manifest.write_text("kind: Pod\nmetadata: {name: p}\n")
        result = run_cli(
            "diagnose",
            "-f",
            str(manifest),
            "--provider",
            "compatible",
            "--base-url",
            server.url,
            env={"OPENAI_API_KEY": "k"},
        )
        gate = run_cli(
            "diagnose",
            "-f",
            str(manifest),
            "--provider",
            "compatible",
            "--base-url",
            server.url,
            "--prompt",
            "quality-gate",
            env={"OPENAI_API_KEY": "k"},
        )
    assert result.returncode == 0, result.stderr
    assert "the pod lacks its ConfigMap" in result.stdout  # the plain answer is the report, not lost
    assert gate.returncode == 1 and "answer is not JSON" in gate.stderr and "Traceback" not in gate.stderr


CLEAN_ENDPOINTS = {"OPENAI_BASE_URL": "", "OPENAI_API_BASE": "", "AZURE_OPENAI_ENDPOINT": "", "OPENAI_API_VERSION": ""}


def _diagnose(tmp_path, *args, env):
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(MANIFEST)
    return run_cli("diagnose", "-f", str(manifest), *args, env={**CLEAN_ENDPOINTS, **env})


def test_diagnose_sends_the_key_to_the_endpoint_this_machine_configures(tmp_path):
    """The loopback servers stand in for the endpoints OPENAI_BASE_URL or OPENAI_API_BASE name (a
    gateway, a local model): without them honoured, the key would go to api.openai.com."""
    key = "sk-diagnose-endpoint-0123456789"
    for variable in ("OPENAI_BASE_URL", "OPENAI_API_BASE"):
        with FakeOpenAI(reply=json.dumps(ANSWER)) as server:
            result = _diagnose(tmp_path, env={"OPENAI_API_KEY": key, variable: server.url})
            assert result.returncode == 0, result.stderr
            assert [r["headers"]["authorization"] for r in server.requests] == [f"Bearer {key}"], variable
            assert server.requests[0]["path"] == "/v1/chat/completions"


def test_diagnose_base_url_option_wins_over_the_environment(tmp_path):
    with FakeOpenAI(reply=json.dumps(ANSWER)) as configured, FakeOpenAI(reply=json.dumps(ANSWER)) as given:
        result = _diagnose(
            tmp_path,
            "--base-url",
            given.url,
            env={"OPENAI_API_KEY": "sk-diagnose-0123456789", "OPENAI_BASE_URL": configured.url},
        )
        assert result.returncode == 0, result.stderr
        assert len(given.requests) == 1 and configured.requests == []


def test_diagnose_azure_honours_the_endpoint_and_api_version_variables(tmp_path):
    key = "azure-key-0123456789abcdef"
    with FakeOpenAI(reply=json.dumps(ANSWER)) as server:
        endpoint = server.url.removesuffix("/v1")
        result = _diagnose(
            tmp_path,
            "--provider",
            "azure",
            "--azure-deployment",
            "diag",
            env={"AZURE_OPENAI_API_KEY": key, "AZURE_OPENAI_ENDPOINT": endpoint, "OPENAI_API_VERSION": "2099-01-01"},
        )
        assert result.returncode == 0, result.stderr
        [request] = server.requests
        assert request["path"] == "/openai/deployments/diag/chat/completions?api-version=2099-01-01"
        assert request["headers"]["api-key"] == key


def test_diagnose_options_are_never_abbreviated(tmp_path):
    for abbreviated in (["--file", "x.yaml"], ["--output-d", str(tmp_path)], ["--base", "http://127.0.0.1:9/v1"]):
        result = run_cli("diagnose", "pod/x", *abbreviated, "--dry-run")
        assert result.returncode == 2 and "unrecognized arguments" in result.stderr, result.stderr


def test_hostile_evidence_is_refused_with_exit_2_naming_it(tmp_path):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(
        "kind: ConfigMap\nmetadata:\n  name: x\ndata:\n"
        + "".join(f"  l{i}: &l{i} [{', '.join(['lol'] * 9 if i == 0 else [f'*l{i - 1}'] * 9)}]\n" for i in range(9))
    )
    deep = "[" * 30_000 + "]" * 30_000
    cases = [
        (("diagnose", "-f", str(bomb), "--dry-run"), f"{bomb}, document 1: the document contains excessive aliasing"),
        (("diagnose", "--workflow-failures", deep, "--dry-run", "workflow/wf"), "--workflow-failures: it nests"),
        (
            ("diagnose", "--workflow-failures", json.dumps(deep), "--dry-run", "workflow/wf"),
            "--workflow-failures: it nests",
        ),
        (
            ("diagnose", "--task-statuses", '{"a": ' + "[" * 300 + "]" * 300 + "}", "--dry-run"),
            "--task-statuses: it nests",
        ),
    ]
    for args, fragment in cases:
        result = run_cli(*args, cwd=tmp_path, timeout=60)
        assert result.returncode == 2, (args[:3], result.stderr)
        assert fragment in result.stderr, result.stderr


def test_task_statuses_that_are_not_a_map_are_evidence_text(tmp_path):
    result = run_cli("diagnose", "--task-statuses", '["build", "Failed"]', "--dry-run", cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "task statuses (unparsed)" in result.stdout and '["build", "Failed"]' in result.stdout


def test_model_and_log_options_out_of_range_are_refused_naming_the_flag(tmp_path):
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(MANIFEST)
    cases = [
        ("--retries", "-1", "-1 is negative; give 0 or more"),
        ("--retries", "two", "'two' is not a whole number"),
        ("--tail", "-3", "-3 is negative"),
    ]
    cases += [
        ("--timeout", bad, f"{bad!r} is not a number of seconds above 0") for bad in ("0", "nan", "inf", "-5", "-inf")
    ]
    for flag, value, fragment in cases:
        result = run_cli("diagnose", "-f", str(manifest), "--dry-run", f"{flag}={value}", cwd=tmp_path, timeout=60)
        assert result.returncode == 2, (flag, value, result.stderr)
        assert f"argument {flag}: {fragment}" in result.stderr, result.stderr
    ok = run_cli(
        "diagnose", "-f", str(manifest), "--dry-run", "--timeout", "2.5", "--retries", "0", cwd=tmp_path, timeout=60
    )
    assert ok.returncode == 0, ok.stderr
