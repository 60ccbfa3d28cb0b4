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
