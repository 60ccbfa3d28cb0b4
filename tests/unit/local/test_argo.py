"""The local runner accepts only the part of Argo it runs as the controller does (measured in
tests/test_argo_fidelity.py); everything else is refused before anything runs."""

from __future__ import annotations

import pytest
import yaml
from conftest import ROOT

from llmstep.errors import LlmstepError
from llmstep.local.entry import run_document

UPSTREAM = ROOT / "tests" / "data" / "argo-examples"


@pytest.mark.parametrize("path", sorted(UPSTREAM.glob("*.yaml")), ids=lambda p: p.name)
def test_upstream_examples_the_local_runner_refuses_are_refused_clearly(path, tmp_path):
    """Argo's own examples run commands other than `llmstep exec` (or use artifacts, steps and
    memoization the local runner does not have): each is refused before anything runs, with the
    field's path in the message, rather than run differently from the controller."""
    doc = yaml.safe_load(path.read_text())
    with pytest.raises(LlmstepError) as err:
        run_document(doc, runs_dir=tmp_path / "runs", quiet=True)
    assert "spec" in str(err.value) or "kind" in str(err.value)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
