"""The benchmark command in the README runs (a quick slice of it: timings are not asserted here)."""

import json
import subprocess
import sys

from conftest import ROOT


def test_benchmark_command_runs_and_reports_ratios(tmp_path):
    out = tmp_path / "results.json"  # not in the repository
    result = subprocess.run([sys.executable, "benchmarks/run.py", "--quick", "--only", "size", "--out", str(out)], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "5 size: Argo bytes per step beyond payload" in result.stdout and f"wrote {out}" in result.stdout
    report = json.loads(out.read_text())
    assert report["figures"][0]["unit"] == "B" and report["figures"][0]["value"] > 0
