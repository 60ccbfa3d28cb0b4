"""llmstep/diagnose/budget.py: the evidence sent to the model is cut to a budget, keeping each
section's first lines and the lines that name an error, and saying what was cut."""

from __future__ import annotations

import base64

from conftest import run_cli

from llmstep.diagnose import Evidence, Redactor, prepared
from llmstep.diagnose.budget import fit, shorten, size
from llmstep.diagnose.evidence import from_text
from llmstep.diagnose.settings import EVIDENCE_BYTES, EVIDENCE_BYTES_FLAG


def _big_configmap(megabytes: float) -> str:
    lines = [f"    line {i}: cache entry {i * 7919 % 100003} warm" for i in range(int(megabytes * 1_000_000 / 36))]
    lines[len(lines) * 3 // 4] = "    ERROR: entry 4711 failed to parse: unexpected '}'"
    return "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: huge}\ndata:\n  cache.txt: |\n" + "\n".join(lines) + "\n"


def _sent(evidence: Evidence, budget: int = EVIDENCE_BYTES) -> str:
    text = prepared(evidence, Redactor(), "diagnose", None, None, budget)[1]["content"]
    return text.split("Evidence (secrets removed):\n", 1)[1]


def test_a_5_mb_configmap_is_never_sent_whole_and_says_what_was_cut():
    text = _big_configmap(5)
    sent = _sent(from_text(text, "huge.yaml"))
    assert size(text) > 5_000_000 and size(sent) <= EVIDENCE_BYTES + 1000
    assert "line 0: cache entry 0 warm" in sent  # the head
    assert "ERROR: entry 4711 failed to parse" in sent  # a line that names an error, from far beyond it
    assert f"to keep the evidence within {EVIDENCE_BYTES} bytes ({EVIDENCE_BYTES_FLAG})" in sent
    assert "lines" in sent and "were cut" in sent


def test_small_sections_stay_whole_and_the_big_one_gives_way():
    small = ["pod web-1", "phase: Failed, reason: Error", "container app: terminated (Error, exit code 3)"]
    evidence = Evidence(
        "pod/web-1",
        [("pod web-1", small), ("log of web-1/app", [f"INFO step {i} ok" for i in range(50_000)] + ["FATAL db down"])],
    )
    sent = _sent(evidence, 20_000)
    assert all(line in sent for line in small)
    assert "INFO step 0 ok" in sent and "FATAL db down" in sent and "INFO step 49999 ok" not in sent
    assert size(sent) <= 20_000 + 500


def test_evidence_within_the_budget_is_sent_unchanged():
    parts = ["## a\none", "## b\ntwo"]
    assert fit(parts, 100) == parts


def test_a_long_line_is_cut_at_a_separator_never_inside_a_token():
    token = "Zx9" * 10_000
    line = f"request failed with body {token} and more"
    out = shorten(line, 1000)
    assert out == "request failed with body [...]"
    [cut] = fit([f"## log\n{line}"], 2000)
    assert "Zx9Zx9" not in cut and "were cut" in cut


def test_a_secret_cut_from_its_kind_is_still_masked():
    """The structures (a Secret printed in a log, data before kind) are redacted before the cut."""
    value = base64.b64encode(b"data-before-kind-secret").decode()
    lines = [
        "apiVersion: v1",
        "data:",
        f"  config: {value}",
        *[f"filler line {i}" for i in range(5000)],
        "kind: Secret",
    ]
    sent = _sent(Evidence("pod/x", [("log of x/app", lines)]), 5000)
    assert value not in sent and "config: [REDACTED]" in sent and "were cut" in sent


def test_the_cli_takes_a_budget_and_refuses_one_too_small(tmp_path):
    manifest = tmp_path / "huge.yaml"
    manifest.write_text(_big_configmap(0.3))
    result = run_cli("diagnose", "-f", str(manifest), "--dry-run", EVIDENCE_BYTES_FLAG, "5000")
    assert result.returncode == 0, result.stderr
    assert size(result.stdout) < 5000 + 1500 and "within 5000 bytes" in result.stdout
    for bad in ("10", "-1", "0"):
        refused = run_cli("diagnose", "-f", str(manifest), "--dry-run", EVIDENCE_BYTES_FLAG, bad)
        assert refused.returncode == 2 and f"{EVIDENCE_BYTES_FLAG} {bad}: give at least" in refused.stderr
