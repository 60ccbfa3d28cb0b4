"""The core property of the local runner: running the rendered workflow gives what
`chain.invoke` gives, for a broad corpus of chain shapes and values."""

from __future__ import annotations

import pytest
from chains import corpus, normalize

import llmstep


@pytest.mark.parametrize("case", list(corpus()))
def test_run_local_equals_invoke(case, tmp_path):
    chain, x = corpus()[case]
    expected = chain.invoke(x)
    got = llmstep.compile(chain, allow_pickle=True).run_local(x, runs_dir=tmp_path / "runs")
    assert normalize(got) == normalize(expected)
    assert isinstance(expected, type(got))  # same type (StrOutputParser returns a str subclass)


def test_large_value_really_travels_between_steps(tmp_path):
    chain, x = corpus()["large-value"]
    compiled = llmstep.compile(chain, allow_pickle=True)
    compiled.run_local(x, runs_dir=tmp_path / "runs")
    [run] = list((tmp_path / "runs").iterdir())
    output = run / "steps" / compiled.plan.steps[0].display / "data" / "output.json"
    assert output.stat().st_size > 300_000
