"""ruff (pyflakes, bugbear, import order, pyupgrade, docstrings, unused noqa) over the package, tests and
examples; mypy over the package (its settings are pyproject.toml's [tool.mypy])."""

import subprocess
import sys

from conftest import ROOT


def test_ruff_check_is_clean():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "llmstep", "tests", "examples", "benchmarks"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean():
    result = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
