"""Differential fidelity on Tekton: the same documents on the local Tekton runner and on the real
Tekton Pipelines controller, compared task by task (outcome, results) and by their final output,
which must also equal ``chain.invoke``'s.

The real controller is the truth: a difference is a bug in the local runner or the renderer, or a
construct the local runner must refuse with a clear message. Opt in with `pytest -m cluster`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re

import pytest
from argo_cluster import offline_env
from chains import normalize
from conftest import kube_api
from fidelity_cases import corpus_cases, example_cases, example_ids, size_cases
from langchain_core.runnables import RunnableLambda
from tekton_cluster import phase, results, taskruns, tekton_namespace, wait_done
from value_chains import same_values

import llmstep
from llmstep import serde
from llmstep.cluster.tekton import submit, succeeded
from llmstep.cluster.transports import KubeApi
from llmstep.errors import LlmstepError
from llmstep.local.entry import run_tekton

pytestmark = pytest.mark.cluster
NS = "tekton-fidelity"
RUN_ID = re.compile(r"lc_run--[0-9a-f-]+")


def _case_ids():
    return [*corpus_cases(), *size_cases(), *example_ids()]


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


@pytest.fixture(scope="module")
def cluster_runs(k8s, tmp_path_factory, monkeypatch_module):
    """Every case submitted at once (the controller runs them side by side), then each run on
    the local runner, then every cluster run waited for."""
    tekton_namespace(k8s, NS)
    api = kube_api(k8s)
    offline_env(monkeypatch_module)
    cases = corpus_cases() | size_cases() | example_cases()
    runs = {}
    for case, (chain, x, opts) in cases.items():
        compiled = llmstep.compile(chain, name=case[:40].rstrip("-"), **opts)
        runs[case] = (compiled, compiled.submit(x, engine="tekton", namespace=NS, client=api))
    local = {}
    runs_dir = tmp_path_factory.mktemp("runs")
    for case, (compiled, _) in runs.items():
        _chain, x, _opts = cases[case]
        try:
            local[case] = run_tekton(compiled.to_tekton(), x, runs_dir=runs_dir, quiet=True)
        except LlmstepError as exc:
            local[case] = exc
    finished = {}
    for case, (_, run) in runs.items():
        try:
            finished[case] = run.wait(timeout=900, poll=2)
        except LlmstepError as exc:
            finished[case] = exc
    return api, {case: (cases[case], runs[case][1], finished[case], local[case]) for case in cases}


def _same_run(text: str | None) -> str | None:
    return None if text is None else RUN_ID.sub("lc_run--*", text)


@pytest.mark.parametrize("case", _case_ids())
def test_local_tekton_runner_matches_the_controller(case, cluster_runs):
    api, by_case = cluster_runs
    (chain, x, _), run, done, record = by_case[case]
    assert not isinstance(done, Exception), f"the controller's run failed: {done}"
    assert not isinstance(record, Exception), f"the local run failed where Tekton succeeded: {record}"
    assert record.phase == "Succeeded", record.failures()
    expected = chain.invoke(x)
    assert normalize(run.result()) == normalize(expected)
    assert normalize(record.result()) == normalize(expected)
    if case.startswith("values-"):  # exactly, types and all
        same_values(run.result(), expected)
        same_values(record.result(), expected)

    theirs = taskruns(api, run.name, NS)
    ours = {name: node for name, node in record.nodes.items() if node.phase not in ("Skipped", "Omitted")}
    assert theirs and set(ours) == set(theirs), "the tasks that ran"
    skipped = {t["name"] for t in done["status"].get("skippedTasks") or []}
    assert skipped == {name for name, node in record.nodes.items() if node.phase in ("Skipped", "Omitted")}
    local_run = record.state.extra.get("context", {}).get("pipelineRun.name") or _local_run_name(record)
    for name, tr in theirs.items():
        mine = ours[name]
        assert mine.phase == phase(tr), name
        cluster_results = results(tr)
        local_results = {p.name: p.value for p in (mine.outputs.parameters if mine.outputs else [])}
        assert set(local_results) == set(cluster_results) >= {"preview", "output-path", "sha256"}, (
            f"{name}: the results written"
        )
        for key, value in cluster_results.items():
            got = local_results[key]
            if key == "output-path":
                assert got.replace(local_run, "RUN") == value.replace(run.name, "RUN"), name
            elif key == "usage" and value:
                assert json.loads(got) == json.loads(value), name
            elif key == "sha256":
                local_file = next(a.local_path for a in mine.outputs.artifacts if a.name == "output")
                data = open(local_file, encoding="utf-8").read()
                assert got == hashlib.sha256(data.encode()).hexdigest()
                if not RUN_ID.search(data):  # LangChain's per-call ids differ on any two runs
                    assert got == value, f"{name}: the output's digest"
            else:
                assert _same_run(got) == _same_run(value), f"{name}: result {key}"


def _local_run_name(record) -> str:
    """The name the local runner gave $(context.pipelineRun.name): the folder of an output path."""
    for node in record.nodes.values():
        for p in node.outputs.parameters if node.outputs else []:
            if p.name == "output-path" and p.value:
                return p.value.split("/", 1)[0]
    return "?"


def _boom(_x):
    raise RuntimeError("the step failed on purpose")


def test_a_failed_run_matches_the_controller_task_by_task(k8s, tmp_path):
    """A failing step: the same tasks fail, the same are skipped, and the ``finally`` report runs
    on both with the same statuses (``$(tasks.X.status)``, ``$(tasks.status)``)."""
    from chains import qa_prompt
    from langchain_core.runnables import RunnableLambda

    tekton_namespace(k8s, NS)
    api = kube_api(k8s)
    chain = {"a": qa_prompt() | RunnableLambda(_boom, name="Boom"), "b": qa_prompt()} | RunnableLambda(
        lambda d: d, name="Join"
    )
    compiled = llmstep.compile(chain, name="fidelity-fails", allow_pickle=True)
    run = compiled.submit({"question": "x"}, engine="tekton", namespace=NS, client=api)
    record = run_tekton(compiled.to_tekton(), {"question": "x"}, runs_dir=tmp_path, quiet=True)
    with pytest.raises(LlmstepError):
        run.wait(timeout=600, poll=2)
    done = run.get()
    assert phase(done) == "Failed" and record.phase == "Failed"
    assert record.state.message == succeeded(done)["message"]  # "Tasks Completed: 4 (Failed: 1, ...), Skipped: 1"
    theirs = taskruns(api, run.name, NS)
    ours = {name: node for name, node in record.nodes.items() if node.phase not in ("Skipped", "Omitted")}
    assert set(ours) == set(theirs) and "on-failure" in theirs
    assert {n: phase(t) for n, t in theirs.items()} == {n: node.phase for n, node in ours.items()}
    skipped = {t["name"] for t in done["status"].get("skippedTasks") or []}
    assert skipped == {n for n, node in record.nodes.items() if node.phase in ("Skipped", "Omitted")}
    assert skipped  # the join after the failed branch never ran
    local_run = _local_run_name(record)
    mine = {p.name: p.value for p in ours["on-failure"].outputs.parameters}
    assert mine["preview"].replace(local_run, "RUN") == results(theirs["on-failure"])["preview"].replace(
        run.name, "RUN"
    )


# ---------------------------------------------------------------- timeouts, hand-edited


def _first(x):
    return x


def _slow(x):
    import time

    time.sleep(180)
    return x


TIMEOUTS = {
    # the whole run's time: the running task is cancelled, nothing after it runs, nor finally
    "pipeline": ({"pipeline": "30s"}, {}),
    # the regular tasks' time: they are cancelled, and finally reports the failure
    "tasks": ({"pipeline": "10m", "tasks": "30s"}, {}),
    # the task's own timeout
    "task": (None, {"timeout": 15}),
}


@pytest.fixture(scope="module")
def timed_runs(k8s, tmp_path_factory):
    tekton_namespace(k8s, NS)
    api = kube_api(k8s)
    submitted = {}
    for case, (timeouts, step) in TIMEOUTS.items():
        chain = (
            RunnableLambda(_first, name="first")
            | llmstep.Step(RunnableLambda(_slow, name="slow"), **step)
            | RunnableLambda(_first, name="never")
        )
        docs = llmstep.compile(chain, name=f"timeout-{case}", allow_pickle=True).to_tekton()
        if timeouts:
            next(d for d in docs if d["kind"] == "PipelineRun")["spec"]["timeouts"] = timeouts
        submitted[case] = (docs, submit(docs, serde.parameter_text("x"), namespace=NS, transport=KubeApi(api)))
    runs_dir = tmp_path_factory.mktemp("timeouts")
    local = {case: run_tekton(docs, "x", runs_dir=runs_dir, quiet=True) for case, (docs, _) in submitted.items()}
    finished = {}
    for case, (_, run) in submitted.items():
        with contextlib.suppress(LlmstepError):
            run.wait(timeout=900, poll=2)
        finished[case] = (run, run.get())
    return api, {case: (*finished[case], local[case]) for case in TIMEOUTS}


@pytest.mark.parametrize("case", list(TIMEOUTS))
def test_timeouts_match_the_controller_task_by_task(case, timed_runs):
    """Which tasks ran, were cancelled or skipped, and the words Tekton uses for each."""
    api, runs = timed_runs
    run, done, record = runs[case]
    same = {run.name: "RUN", record.run_id: "RUN"}

    def words(text):
        for name, stands in same.items():
            text = text.replace(name, stands)
        return text

    assert phase(done) == record.phase == "Failed"
    assert words(record.state.message) == words(succeeded(done)["message"])
    theirs = taskruns(api, run.name, NS)
    ours = {name: node for name, node in record.nodes.items() if node.started_at is not None}
    assert set(ours) == set(theirs)
    for name, taskrun in theirs.items():
        assert ours[name].phase == phase(taskrun), name
        if phase(taskrun) == "Failed":
            assert words(ours[name].message) == words(succeeded(taskrun)["message"]), name
    skipped = {t["name"]: t.get("reason", "") for t in done["status"].get("skippedTasks") or []}
    not_started = {n for n, node in record.nodes.items() if node.started_at is None}
    # the controller lists what it skipped in the reconcile that timed the run out; a task it had
    # not looked at by then is in no list (and, as here, never ran)
    assert set(skipped) <= not_started and (set(skipped) == not_started or case == "pipeline")
    for name, reason in skipped.items():
        if (record.nodes[name].message or "").startswith("PipelineRun"):
            assert record.nodes[name].message == reason, name


def test_a_long_input_in_the_input_param_fails_as_on_the_controller(k8s, tmp_path):
    """A PipelineRun that gives a 300 KB input in the ``input`` string param (as ``tkn pipeline
    start -p input=...`` would), not in ``input-parts``: Tekton puts it in one environment variable,
    and the pod's container never starts (Linux caps one at 128 KiB). The local runner, whose
    forked steps are never exec'd, fails the same tasks the same way."""
    from fidelity_cases import size_cases

    tekton_namespace(k8s, NS)
    api = kube_api(k8s)
    chain, x, opts = size_cases()["size-input-300k-to-two-tasks"]
    compiled = llmstep.compile(chain, name="fidelity-long-param", **opts)
    docs = compiled.to_tekton()
    # $( written $\u0028, as llmstep writes it: Tekton refuses a run whose param values hold $(NAME)
    docs[-1]["spec"]["params"] = [{"name": "input", "value": serde.kube_literal(serde.parameter_text(x))}]
    *objects, pipelinerun = docs
    tekton_api = KubeApi(api)
    for doc in objects:
        tekton_api.apply(NS, doc)
    created = tekton_api.create(NS, pipelinerun)
    record = run_tekton(docs, runs_dir=tmp_path, quiet=True)
    done = wait_done(api, "PipelineRun", created["metadata"]["name"], NS, timeout=600)
    assert phase(done) == "Failed" and record.phase == "Failed"
    theirs = taskruns(api, created["metadata"]["name"], NS)
    ours = {name: node for name, node in record.nodes.items() if node.phase not in ("Skipped", "Omitted")}
    assert set(ours) == set(theirs)
    for name, tr in theirs.items():
        assert ours[name].phase == phase(tr), name
    takers = [s.name for s in compiled.plan.steps if "input" in s.sources]
    assert len(takers) == 2
    core = api.CoreV1Api()
    for name in takers:
        cond = succeeded(theirs[name])
        assert cond["message"] == '"step-exec" exited with code 1: Error', cond
        assert ours[name].message.startswith(cond["message"] + "; exec /tekton/bin/entrypoint: argument list too long")
        pod_name = theirs[name]["status"]["podName"]
        pod = core.read_namespaced_pod(pod_name, NS)
        [state] = [s.state.terminated for s in pod.status.container_statuses if s.name == "step-exec"]
        assert state.exit_code == ours[name].exit_code == 1, state
        log = core.read_namespaced_pod_log(pod_name, NS, container="step-exec")
        assert log.strip() == "exec /tekton/bin/entrypoint: argument list too long"
    assert record.state.message == succeeded(done)["message"]
