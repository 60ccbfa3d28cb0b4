"""Generated Workflows run by the real Argo Workflows controller (v4.0) of the test cluster.

Every outcome here is the controller's: phases, node trees, output parameters, artifacts in the
S3 store and pod logs are what Argo wrote. Opt in with `pytest -m cluster`; see tests/cluster/.
"""

from __future__ import annotations

import json
import time

import pytest
from argo_cluster import (
    EXAMPLES,
    NS,
    Counter,
    FakeOpenAI,
    cli,
    diagnosis_reply,
    load_example,
    offline_env,
    param,
    pods_of,
    step_nodes,
    wait_phase,
)
from chains import normalize, qa_chain, qa_prompt, two_model_chain, word_counts
from conftest import ROOT, kube_api
from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import RunnableLambda

import llmstep
from llmstep import serde
from llmstep.cluster.argo import WorkflowFailed, attach
from llmstep.cluster.transports import KubeApi
from llmstep.offline import OfflineChatModel

pytestmark = pytest.mark.cluster
GATEWAY_KEY = "sk-test-gateway-key-0123456789"


@pytest.fixture(scope="module")
def api(k8s):
    client = kube_api(k8s)
    k8s.kubectl("delete", "secret", "llm-credentials", "-n", NS, "--ignore-not-found")
    # As the README tells users: the model's key lives only in this Secret.
    k8s.kubectl(
        "create", "secret", "generic", "llm-credentials", "-n", NS, f"--from-literal=OPENAI_API_KEY={GATEWAY_KEY}"
    )
    return client


def _submit(compiled, value, api, **kw):
    return compiled.submit(value, namespace=NS, client=api, **kw)


# ---------------------------------------------------------------- the examples, three ways


@pytest.mark.parametrize("example", list(EXAMPLES))
def test_example_submitted_from_python_equals_invoke(example, api, monkeypatch):
    offline_env(monkeypatch)
    ref, value, opts = EXAMPLES[example]
    chain = load_example(ref)
    compiled = llmstep.compile(chain, name=example, **opts)
    run = _submit(compiled, value, api)
    wf = run.wait(timeout=600, poll=1)
    assert run.result() == chain.invoke(value)
    # One pod per chain step, no more: the DAG's pods are exactly its steps.
    assert len(pods_of(api, run.name)) == len(compiled.plan.steps) == len(step_nodes(wf))


def _gateway_chain(k8s, ref, monkeypatch):
    """The example as the golden file has it (ChatOpenAI), invoked here against the same
    OpenAI-compatible gateway the cluster's pods reach (tests/cluster: workflowDefaults)."""
    offline_env(monkeypatch)
    monkeypatch.setenv("OPENAI_API_KEY", GATEWAY_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", k8s.gateway_url)
    return load_example(ref)


@pytest.mark.parametrize("example", list(EXAMPLES))
def test_golden_file_with_argo_submit_then_llmstep_result(example, api, k8s, monkeypatch):
    ref, value, _ = EXAMPLES[example]
    expected = _gateway_chain(k8s, ref, monkeypatch).invoke(value)
    # As the README writes it: argo submit FILE -p input=... --wait
    out = cli(
        k8s,
        "argo",
        "submit",
        str(ROOT / "workflows" / f"{example}.yaml"),
        "-n",
        NS,
        "-p",
        f"input={json.dumps(value)}",
        "--wait",
    )
    assert out.returncode == 0, out.stderr
    name = next(line.split()[1] for line in out.stdout.splitlines() if line.startswith("Name:"))
    assert f"{name} Succeeded" in out.stdout
    assert llmstep_result(k8s, name) == expected


@pytest.mark.parametrize("example", list(EXAMPLES))
def test_golden_file_with_kubectl_create_runs_its_example_input(example, api, k8s, monkeypatch):
    ref, value, _ = EXAMPLES[example]
    expected = _gateway_chain(k8s, ref, monkeypatch).invoke(value)
    out = cli(k8s, "kubectl", "create", "-n", NS, "-f", str(ROOT / "workflows" / f"{example}.yaml"), "-o", "name")
    assert out.returncode == 0, out.stderr
    name = out.stdout.strip().split("/")[-1]
    wait_phase(api, name)
    assert llmstep_result(k8s, name) == expected


def llmstep_result(k8s, name):
    out = cli(k8s, "llmstep", "result", name, "-n", NS, "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["output"]


# ---------------------------------------------------------------- data modes, batch, shared templates


def test_parameters_mode_equals_invoke(api):
    chain = qa_chain()
    run = _submit(llmstep.compile(chain, name="qa-params", data="parameters"), {"question": "by parameter?"}, api)
    wf = run.wait(timeout=300, poll=1)
    assert run.result() == chain.invoke({"question": "by parameter?"})
    assert all("artifacts" not in (n.get("outputs") or {}) for n in step_nodes(wf).values())


def test_artifacts_mode_stores_each_output_in_the_s3_repository(api, k8s):
    chain = qa_chain()
    run = _submit(llmstep.compile(chain, name="qa-s3"), {"question": "in s3?"}, api)
    wf = run.wait(timeout=300, poll=1)
    for node in step_nodes(wf).values():
        [artifact] = [a for a in node["outputs"]["artifacts"] if a["name"] == "output"]
        stored = k8s.s3_object(artifact["s3"]["key"])
        assert json.loads(stored)["llmstep"] == serde.FORMAT_VERSION  # the step's own output.json, unarchived
    assert run.result() == chain.invoke({"question": "in s3?"})


def _fails_on_b(x):
    if x["question"] == "b":
        raise ValueError("no answer for b")
    return x


def test_batch_keeps_a_failed_item_in_its_place(api):
    chain = RunnableLambda(_fails_on_b) | qa_prompt() | OfflineChatModel() | StrOutputParser()
    compiled = llmstep.compile(chain, name="qa-batch", allow_pickle=True)
    inputs = [{"question": "a"}, {"question": "b"}, {"question": "c"}]
    run = compiled.submit_batch(inputs, parallelism=2, namespace=NS, client=api)
    wf = run.wait(timeout=600, poll=1)
    assert wf["spec"]["templates"][0]["parallelism"] == 2
    results = run.results(return_exceptions=True)
    assert results[0] == chain.invoke(inputs[0]) and results[2] == chain.invoke(inputs[2])
    # The controller's node message names the step and its exit code (the error itself is in its log).
    assert (
        isinstance(results[1], llmstep.ItemFailed)
        and "fails-on-b" in str(results[1])
        and "exit code 1" in str(results[1])
    )
    # failFast: false, as the controller honoured it: the items after the failure still ran.
    assert sum(1 for n in wf["status"]["nodes"].values() if n.get("type") == "Pod" and n["phase"] == "Succeeded") >= 6


def _kind_and_value(x):
    return [type(x).__name__, x]


def test_argo_submit_of_the_batch_workflow_takes_a_plain_json_list(api, k8s, tmp_path):
    """As the README writes it: argo submit qa-batch.yaml -p inputs='[...]'; strings arrive as
    strings ({{item}} is a string's bare text), objects as objects, and results keep their order."""
    chain = RunnableLambda(_kind_and_value) | RunnableLambda(lambda x: x)
    path = tmp_path / "batch.yaml"
    path.write_text(llmstep.compile(chain, name="plain-batch", allow_pickle=True).to_batch_yaml(parallelism=2))
    inputs = ["plain text", {"question": "an object"}, [1, 2]]
    out = cli(k8s, "argo", "submit", str(path), "-n", NS, "-p", f"inputs={json.dumps(inputs)}", "--wait")
    assert out.returncode == 0, out.stderr
    name = next(line.split()[1] for line in out.stdout.splitlines() if line.startswith("Name:"))
    got = cli(k8s, "llmstep", "result", name, "-n", NS)
    assert got.returncode == 0, got.stderr
    assert [json.loads(line)["output"] for line in got.stdout.splitlines()] == [chain.invoke(x) for x in inputs]


def test_readme_batch_commands_as_written(api, k8s, tmp_path, monkeypatch):
    """The README's `llmstep compile ... --batch 8 -o qa-batch.yaml` then `argo submit qa-batch.yaml
    -p inputs='[...]'`, with the README's own list."""
    import re
    import shlex

    readme = (ROOT / "README.md").read_text()
    assert "llmstep compile examples/qa.py:chain --batch 8 -o qa-batch.yaml" in readme
    line = next(m.group(0) for m in re.finditer(r"^argo submit qa-batch\.yaml -p inputs=.*$", readme, re.M))
    offline_env(monkeypatch)
    made = cli(
        k8s,
        "llmstep",
        "compile",
        str(ROOT / "examples" / "qa.py") + ":chain",
        "--batch",
        "8",
        "-o",
        str(tmp_path / "qa-batch.yaml"),
    )
    assert made.returncode == 0, made.stderr
    argv = shlex.split(line)
    argv[2] = str(tmp_path / "qa-batch.yaml")
    out = cli(k8s, *argv, "-n", NS, "--wait")
    assert out.returncode == 0, out.stderr
    name = next(row.split()[1] for row in out.stdout.splitlines() if row.startswith("Name:"))
    inputs = json.loads(argv[argv.index("-p") + 1].split("=", 1)[1])
    got = cli(k8s, "llmstep", "result", name, "-n", NS)
    assert got.returncode == 0, got.stderr
    chain = load_example("examples/qa.py:chain")
    assert [json.loads(row)["output"] for row in got.stdout.splitlines()] == [chain.invoke(x) for x in inputs]


def test_step_env_from_a_configmap_and_a_secret(api, k8s):
    from argo_cluster import STEP_ENV, step_env_compiled

    compiled = step_env_compiled(k8s, NS)
    assert STEP_ENV["ACME_TOKEN"] not in compiled.to_yaml()
    run = _submit(compiled, 0, api)
    run.wait(timeout=600, poll=1)
    assert run.result() == STEP_ENV


def test_structured_output_travels_and_prints_as_data(api, k8s):
    from value_chains import value_corpus

    chain, x = value_corpus()["pydantic-tools-parser"]
    compiled = llmstep.compile(chain, name="structured", allow_pickle=True)
    run = _submit(compiled, x, api)
    run.wait(timeout=600, poll=1)
    assert run.result() == chain.invoke(x)  # the Verdict objects themselves, in this process
    printed = cli(k8s, "llmstep", "result", run.name, "-n", NS, "--json")  # a process without the class
    assert printed.returncode == 0, printed.stderr
    verdict = json.loads(printed.stdout)["output"][0]
    assert verdict == {"label": "ok", "score": 0.5, "reasons": [{"text": "fine", "weight": 1.0}], "when": None}


def test_shared_template_runs_each_step_under_its_own_name(api):
    parser = StrOutputParser()
    chain = (
        qa_prompt()
        | OfflineChatModel()
        | parser
        | RunnableLambda(str.upper, name="Upper")
        | parser
        | RunnableLambda(str.lower, name="Lower")
    )
    compiled = llmstep.compile(chain, name="qa-shared", allow_pickle=True)
    wf_doc = compiled.to_dict()
    shared = [
        t
        for t in wf_doc["spec"]["templates"]
        if "llmstep.dev/shared-by" in (t.get("metadata") or {}).get("annotations", {})
    ]
    assert shared, "the two parsers share one template"
    run = _submit(compiled, {"question": "shared"}, api)
    wf = run.wait(timeout=300, poll=1)
    assert run.result() == chain.invoke({"question": "shared"})
    logs = run.logs()
    parsers = [name for name in step_nodes(wf) if name.startswith("StrOutputParser")]
    assert len(parsers) == 2 and all(name in logs for name in parsers)


# ---------------------------------------------------------------- llmstep.Step settings


def test_retries_show_a_retried_node_that_then_succeeds(api):
    counter = Counter()
    url = f"{counter.url}/flaky"

    def flaky(x):
        import json as _json
        import urllib.request

        with urllib.request.urlopen(url, timeout=10) as resp:
            if _json.loads(resp.read())["count"] == 1:
                raise RuntimeError("first attempt fails")
        return x

    try:
        chain = llmstep.Step(RunnableLambda(flaky), name="flaky", retries=2, backoff="1s") | RunnableLambda(
            lambda x: x + "!"
        )
        run = _submit(llmstep.compile(chain, name="retry", allow_pickle=True), "ok", api)
        wf = run.wait(timeout=300, poll=1)
        assert run.result() == "ok!"
    finally:
        counter.close()
    assert counter.counts["/flaky"] == 2
    nodes = wf["status"]["nodes"].values()
    [retry] = [n for n in nodes if n["type"] == "Retry" and n["displayName"] == "flaky"]
    attempts = sorted((n for n in nodes if n["id"] in retry["children"]), key=lambda n: n["startedAt"])
    assert [n["phase"] for n in attempts] == ["Failed", "Succeeded"]


def test_timeout_kills_a_sleeping_step(api):
    chain = llmstep.Step(RunnableLambda(lambda x: __import__("time").sleep(120) or x), name="sleeper", timeout=5)
    run = _submit(llmstep.compile(chain, name="timeout", allow_pickle=True), "x", api)
    started = time.monotonic()
    with pytest.raises(WorkflowFailed):
        run.wait(timeout=300, poll=1)
    assert time.monotonic() - started < 90
    [node] = step_nodes(run.get()).values()
    assert node["phase"] in ("Failed", "Error") and "deadline" in node.get("message", "").lower()


def test_resources_reach_the_step_pod(api):
    resources = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "512Mi"}}
    chain = llmstep.Step(qa_chain(), name="sized", resources=resources)
    run = _submit(llmstep.compile(chain, name="resources"), {"question": "sized"}, api)
    run.wait(timeout=300, poll=1)
    [pod] = pods_of(api, run.name)
    [main] = [c for c in pod.spec.containers if c.name == "main"]
    assert main.resources.requests == {"cpu": "50m", "memory": "64Mi"} and main.resources.limits == {"memory": "512Mi"}


# ---------------------------------------------------------------- a model step, its key and its usage


def test_model_step_uses_the_secret_key_and_reports_usage(api):
    from langchain_openai import ChatOpenAI

    with FakeOpenAI() as fake:
        model = ChatOpenAI(model="gpt-4o-mini", base_url=fake.url, api_key="sk-compile-time-placeholder-000")
        chain = qa_prompt() | model | StrOutputParser()
        run = _submit(llmstep.compile(chain, name="model"), {"question": "usage?"}, api)
        wf = run.wait(timeout=300, poll=1)
        assert run.result() == "echo: usage?"
        [request] = fake.requests
    assert request["headers"]["authorization"] == f"Bearer {GATEWAY_KEY}"  # from the Secret, not the code
    usage = json.loads(param(step_nodes(wf)["ChatOpenAI"], "usage"))["gpt-4o-mini"]  # per model, as the server named it
    assert (usage["input_tokens"], usage["output_tokens"], usage["total_tokens"]) == (7, 3, 10)


def test_run_usage_totals_are_the_servers_counts(api):
    """Two model steps against a server that counts each request's words: WorkflowRun.usage()
    sums what the controller wrote in the step nodes, exactly what the server reported."""
    with FakeOpenAI(counts=word_counts) as fake:
        chain = two_model_chain(fake.url)
        run = _submit(llmstep.compile(chain, name="usage"), {"question": "how many tokens?"}, api)
        run.wait(timeout=300, poll=1)
    reported = {u["model"]: (u["prompt_tokens"], u["completion_tokens"], u["total_tokens"]) for u in fake.usage}
    assert len(fake.usage) == 2 and set(reported) == {"model-a", "model-b"}
    assert {m: (c["input_tokens"], c["output_tokens"], c["total_tokens"]) for m, c in run.usage().items()} == reported


# ---------------------------------------------------------------- failure: WorkflowFailed, the exit handler


def _boom(x):
    raise RuntimeError("the step failed on purpose")


def test_a_real_failure_raises_workflow_failed_naming_the_step(api):
    chain = qa_prompt() | RunnableLambda(_boom, name="Boom")
    run = _submit(llmstep.compile(chain, name="fails", allow_pickle=True), {"question": "x"}, api)
    with pytest.raises(WorkflowFailed) as err:
        run.wait(timeout=300, poll=1)
    text = str(err.value)
    assert "step Boom (boom)" in text and f"llmstep diagnose workflow/{run.name} -n {NS}" in text
    assert [f["step"] for f in err.value.failures] == ["Boom"]
    assert "RuntimeError: the step failed on purpose" in run.logs()["Boom"]


@pytest.fixture(scope="module")
def diagnose_rbac(k8s):
    k8s.kubectl("apply", "-n", NS, "-f", str(ROOT / "workflows" / "llmstep-diagnose-rbac.yaml"))


def test_exit_handler_diagnoses_only_a_failed_workflow(api, diagnose_rbac):
    with FakeOpenAI(reply=diagnosis_reply) as fake:
        on_failure = llmstep.Diagnose(base_url=fake.url)
        ok = _submit(llmstep.compile(qa_chain(), name="ok-diag", on_failure=on_failure), {"question": "fine"}, api)
        bad = _submit(
            llmstep.compile(
                qa_prompt() | RunnableLambda(_boom, name="Boom"),
                name="bad-diag",
                allow_pickle=True,
                on_failure=on_failure,
            ),
            {"question": "x"},
            api,
        )
        ok_wf = ok.wait(timeout=300, poll=1)
        with pytest.raises(WorkflowFailed):
            bad.wait(timeout=300, poll=1)
        bad_wf = bad.get()
    exit_nodes = [n for n in bad_wf["status"]["nodes"].values() if n["name"].endswith(".onExit")]
    assert exit_nodes and all(n["phase"] != "Skipped" for n in exit_nodes)
    report = "\n".join(text for name, text in bad.logs().items() if "diagnose" in name.lower())
    assert "failed steps: Boom" in report
    # Only the failed workflow asked the model; the succeeded one skipped its handler.
    assert len(fake.requests) == 1
    ok_exit = [
        n for n in ok_wf["status"]["nodes"].values() if n.get("type") == "Pod" and "diagnose" in n["templateName"]
    ]
    assert all(n["phase"] == "Skipped" for n in ok_exit)


def test_diagnose_workflow_template_through_template_ref(api, k8s, diagnose_rbac):
    k8s.kubectl("apply", "-n", NS, "-f", str(ROOT / "workflows" / "llmstep-diagnose-template.yaml"))
    with FakeOpenAI(reply=diagnosis_reply) as fake:
        doc = llmstep.compile(
            qa_prompt() | RunnableLambda(_boom, name="Boom"), name="user-exit", allow_pickle=True
        ).to_dict()
        doc["spec"]["onExit"] = "exit"
        doc["spec"]["templates"].append(
            {
                "name": "exit",
                "steps": [
                    [
                        {
                            "name": "diagnose",
                            "when": "{{workflow.status}} != Succeeded",
                            "templateRef": {"name": "llmstep-diagnose", "template": "diagnose"},
                            "arguments": {"parameters": [{"name": "base-url", "value": fake.url}]},
                        }
                    ]
                ],
            }
        )
        doc["spec"]["arguments"]["parameters"][0]["value"] = json.dumps({"question": "x"})
        created = api.CustomObjectsApi().create_namespaced_custom_object(
            "argoproj.io", "v1alpha1", NS, "workflows", doc
        )
        wf = wait_phase(api, created["metadata"]["name"])
        assert wf["status"]["phase"] == "Failed"
        assert len(fake.requests) == 1
    logs = attach(wf, NS, KubeApi(api)).logs()
    assert any("failed steps: Boom" in text for text in logs.values())


# ---------------------------------------------------------------- WorkflowRun on the real engine


def test_wait_does_not_take_pending_or_running_for_done(api):
    chain = RunnableLambda(lambda x: __import__("time").sleep(3) or x) | RunnableLambda(lambda x: x * 2)
    run = _submit(llmstep.compile(chain, name="slow", allow_pickle=True), "ab", api)
    seen = []
    get = run.transport.get

    def recording(namespace, kind, name):
        wf = get(namespace, kind, name)
        seen.append((wf.get("status") or {}).get("phase"))
        return wf

    run.transport.get = recording
    run.wait(timeout=300, poll=0.5)
    assert seen[-1] == "Succeeded" and any(p in (None, "Pending", "Running") for p in seen[:-1])
    assert run.result() == "abab"


def test_cancel_stops_a_running_workflow(api):
    chain = RunnableLambda(lambda x: __import__("time").sleep(300) or x)
    run = _submit(llmstep.compile(chain, name="cancel", allow_pickle=True), "x", api)
    deadline = time.monotonic() + 120
    while not any(n.get("phase") == "Running" for n in step_nodes(run.get()).values()):
        assert time.monotonic() < deadline, "the step never started"
        time.sleep(1)
    run.cancel()
    started = time.monotonic()
    with pytest.raises(WorkflowFailed) as err:
        run.wait(timeout=120, poll=1)
    assert time.monotonic() - started < 60
    assert "Terminate" in str(err.value) or "terminated" in str(err.value).lower()


def test_argo_server_transport_against_the_real_argo_server(api, k8s):
    chain = qa_chain()
    run = llmstep.compile(chain, name="via-server").submit(
        {"question": "server?"}, namespace=NS, argo_server=k8s.argo_server_url
    )
    assert run.url == f"{k8s.argo_server_url}/workflows/{NS}/{run.name}"
    run.wait(timeout=300, poll=1)
    assert run.result() == chain.invoke({"question": "server?"})
    assert set(run.logs()) == {s.display for s in llmstep.compile(chain).plan.steps}


def test_as_runnable_composes_a_cluster_workflow_into_a_chain(api):
    inner = llmstep.compile(qa_chain(), name="inner").as_runnable(namespace=NS, client=api, poll=1)
    outer = inner | RunnableLambda(str.upper)
    assert outer.invoke({"question": "nested"}) == qa_chain().invoke({"question": "nested"}).upper()


# ---------------------------------------------------------------- what the Argo UI shows


def test_the_ui_node_panel_has_display_names_previews_usage_and_logs(api, k8s):
    import urllib.request

    chain = qa_chain()
    compiled = llmstep.compile(chain, name="ui")
    run = _submit(compiled, {"question": "what does the UI show?"}, api)
    run.wait(timeout=300, poll=1)
    base = k8s.argo_server_url
    with urllib.request.urlopen(f"{base}/api/v1/workflows/{NS}/{run.name}", timeout=30) as resp:
        wf = json.loads(resp.read())
    nodes = step_nodes(wf)
    assert set(nodes) == {s.display for s in compiled.plan.steps}
    for step in compiled.plan.steps:
        node = nodes[step.display]
        assert param(node, "preview") and param(node, "usage") is not None
        pod = next(
            p.metadata.name
            for p in pods_of(api, run.name)
            if p.metadata.annotations.get("workflows.argoproj.io/node-id") == node["id"]
        )
        url = f"{base}/api/v1/workflows/{NS}/{run.name}/log?logOptions.container=main&podName={pod}"
        with urllib.request.urlopen(url, timeout=30) as resp:
            lines = [json.loads(line)["result"] for line in resp.read().decode().splitlines() if line.strip()]
        assert lines, f"no log for {step.display}"
    assert "offline answer" in param(nodes["StrOutputParser"], "preview")
    assert normalize(run.result()) == normalize(chain.invoke({"question": "what does the UI show?"}))
