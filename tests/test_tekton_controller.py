"""Tekton documents run by the real Tekton Pipelines controller (v1.15.0, with its webhook) of the
test cluster.

Every outcome here is the controller's: conditions, TaskRuns, results, skipped tasks and pod logs
are what Tekton wrote. Opt in with `pytest -m cluster`; see tests/cluster/.
"""

from __future__ import annotations

import json
import re
import shlex

import pytest
from argo_cluster import FakeOpenAI, cli, load_example, offline_env
from chains import qa_chain, qa_prompt, two_model_chain, word_counts
from conftest import ROOT, kube_api
from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import RunnableLambda
from tekton_cluster import GATEWAY_KEY, NS, phase, results, taskruns, tekton_namespace, wait_done

import llmstep
from llmstep.cluster.tekton import PipelineRunFailed, PipelineRunHandle
from llmstep.cluster.transports import KubeApi
from llmstep.diagnose import Redactor
from llmstep.diagnose.collector import Collector
from llmstep.render import tekton as render

pytestmark = pytest.mark.cluster
QUESTION = "What does Tekton do?"


@pytest.fixture(scope="module")
def api(k8s):
    tekton_namespace(k8s)
    return kube_api(k8s)


def _submit(chain, value, api, **opts):
    return llmstep.compile(chain, **opts).submit(value, engine="tekton", namespace=NS, client=api)


def _boom(_x):
    raise RuntimeError("the step failed on purpose")


def _readme_tekton_commands() -> list[str]:
    """The README's Tekton shell block, one command per entry (continuations joined)."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Tekton") :]
    block = section[section.index("```sh\n") + 6 :]
    block = block[: block.index("```")]
    return [re.sub(r"\s+#.*$", "", c).strip() for c in block.replace("\\\n", " ").splitlines() if c.strip()]


# ---------------------------------------------------------------- as the README writes it


def test_readme_tekton_commands_run_as_written(k8s, tmp_path, monkeypatch):
    """Every command of the README's Tekton block, in order, in a folder that holds the
    repository's examples/ and tekton/ (the commands name them relatively), in the kubeconfig's
    namespace (``default``, prepared by cluster.py as the README says). Each PipelineRun and
    TaskRun they create succeeds, and each output is its chain's."""
    offline_env(monkeypatch)  # llmstep compile picks the offline model; tekton/ calls the gateway
    api = kube_api(k8s)
    k8s.kubectl("delete", "secret", "llm-credentials", "-n", "default", "--ignore-not-found")
    k8s.kubectl(
        "create",
        "secret",
        "generic",
        "llm-credentials",
        "-n",
        "default",
        f"--from-literal=OPENAI_API_KEY={GATEWAY_KEY}",
    )
    for name in ("examples", "tekton"):
        (tmp_path / name).symlink_to(ROOT / name)
    custom = api.CustomObjectsApi()

    def names(plural):
        return {
            o["metadata"]["name"]
            for o in custom.list_namespaced_custom_object("tekton.dev", "v1", "default", plural)["items"]
        }

    before = {"pipelineruns": names("pipelineruns"), "taskruns": names("taskruns")}
    commands = _readme_tekton_commands()
    assert any(c.startswith("tkn pipeline start qa ") for c in commands)
    outputs = {}
    for command in commands:
        out = cli(k8s, "bash", "-c", f"cd {shlex.quote(str(tmp_path))} && {command}", timeout=600)
        assert out.returncode == 0, f"{command}\n{out.stdout}\n{out.stderr}"
        outputs[command] = out.stdout
    runs = sorted(names("pipelineruns") - before["pipelineruns"])
    assert len(runs) == 4  # create of the --run-only file, submit, create of tekton/, tkn pipeline start
    offline = load_example("examples/qa.py:chain").invoke({"question": QUESTION})
    for name in runs:
        done = wait_done(api, "PipelineRun", name, "default")
        assert phase(done) == "Succeeded", (name, done["status"])
        model = json.dumps(done["status"].get("pipelineSpec") or {})
        expected = offline if "OfflineChatModel" in model else f"echo: {QUESTION}"  # the gateway echoes
        handle = PipelineRunHandle(name, "default", KubeApi(api), output_task="stroutputparser")
        assert handle.result() == expected, name
    submit = next(c for c in commands if c.startswith("llmstep submit"))
    assert outputs[submit].strip() == offline
    logs = next(c for c in commands if c.startswith("tkn pipelinerun logs"))
    assert "[chatopenai : exec]" in outputs[logs] and "tokens=gpt-4o-mini:in=" in outputs[logs]
    local = next(c for c in commands if c.startswith("llmstep run qa-tekton.yaml"))
    assert outputs[local].strip() == offline
    [taskrun] = [t for t in names("taskruns") - before["taskruns"] if t.startswith("chatopenai-")]
    done = wait_done(api, "TaskRun", taskrun, "default")
    assert phase(done) == "Succeeded" and results(done)["preview"].startswith(f"echo: {QUESTION}")
    usage = json.loads(results(done)["usage"])["gpt-4o-mini"]
    assert (usage["input_tokens"], usage["output_tokens"]) == (7, 3)


def test_model_taskrun_calls_the_tests_server_with_the_key_from_the_secret(api, k8s):
    """One serialized model step as a TaskRun (as tekton/qa-model-taskrun.yaml is made), calling
    the test's own OpenAI-compatible server on loopback: the key is the Secret's, never the
    compile-time one, and the usage is in the results."""
    from langchain_core.messages import HumanMessage
    from langchain_core.prompt_values import ChatPromptValue
    from langchain_openai import ChatOpenAI

    from llmstep import serde

    with FakeOpenAI() as fake:
        model = ChatOpenAI(model="gpt-4o-mini", base_url=fake.url, api_key="sk-compile-time-placeholder-000")
        plan = llmstep.compile(qa_prompt() | model | StrOutputParser(), name="taskrun").plan
        step = next(s for s in plan.steps if s.secrets)
        value = serde.dumps_value(ChatPromptValue(messages=[HumanMessage("usage?")]))
        doc = render.task_run(step, value, plan.image, plan.secret)
        created = api.CustomObjectsApi().create_namespaced_custom_object("tekton.dev", "v1", NS, "taskruns", doc)
        done = wait_done(api, "TaskRun", created["metadata"]["name"])
        [request] = fake.requests
    assert phase(done) == "Succeeded", done["status"]
    assert request["headers"]["authorization"] == f"Bearer {GATEWAY_KEY}"
    assert "sk-compile-time-placeholder" not in json.dumps(doc)
    assert results(done)["preview"] == "echo: usage?"
    usage = json.loads(results(done)["usage"])["gpt-4o-mini"]
    assert (usage["input_tokens"], usage["output_tokens"], usage["total_tokens"]) == (7, 3, 10)


def test_pipelinerun_usage_totals_are_the_servers_counts(api):
    """Two model steps against a server that counts each request's words: the handle's usage()
    sums the TaskRuns' usage results, exactly what the server reported."""
    with FakeOpenAI(counts=word_counts) as fake:
        chain = two_model_chain(fake.url)
        run = _submit(chain, {"question": "how many tokens?"}, api, name="usage")
        run.wait(timeout=600, poll=1)
    reported = {u["model"]: (u["prompt_tokens"], u["completion_tokens"], u["total_tokens"]) for u in fake.usage}
    assert len(fake.usage) == 2 and set(reported) == {"model-a", "model-b"}
    assert {m: (c["input_tokens"], c["output_tokens"], c["total_tokens"]) for m, c in run.usage().items()} == reported


def test_a_task_with_script_steps_runs(api, k8s):
    """Users' Tasks run ``script:`` steps. Tekton writes each script into the pod with an init
    container (``place-scripts``) from its shell image, which the node must hold
    (tests/cluster/tekton.py names it; without it the TaskRun fails with ErrImagePull)."""
    import tekton

    spec = {
        "params": [{"name": "who", "type": "string"}],
        "results": [{"name": "greeting", "type": "string"}, {"name": "sum", "type": "string"}],
        "steps": [
            {
                "name": "shell",
                "image": k8s.step_image,
                "env": [{"name": "WHO", "value": "$(params.who)"}],
                "script": '#!/bin/sh\nset -eu\nprintf "hello %s" "$WHO" | tee "$(results.greeting.path)"\n',
            },
            {
                "name": "python",
                "image": k8s.step_image,
                "script": "#!/usr/bin/env python3\nopen('$(results.sum.path)', 'w').write(str(sum(range(10))))\n",
            },
        ],
    }
    doc = {
        "apiVersion": "tekton.dev/v1",
        "kind": "TaskRun",
        "metadata": {"generateName": "script-"},
        "spec": {"params": [{"name": "who", "value": "Tekton's users"}], "taskSpec": spec},
    }
    created = api.CustomObjectsApi().create_namespaced_custom_object("tekton.dev", "v1", NS, "taskruns", doc)
    done = wait_done(api, "TaskRun", created["metadata"]["name"])
    assert phase(done) == "Succeeded", done["status"]
    assert results(done) == {"greeting": "hello Tekton's users", "sum": "45"}
    pod = api.CoreV1Api().read_namespaced_pod(done["status"]["podName"], NS)
    assert {c.name: c.image for c in pod.spec.init_containers}["place-scripts"] == tekton.SHELL_IMAGE


# ---------------------------------------------------------------- the handle: wait, result, logs, cancel


def test_submit_returns_a_handle_whose_result_is_invoke(api):
    chain = qa_chain()
    run = _submit(chain, {"question": "handle?"}, api, name="handle")
    assert run.wait(timeout=300, poll=1)["metadata"]["name"] == run.name
    assert run.result() == chain.invoke({"question": "handle?"})
    logs = run.logs()
    assert set(logs) == {"chatprompttemplate", "offlinechatmodel", "stroutputparser"}
    assert "runnable=OfflineChatModel" in logs["offlinechatmodel"]


def test_a_large_output_comes_back_whole(api):
    """Results are capped at 4 KiB; the output is read from the output task's log instead."""
    chain = qa_prompt() | RunnableLambda(lambda _x: "x" * 20000, name="Big")
    run = _submit(chain, {"question": "big"}, api, name="big", allow_pickle=True)
    run.wait(timeout=300, poll=1)
    assert run.result() == "x" * 20000
    tr = taskruns(api, run.name)["big"]
    assert len(results(tr)["preview"]) < 4096


def test_a_real_failure_raises_naming_the_failed_task_and_diagnose(api):
    run = _submit(
        qa_prompt() | RunnableLambda(_boom, name="Boom"), {"question": "x"}, api, name="fails", allow_pickle=True
    )
    with pytest.raises(PipelineRunFailed) as err:
        run.wait(timeout=300, poll=1)
    text = str(err.value)
    assert "task boom (taskrun " in text and f"llmstep diagnose pipelinerun/{run.name} -n {NS}" in text
    assert [f["task"] for f in err.value.failures] == ["boom"]
    assert "RuntimeError: the step failed on purpose" in run.logs()["boom"]


def test_wait_does_not_take_pending_for_done_and_cancel_stops_the_run(api):
    import time

    def slow(x):
        import time as t

        t.sleep(120)
        return x

    run = _submit(
        qa_prompt() | RunnableLambda(slow, name="Slow"), {"question": "x"}, api, name="slow", allow_pickle=True
    )
    with pytest.raises(llmstep.errors.SubmissionError, match="still"):
        run.wait(timeout=3, poll=1)
    deadline = time.monotonic() + 120
    while "slow" not in taskruns(api, run.name) and time.monotonic() < deadline:
        time.sleep(1)
    run.cancel()
    done = wait_done(api, "PipelineRun", run.name, timeout=120)
    assert done["status"]["conditions"][0]["reason"] == "Cancelled"
    with pytest.raises(PipelineRunFailed, match="cancelled"):
        run.wait(timeout=10)


# ---------------------------------------------------------------- finally and diagnosis on real failures


def _tekton_diagnosis_reply(body):
    """The stand-in model's answer: the failed tasks the evidence names (so the report proves
    what evidence reached the model)."""
    text = "\n".join(str(m.get("content", "")) for m in body.get("messages", []))
    failed = set(re.findall(r"task (\S+): Failed", text))  # a finally task's $(tasks.X.status)
    failed |= set(re.findall(r"## taskrun \S+-(\w+)\ncondition Succeeded=False", text))  # the API's TaskRuns
    failed = sorted(failed)
    return json.dumps(
        {
            "summary": f"failed tasks: {', '.join(failed) or 'none'}",
            "root_cause": "the task raised",
            "evidence": failed,
            "fix_steps": [{"description": "fix the task", "command": None}],
            "confidence": "high",
        }
    )


def test_finally_diagnoses_only_a_failed_pipelinerun(api):
    with FakeOpenAI(reply=_tekton_diagnosis_reply) as fake:
        on_failure = llmstep.Diagnose(base_url=fake.url)
        ok = _submit(qa_chain(), {"question": "fine"}, api, name="ok-diag", on_failure=on_failure)
        bad = _submit(
            qa_prompt() | RunnableLambda(_boom, name="Boom"),
            {"question": "x"},
            api,
            name="bad-diag",
            allow_pickle=True,
            on_failure=on_failure,
        )
        ok_done = ok.wait(timeout=300, poll=1)
        with pytest.raises(PipelineRunFailed):
            bad.wait(timeout=300, poll=1)
        requests = list(fake.requests)
    skipped = {t["name"] for t in ok_done["status"].get("skippedTasks") or []}
    assert "diagnose" in skipped
    bad_tasks = taskruns(api, bad.name)
    assert phase(bad_tasks["diagnose"]) == "Succeeded"
    assert "failed tasks: boom" in results(bad_tasks["diagnose"])["summary"]
    assert len(requests) == 1  # only the failed run asked the model


def _evidence(api, target):
    evidence = Collector(api, NS, tail=20).collect(target)
    return evidence.render(Redactor())


def test_diagnose_a_failing_step(api):
    run = _submit(
        qa_prompt() | RunnableLambda(_boom, name="Boom"), {"question": "x"}, api, name="diag-step", allow_pickle=True
    )
    with pytest.raises(PipelineRunFailed):
        run.wait(timeout=300, poll=1)
    text = _evidence(api, f"pipelinerun/{run.name}")
    # the finally task (its diagnosis step is skipped without on_failure) counts as completed
    assert "condition Succeeded=False (Failed: Tasks Completed: 3 (Failed: 1, Cancelled 0), Skipped: 0)" in text
    assert f"taskrun {run.name}-boom" in text and "step exec: Error, exit code 1" in text
    assert "RuntimeError: the step failed on purpose" in text
    tr_text = _evidence(api, f"taskrun/{run.name}-boom")
    assert "exited with code 1" in tr_text


def test_llmstep_diagnose_pipelinerun_and_taskrun_on_the_command_line(api, k8s, monkeypatch):
    """`llmstep diagnose pipelinerun/NAME` and `taskrun/NAME` as a user types them, against the
    test's own OpenAI-compatible server: the model sees the failed task, the report names it."""
    run = _submit(
        qa_prompt() | RunnableLambda(_boom, name="Boom"), {"question": "x"}, api, name="diag-cli", allow_pickle=True
    )
    with pytest.raises(PipelineRunFailed):
        run.wait(timeout=300, poll=1)
    monkeypatch.setenv("DIAG_KEY", "sk-diagnosis-key-for-the-stand-in-0000")
    with FakeOpenAI(reply=_tekton_diagnosis_reply) as fake:
        for target in (f"pipelinerun/{run.name}", f"taskrun/{run.name}-boom"):
            out = cli(
                k8s,
                "llmstep",
                "diagnose",
                target,
                "-n",
                NS,
                "--provider",
                "compatible",
                "--base-url",
                fake.url,
                "--api-key-env",
                "DIAG_KEY",
                "--format",
                "json",
                input_text="",
            )
            assert out.returncode == 0, out.stderr
            sent = fake.requests[-1]["body"]["messages"][-1]["content"]
            assert "RuntimeError: the step failed on purpose" in sent and GATEWAY_KEY not in sent
            if target.startswith("pipelinerun/"):  # the evidence lists each task's outcome; the reply names the failed
                assert "failed tasks: boom" in out.stdout


def test_diagnose_a_missing_task(api, k8s):
    doc = {
        "apiVersion": "tekton.dev/v1",
        "kind": "PipelineRun",
        "metadata": {"generateName": "missing-task-"},
        "spec": {"pipelineSpec": {"tasks": [{"name": "only", "taskRef": {"name": "no-such-task"}}]}},
    }
    name = api.CustomObjectsApi().create_namespaced_custom_object("tekton.dev", "v1", NS, "pipelineruns", doc)[
        "metadata"
    ]["name"]
    done = wait_done(api, "PipelineRun", name)
    assert phase(done) == "Failed"
    text = _evidence(api, f"pipelinerun/{name}")
    assert "CouldntGetTask" in text and "no-such-task" in text


def test_diagnose_a_timeout(api):
    def slow(x):
        import time

        time.sleep(300)
        return x

    compiled = llmstep.compile(
        qa_prompt() | llmstep.Step(RunnableLambda(slow, name="Slow"), timeout=5), name="diag-timeout", allow_pickle=True
    )
    run = compiled.submit({"question": "x"}, engine="tekton", namespace=NS, client=api)
    with pytest.raises(PipelineRunFailed) as err:
        run.wait(timeout=300, poll=1)
    assert "TaskRunTimeout" in str(err.value)
    text = _evidence(api, f"pipelinerun/{run.name}")
    assert f'TaskRunTimeout: TaskRun "{run.name}-slow" failed to finish within "5s"' in text
    assert f"pod {run.name}-slow-pod" in text  # Tekton deletes a timed-out TaskRun's pod: the evidence says so


def test_step_env_from_a_configmap_and_a_secret(api, k8s):
    """A step with env embeds the Task's spec with the env added; the controller resolves the
    ConfigMap's and the Secret's keys into the step's container."""
    from argo_cluster import STEP_ENV, step_env_compiled

    compiled = step_env_compiled(k8s, NS)
    assert STEP_ENV["ACME_TOKEN"] not in compiled.to_tekton_yaml()
    run = compiled.submit(0, engine="tekton", namespace=NS, client=api)
    run.wait(timeout=600, poll=1)
    assert run.result() == STEP_ENV
