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
        result = run_cli("diagnose", "-f", str(manifest), "--provider", "compatible", "--base-url", server.url,
                         "--format", "json", "--output", str(tmp_path / "report.json"),
                         "--summary-file", str(tmp_path / "summary.txt"), "--webhook-env", "HOOK", env=env)
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
        result = run_cli("diagnose", "-f", str(manifest), "--provider", "compatible", "--base-url", server.url,
                         env={"OPENAI_API_KEY": "k"})
        gate = run_cli("diagnose", "-f", str(manifest), "--provider", "compatible", "--base-url", server.url,
                       "--prompt", "quality-gate", env={"OPENAI_API_KEY": "k"})
    assert result.returncode == 0, result.stderr
    assert "the pod lacks its ConfigMap" in result.stdout  # the plain answer is the report, not lost
    assert gate.returncode == 1 and "answer is not JSON" in gate.stderr and "Traceback" not in gate.stderr


def test_hostile_evidence_is_refused_with_exit_2_naming_it(tmp_path):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("kind: ConfigMap\nmetadata:\n  name: x\ndata:\n" + "".join(
        f"  l{i}: &l{i} [{', '.join(['lol'] * 9 if i == 0 else [f'*l{i - 1}'] * 9)}]\n" for i in range(9)))
    deep = "[" * 30_000 + "]" * 30_000
    cases = [
        (("diagnose", "-f", str(bomb), "--dry-run"), f"{bomb}, document 1: the document contains excessive aliasing"),
        (("diagnose", "--workflow-failures", deep, "--dry-run", "workflow/wf"), "--workflow-failures: it nests"),
        (("diagnose", "--workflow-failures", json.dumps(deep), "--dry-run", "workflow/wf"), "--workflow-failures: it nests"),
        (("diagnose", "--task-statuses", '{"a": ' + "[" * 300 + "]" * 300 + "}", "--dry-run"), "--task-statuses: it nests"),
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
    cases = [("--retries", "-1", "-1 is negative; give 0 or more"), ("--retries", "two", "'two' is not a whole number"),
             ("--tail", "-3", "-3 is negative")]
    cases += [("--timeout", bad, f"{bad!r} is not a number of seconds above 0") for bad in ("0", "nan", "inf", "-5", "-inf")]
    for flag, value, fragment in cases:
        result = run_cli("diagnose", "-f", str(manifest), "--dry-run", f"{flag}={value}", cwd=tmp_path, timeout=60)
        assert result.returncode == 2, (flag, value, result.stderr)
        assert f"argument {flag}: {fragment}" in result.stderr, result.stderr
    ok = run_cli("diagnose", "-f", str(manifest), "--dry-run", "--timeout", "2.5", "--retries", "0", cwd=tmp_path, timeout=60)
    assert ok.returncode == 0, ok.stderr
