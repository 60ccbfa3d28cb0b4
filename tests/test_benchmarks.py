"""The benchmark command in the README runs, and every section's own checks pass (a smoke run at a
small scale: timings are not asserted here, what the figures measure is)."""

import importlib.util
import json
import subprocess
import sys

import pytest
from conftest import ROOT

_spec = importlib.util.spec_from_file_location("llmstep_benchmarks", ROOT / "benchmarks" / "run.py")
assert _spec is not None and _spec.loader is not None
_bench_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_bench_module)
SECTIONS = _bench_module.SECTIONS
ON_THIS_MACHINE = [s for s in SECTIONS if s != "cluster"]  # image skips itself without podman


def _bench(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "benchmarks/run.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def test_every_section_runs_its_checks(tmp_path):
    """The compile section checks that its Hera baselines build llmstep's Workflow key for key,
    the parallel and batch sections that the outputs are the chain's, in order: a smoke run of
    every section makes such a break fail here, not in the next person's benchmark run."""
    out = tmp_path / "results.json"  # not in the repository
    result = _bench("--smoke", "--only", ",".join(ON_THIS_MACHINE), "--out", str(out))
    assert result.returncode == 0, result.stderr[-4000:]
    assert f"wrote {out}" in result.stdout
    report = json.loads(out.read_text())
    assert report["smoke"] is True
    names = [f["name"] for f in report["figures"]]
    for prefix in ("1 start-up", "2 local run", "3 parallelism", "4 compile", "5 size", "6 batch", "image"):
        assert any(n.startswith(prefix) for n in names), (prefix, names)
    size = next(f for f in report["figures"] if f["name"] == "5 size: Argo bytes per step beyond payload")
    assert size["unit"] == "B" and size["value"] > 0


def test_help_prints_usage_and_runs_nothing(tmp_path):
    for flag in ("--help", "-h"):
        result = _bench(flag, timeout=60)
        assert result.returncode == 0, result.stderr
        assert "usage: benchmarks/run.py" in result.stdout and "--only SECTIONS" in result.stdout
        assert "wrote" not in result.stdout and "start-up" not in result.stdout.split("options:")[1]


def test_unknown_section_is_a_usage_error():
    result = _bench("--only", "compile,speed", timeout=60)
    assert result.returncode == 2
    assert "--only: no section speed" in result.stderr and "startup, compile" in result.stderr


@pytest.mark.cluster
def test_cluster_section_runs_its_checks(k8s, tmp_path):
    out = tmp_path / "results.json"
    result = _bench("--smoke", "--only", "cluster", "--out", str(out), timeout=1800)
    assert result.returncode == 0, result.stderr[-4000:]
    figures = json.loads(out.read_text())["figures"]
    assert any(f["name"] == "7 cluster: pods per chain step" and f["value"] == 1 for f in figures), figures
