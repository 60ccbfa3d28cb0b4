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
from langchain_core.runnables import RunnableLambda
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
    local_nodes = {n.display_name: n for n in record.nodes.values() if n.is_step}
    assert set(local_nodes) == set(argo_nodes)
    for name, node in argo_nodes.items():
        mine = local_nodes[name]
        assert mine.phase == node["phase"], name
        for p in ("preview", "usage", "output"):
            theirs, ours = param(node, p), mine.outputs.parameter(p) if mine.outputs else None
            if p == "usage" and theirs is not None:
                theirs, ours = json.loads(theirs), json.loads(ours or "null")
            else:
                theirs, ours = _same_run(theirs), _same_run(ours)
            assert ours == theirs, f"{name}: output parameter {p}"
        artifacts = {a["name"]: a for a in (node.get("outputs") or {}).get("artifacts") or []}
        if "output" in artifacts:
            stored = k8s.s3_object(artifacts["output"]["s3"]["key"])
            local_file = record.root / "steps" / mine.id / "data" / "output.json"
            assert _same_run(local_file.read_bytes()) == _same_run(stored), f"{name}: the output artifact's bytes"


# ---------------------------------------------------------------- hand-edited deadlines and retries


def _sleep_then_fail(x):
    import time

    time.sleep(4)
    raise RuntimeError("failed after 4 s")


def _fail(x):
    raise RuntimeError("fails every time")


def _sleep(x):
    import time

    time.sleep(180)
    return x


def _retry(strategy):
    """An edit that gives the first step's template this ``retryStrategy``."""

    def edit(doc):
        first = doc["spec"]["templates"][0]["dag"]["tasks"][0]["template"]
        [template] = [t for t in doc["spec"]["templates"] if t["name"] == first]
        template["retryStrategy"] = strategy

    return edit


EDITED = {
    # maxDuration is how long after the first attempt started a step may still be retried
    "max-duration-passed": (
        RunnableLambda(_sleep_then_fail, name="slow"),
        _retry({"limit": 5, "retryPolicy": "Always", "backoff": {"duration": "1s", "maxDuration": "2s"}}),
    ),
    "backoff-past-max-duration": (
        RunnableLambda(_fail, name="fails"),
        _retry({"limit": 5, "retryPolicy": "Always", "backoff": {"duration": "120s", "maxDuration": "60s"}}),
    ),
    # the whole run's deadline stops the running step; the step after it never runs
    "workflow-deadline": (
        RunnableLambda(_sleep, name="sleeps") | RunnableLambda(_fail, name="after"),
        lambda doc: doc["spec"].update(activeDeadlineSeconds=15),
    ),
}
# The controller stops a step at the Workflow's deadline in one of two ways, whichever comes first:
# the executor's deadline monitor ("Step exceeded its deadline") or the kubelet, as the pod was
# created with the time left as its activeDeadlineSeconds (the pod's deadline message). The local
# runner says the first.
SAME_DEADLINE = {"Pod was active on the node longer than the specified deadline": "Step exceeded its deadline"}


def _outer(wf, name):
    """The node Argo shows for a step: its Retry node when it has one, else its Pod node; and
    how many attempts (pods) it had."""
    nodes = list((wf.get("status") or {}).get("nodes", {}).values())
    retry = [n for n in nodes if n.get("type") == "Retry" and n["displayName"] == name]
    if retry:
        return retry[0], len(retry[0].get("children") or [])
    pods = [n for n in nodes if n.get("type") == "Pod" and n["displayName"] == name]
    return (pods[0], 1) if pods else (None, 0)


@pytest.fixture(scope="module")
def edited_runs(k8s, tmp_path_factory):
    """Each edited document submitted to the controller, then run locally, then waited for."""
    from llmstep import serde
    from llmstep.cluster import argo
    from llmstep.cluster.transports import KubeApi
    from llmstep.local.records import RunRecord

    api = KubeApi(kube_api(k8s))
    submitted = {}
    for case, (chain, edit) in EDITED.items():
        doc = llmstep.compile(chain, name=case, allow_pickle=True).to_dict()
        edit(doc)
        submitted[case] = (doc, argo.submit(doc, {"input": serde.parameter_text("x")}, namespace=NS, transport=api))
    runs_dir = tmp_path_factory.mktemp("edited")
    local = {}
    for case, (doc, _) in submitted.items():
        try:
            local[case] = run_document(doc, "x", runs_dir=runs_dir, quiet=True)
        except llmstep.RunFailed as exc:
            local[case] = RunRecord.open(runs_dir, exc.run_id)
    return {case: (run._finished(900, 2), local[case]) for case, (_, run) in submitted.items()}


@pytest.mark.parametrize("case", list(EDITED))
def test_edited_deadlines_and_retries_match_the_controller(case, edited_runs):
    wf, record = edited_runs[case]
    assert (record.phase, record.state.message) == (wf["status"]["phase"], wf["status"].get("message", ""))
    shown = {}
    for name in {n.display_name for n in record.nodes.values()}:
        node, attempts = _outer(wf, name)
        mine = next(n for n in record.nodes.values() if n.display_name == name)
        if node is None:  # the controller never started it: neither did the local runner
            assert mine.phase == "Pending", name
            continue
        message = node.get("message", "")
        shown[name] = (
            node["phase"],
            SAME_DEADLINE.get(message, message) if case == "workflow-deadline" else message,
            attempts,
        )
        assert (mine.phase, mine.message or "", mine.attempts or 1) == shown[name], name
    assert shown, "the controller ran none of the steps"
