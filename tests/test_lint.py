"""ruff (pyflakes, bugbear, import order, pyupgrade, docstrings, unused noqa) and ruff's formatter over the package, tests and
examples; mypy over the package (its settings are pyproject.toml's [tool.mypy])."""

import subprocess
import sys

from conftest import ROOT


def test_ruff_check_is_clean():
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "llmstep", "tests", "examples", "benchmarks"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean():
    result = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_clean():
    """One formatter for the package, tests, examples and benchmarks: ``ruff format`` leaves them as they are."""
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", "llmstep", "tests", "examples", "benchmarks"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
