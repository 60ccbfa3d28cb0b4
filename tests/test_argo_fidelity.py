"""Differential fidelity: the same Workflow documents on the local runner and on the real Argo
controller, compared node by node (phase, output parameters, the output artifact's bytes) and by
their final result, which must also equal ``chain.invoke``'s.

The real controller is the truth: a difference is a bug in the local runner or the renderer, or a
construct the local runner must refuse with a clear message. Opt in with `pytest -m cluster`.
"""

from __future__ import annotations

import json
import re

import pytest
from argo_cluster import NS, offline_env, param, step_nodes
from chains import corpus, normalize
from conftest import kube_api
from fidelity_cases import corpus_cases, example_cases, example_ids
from value_chains import same_values

import llmstep
from llmstep.errors import LlmstepError
from llmstep.local.entry import run_document

pytestmark = pytest.mark.cluster
RUN_ID = re.compile(rb"lc_run--[0-9a-f-]+")


def _same_run(data: bytes | str | None) -> bytes | None:
    """Bytes with LangChain's per-call run ids (``lc_run--<uuid7>`` on each message) blanked: two
    calls never share one, on any engine; everything else must match byte for byte."""
    if data is None:
        return None
    raw = data.encode() if isinstance(data, str) else data
    return RUN_ID.sub(b"lc_run--*", raw)



def _cases():
    cases = corpus_cases()
    cases["corpus-qa-parameters"] = (corpus()["sequence"][0], corpus()["sequence"][1], {"data": "parameters"})
    return cases


@pytest.fixture(scope="module")
def cluster_runs(k8s, tmp_path_factory, monkeypatch_module):
    """Every case submitted at once (the controller runs them side by side), then each run on
    the local runner, then every cluster run waited for."""
    api = kube_api(k8s)
    offline_env(monkeypatch_module)  # the examples pick the offline model
    cases = _cases() | example_cases()
    runs = {}
    for case, (chain, x, opts) in cases.items():
        compiled = llmstep.compile(chain, name=case[:40].rstrip("-"), **opts)
        runs[case] = (compiled, compiled.submit(x, namespace=NS, client=api))
    local = {}
    runs_dir = tmp_path_factory.mktemp("runs")
    for case, (compiled, _) in runs.items():
        chain, x, _opts = cases[case]
        try:
            local[case] = run_document(compiled.to_dict(), x, runs_dir=runs_dir, quiet=True)
        except LlmstepError as exc:  # a run that fails keeps its record; compared below
            local[case] = exc
    finished = {case: run.wait(timeout=900, poll=2) for case, (_, run) in runs.items()}
    return {case: (cases[case], runs[case][0], runs[case][1], finished[case], local[case]) for case in cases}


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def _case_ids():
    return [*_cases(), *example_ids()]


@pytest.mark.parametrize("case", _case_ids())
def test_local_runner_matches_the_controller(case, cluster_runs, k8s):
    (chain, x, _), compiled, run, wf, record = cluster_runs[case]
    assert not isinstance(record, Exception), f"the local run failed where Argo succeeded: {record}"
    expected = chain.invoke(x)
    assert normalize(run.result()) == normalize(expected)
    assert normalize(record.result()) == normalize(expected)
    if case.startswith("values-"):  # exactly, types and all (a tuple stays a tuple)
        same_values(run.result(), expected)
        same_values(record.result(), expected)

    argo_nodes = step_nodes(wf)
    local_nodes = {n["displayName"]: n for n in record.nodes.values() if n.get("type", "Pod") == "Pod"}
    assert set(local_nodes) == set(argo_nodes)
    for name, node in argo_nodes.items():
        mine = local_nodes[name]
        assert mine["phase"] == node["phase"], name
        for p in ("preview", "usage", "output"):
            theirs, ours = param(node, p), param(mine, p)
            if p == "usage" and theirs is not None:
                theirs, ours = json.loads(theirs), json.loads(ours or "null")
            else:
                theirs, ours = _same_run(theirs), _same_run(ours)
            assert ours == theirs, f"{name}: output parameter {p}"
        artifacts = {a["name"]: a for a in (node.get("outputs") or {}).get("artifacts") or []}
        if "output" in artifacts:
            stored = k8s.s3_object(artifacts["output"]["s3"]["key"])
            local_file = record.root / "steps" / mine.get("id", name) / "data" / "output.json"
            assert _same_run(local_file.read_bytes()) == _same_run(stored), f"{name}: the output artifact's bytes"
