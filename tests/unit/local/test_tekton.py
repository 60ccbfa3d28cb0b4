"""The local Tekton runner: a Pipeline's tasks run as steps sharing the data workspace, its finally
task on failure, a TaskRun alone, secrets per task, resume; a file outside what it runs faithfully
is refused before anything runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml
from chains import corpus, needs_file, normalize, qa_chain, qa_prompt
from conftest import run_cli
from langchain_core.runnables import RunnableLambda

import llmstep
from llmstep import contract, serde
from llmstep.local.entry import run_tekton
from llmstep.render import tekton


def docs_for(chain, **opts):
    compiled = llmstep.compile(chain, **opts)
    return compiled, compiled.to_tekton()


def test_finally_hook_runs_only_on_failure(tmp_path):
    ok = run_tekton(docs_for(qa_chain())[1], {"question": "fine"}, runs_dir=tmp_path / "r", quiet=True)
    assert ok.phase == "Succeeded" and ok.result() == "offline answer: fine"
    assert ok.nodes["on-failure"].phase == "Skipped"  # a skipped finally task still counts as success

    def boom(x):
        raise RuntimeError("tekton step failed")

    bad = run_tekton(
        docs_for(qa_prompt() | RunnableLambda(boom), allow_pickle=True)[1],
        {"question": "x"},
        runs_dir=tmp_path / "r",
        quiet=True,
    )
    assert bad.phase == "Failed"
    assert bad.nodes["boom"].phase == "Failed" and "tekton step failed" in bad.nodes["boom"].message
    hook = bad.nodes["on-failure"]
    assert hook.phase == "Succeeded"
    preview = hook.outputs.parameter("preview")
    assert "failed" in preview and "'boom': 'Failed'" in preview and "'chatprompttemplate': 'Succeeded'" in preview


def test_large_value_passes_between_tasks(tmp_path):
    chain = RunnableLambda(lambda s: s * 50_000) | RunnableLambda(lambda s: [len(s), s[:3]])
    compiled, docs = docs_for(chain, allow_pickle=True)
    record = run_tekton(docs, "abcdef", runs_dir=tmp_path / "r", quiet=True)
    assert record.result() == [300_000, "abc"]
    sizes = [p.stat().st_size for p in (record.root / "workspaces" / "data").rglob("output.json")]
    assert max(sizes) > 300_000  # the value travelled as a workspace file, not a result


def test_taskrun_of_one_payload_runs_locally(tmp_path):
    compiled = llmstep.compile(qa_prompt() | llmstep.OfflineChatModel())
    model = compiled.plan.steps[1]
    value = serde.dumps_value(qa_prompt().invoke({"question": "taskrun?"}))
    docs = [
        tekton.run_task(compiled.plan.image),
        tekton.task_run(model, value, compiled.plan.image, compiled.plan.secret),
    ]
    path = tmp_path / "taskrun.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    result = run_cli("run", str(path), "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["phase"] == "Succeeded"
    assert report["output"]["kwargs"]["content"] == "offline answer: taskrun?"


def test_model_step_reads_only_its_secret_workspace(tmp_path):
    from langchain_core.output_parsers import StrOutputParser
    from langchain_openai import ChatOpenAI
    from openai_server import FakeOpenAI

    with FakeOpenAI() as server:
        llm = ChatOpenAI(model="m", api_key="sk-placeholder", base_url=server.url, max_retries=0)
        chain = qa_prompt() | llm | StrOutputParser()
        out = llmstep.compile(chain).run_local(
            {"question": "t"},
            engine="tekton",
            runs_dir=tmp_path / "r",
            secrets={"OPENAI_API_KEY": "sk-secret-workspace", "OTHER": "x"},
        )
    assert out == "echo: t"
    assert server.requests[0]["headers"]["authorization"] == "Bearer sk-secret-workspace"
    everything = "".join(p.read_text(errors="ignore") for p in (tmp_path / "r").rglob("*") if p.is_file())
    assert "sk-secret-workspace" not in everything


@pytest.mark.parametrize(
    "case",
    [
        "sequence",
        "terminal-parallel",
        "assign",
        "itemgetter-dict",
        "messages-in",
        "documents",
        "unicode",
        "lc-lookalike",
        "nested-parallel",
        "step-boundary",
    ],
)
def test_equivalence_through_tekton(case, tmp_path):
    chain, x = corpus()[case]
    got = llmstep.compile(chain, allow_pickle=True).run_local(x, engine="tekton", runs_dir=tmp_path / "r")
    assert normalize(got) == normalize(chain.invoke(x))


def test_tekton_failed_run_resumes_reusing_finished_tasks(tmp_path):
    from llmstep.local.entry import resume_run

    flag = tmp_path / "flag"
    chain = RunnableLambda(lambda x: x * 2) | RunnableLambda(needs_file(str(flag)))
    docs = llmstep.compile(RunnableLambda(str) | chain, allow_pickle=True).to_tekton()
    record = run_tekton(docs, 21, runs_dir=tmp_path / "r", quiet=True)
    assert record.phase == "Failed" and record.nodes["gate"].phase == "Failed"
    assert record.nodes["on-failure"].phase == "Succeeded"
    first = record.nodes["runnablelambda"].finished_at
    flag.write_text("ok")
    again = resume_run(record.run_id, runs_dir=tmp_path / "r", quiet=True, allow_pickle=True)
    assert again.phase == "Succeeded" and again.result() == "2121 (gate passed)"
    assert again.nodes["runnablelambda"].finished_at == first  # not run again
    assert again.nodes["on-failure"].phase == "Skipped"


def test_a_missing_input_key_hints_at_tekton_commands_on_tekton(tmp_path):
    compiled = llmstep.compile(qa_chain())
    record = run_tekton(compiled.to_tekton(), {"wrong": "key"}, runs_dir=tmp_path, quiet=True)
    assert record.phase == "Failed"
    text = "".join(str(f.get("message")) for f in record.failures())
    assert "tkn pipeline start -p input='{...}'" in text and "argo submit" not in text


def test_tekton_data_dir_outside_the_workspaces_refused_by_the_local_runner(tmp_path):
    docs = llmstep.compile(qa_chain()).to_tekton()
    pipeline = next(d for d in docs if d["kind"] == "Pipeline")
    for param in pipeline["spec"]["tasks"][0]["params"]:
        if param["name"] == "output-dir":
            param["value"] = "../../../../../../victim"  # from the run's folder in the workspace up to tmp_path
    (tmp_path / "victim" / "input").mkdir(parents=True)
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    result = subprocess.run(
        [sys.executable, "-m", "llmstep", "run", str(path), "--input", '{"question": "q"}'],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    assert "--data-dir" in result.stderr and "outside the task's workspaces" in result.stderr
    assert (tmp_path / "victim" / "input").is_dir()  # the runner cleared nothing outside


def test_tekton_secret_item_path_outside_its_workspace_refused(tmp_path):
    docs = llmstep.compile(qa_chain()).to_tekton()
    run = next(d for d in docs if d["kind"] == "PipelineRun")
    run["spec"]["workspaces"].append(
        {
            "name": "credentials",
            "secret": {
                "secretName": "llm-credentials",
                "items": [{"key": "OPENAI_API_KEY", "path": "../../../../planted"}],
            },
        }
    )
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    result = subprocess.run(
        [sys.executable, "-m", "llmstep", "run", str(path), "--input", '{"question": "q"}'],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "OPENAI_API_KEY": "sk-not-a-real-key"},
    )
    assert result.returncode == 2, result.stderr
    assert "item 'OPENAI_API_KEY' path must be a relative path without '..'" in result.stderr


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("retries", "abc", "tasks[0] (chatprompttemplate).retries must be a whole number"),
        ("retries", -1, ".retries must be a whole number"),
        ("timeout", "soon", "tasks[0] (chatprompttemplate).timeout: 'soon' is not a duration"),
    ],
)
def test_invalid_tekton_field_refused_with_its_path_before_the_run(tmp_path, field, value, fragment):
    docs = llmstep.compile(qa_chain()).to_tekton()
    pipeline = next(d for d in docs if d["kind"] == "Pipeline")
    pipeline["spec"]["tasks"][0][field] = value
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    result = run_cli("run", str(path), "--input", '{"question": "q"}', cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert fragment in result.stderr
    assert not (tmp_path / ".llmstep" / "runs").exists()


def test_missing_tekton_task_refused_before_the_run_leaves_no_record(tmp_path):
    docs = llmstep.compile(qa_chain()).to_tekton()
    pipeline = next(d for d in docs if d["kind"] == "Pipeline")
    pipeline["spec"]["tasks"][1]["taskRef"] = {"name": "no-such-task"}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    result = run_cli("run", str(path), "--input", '{"question": "q"}', cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "'no-such-task' is not in the documents" in result.stderr
    runs = tmp_path / ".llmstep" / "runs"
    assert not runs.exists() or not any(runs.iterdir())


# ---------------------------------------------------------------- timeouts, as Tekton's reconciler enforces them


def _first(x):
    return x


def _slow(x):
    import time

    time.sleep(60)
    return x


def _timed(tmp_path, timeouts=None, **step):
    chain = (
        RunnableLambda(_first, name="first")
        | llmstep.Step(RunnableLambda(_slow, name="slow"), **step)
        | RunnableLambda(_first, name="never")
    )
    docs = docs_for(chain, allow_pickle=True)[1]
    if timeouts:
        next(d for d in docs if d["kind"] == "PipelineRun")["spec"]["timeouts"] = timeouts
    return run_tekton(docs, "x", runs_dir=tmp_path / "r", quiet=True)


CANCELLED = 'TaskRun "{}-slow" was cancelled. TaskRun cancelled as the PipelineRun it belongs to has timed out.'


def test_the_pipeline_timeout_cancels_the_running_task_and_runs_nothing_after_it(tmp_path):
    record = _timed(tmp_path, {"pipeline": "8s"})  # time enough for "first" on a loaded machine
    assert record.phase == "Failed"
    assert record.state.message == f'PipelineRun "{record.run_id}" failed to finish within "8s"'
    assert record.nodes["first"].phase == "Succeeded"
    assert (record.nodes["slow"].phase, record.nodes["slow"].message) == ("Failed", CANCELLED.format(record.run_id))
    assert record.nodes["never"].phase in ("Skipped", "Omitted") and record.nodes["never"].started_at is None
    assert record.nodes["on-failure"].phase == "Skipped"  # finally does not run after the pipeline's timeout
    assert record.nodes["on-failure"].message == "PipelineRun timeout has been reached"


def test_the_tasks_timeout_cancels_the_regular_tasks_and_finally_still_runs(tmp_path):
    record = _timed(tmp_path, {"pipeline": "10m", "tasks": "8s"})
    assert record.phase == "Failed"
    assert record.state.message == f'PipelineRun "{record.run_id}" failed due to tasks failed to finish within "8s"'
    assert record.nodes["slow"].message == CANCELLED.format(record.run_id)
    assert record.nodes["on-failure"].phase == "Succeeded"  # the report of the failure ran, in its own time


def test_a_tasks_own_timeout_fails_it_in_tektons_words(tmp_path):
    record = _timed(tmp_path, timeout=3)
    assert record.nodes["slow"].message == f'TaskRun "{record.run_id}-slow" failed to finish within "3s"'
    # first, slow and the finally report ended; never was skipped
    assert record.state.message == "Tasks Completed: 3 (Failed: 1, Cancelled 0), Skipped: 1"


@pytest.mark.parametrize(
    ("timeouts", "fragment"),
    [
        ({"pipeline": "soon"}, "spec.timeouts.pipeline: 'soon' is not a duration"),
        ({"pipeline": "1m", "tasks": "2m"}, "spec.timeouts.tasks: '2m' should be <= pipeline duration ('1m')"),
        (
            {"pipeline": "1m", "tasks": "40s", "finally": "30s"},
            "tasks '40s' + finally '30s' should be <= pipeline duration",
        ),
        ({"pipelines": "1m"}, "spec.timeouts.pipelines is not a Tekton timeout (use pipeline, tasks or finally)"),
    ],
)
def test_a_bad_timeouts_field_is_refused_before_the_run(tmp_path, timeouts, fragment):
    docs = docs_for(qa_chain())[1]
    next(d for d in docs if d["kind"] == "PipelineRun")["spec"]["timeouts"] = timeouts
    with pytest.raises(llmstep.LlmstepError) as err:
        run_tekton(docs, {"question": "q"}, runs_dir=tmp_path / "r", quiet=True)
    assert fragment in str(err.value)
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


def test_a_run_after_cycle_is_refused_before_the_run_not_recorded_as_succeeded(tmp_path):
    """It was recorded Succeeded with no task run; Tekton's webhook refuses the Pipeline."""
    docs = llmstep.compile(qa_chain()).to_tekton()
    pipeline = next(d for d in docs if d["kind"] == "Pipeline")
    pipeline["spec"]["tasks"][0]["runAfter"] = [pipeline["spec"]["tasks"][-1]["name"]]
    path = tmp_path / "cycle.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    result = run_cli("run", str(path), "--input", '{"question": "q"}', cwd=tmp_path, timeout=60)
    assert result.returncode == 2, result.stderr
    assert 'cycle detected; task "chatprompttemplate" depends on "stroutputparser"' in result.stderr
    assert not (tmp_path / ".llmstep" / "runs").exists()


LONG = {"question": "é$(params.input)-- " * 20_000}  # 320 KB of JSON: more than one env variable may hold


def _long_input_chain():
    """Two tasks take the chain input (a fan-out), a third joins them."""
    return {
        "size": RunnableLambda(lambda d: len(d["question"]), name="Size"),
        "tail": RunnableLambda(lambda d: d["question"][-9:], name="Tail"),
    } | RunnableLambda(lambda d: d, name="Join")


@pytest.mark.parametrize("fork", [True, False], ids=["forked", "started"])
def test_a_chain_input_longer_than_an_env_variable_reaches_every_task_that_takes_it(tmp_path, fork):
    """The run gives a long input as ``input-parts`` (arguments of 64 KiB each), as ``submit``
    does: one environment variable holds at most 128 KiB, and a pod with a longer one never starts."""
    from llmstep.local.isolation import Isolation
    from llmstep.local.options import RunOptions

    chain = _long_input_chain()
    compiled, docs = docs_for(chain, allow_pickle=True)
    record = run_tekton(
        docs, LONG, RunOptions(isolation=Isolation(fork=fork, fork_idle=0)), runs_dir=tmp_path / "r", quiet=True
    )
    assert record.phase == "Succeeded", record.failures()
    assert record.result() == chain.invoke(LONG)
    given = record.state.arguments
    assert given["input"] == "" and len(given["input-parts"]) > 1
    assert json.loads(contract.join_value_parts(given["input-parts"], "parts")) == LONG
    with_input = compiled.to_tekton(LONG)[-1]["spec"]["params"]  # what kubectl create -f would run
    assert [p["name"] for p in with_input] == ["input", "input-parts"] and with_input[1]["value"] == given[
        "input-parts"
    ]


def test_a_long_input_param_fails_its_task_as_the_pod_would_not_start(tmp_path):
    """A PipelineRun that gives the long input in the ``input`` string param (``tkn pipeline start
    -p input=...``): Tekton puts it in one environment variable, and the pod's container cannot
    start. The local runner fails the task the same way, though its forked steps are never exec'd."""
    _, docs = docs_for(_long_input_chain(), allow_pickle=True)
    docs[-1]["spec"]["params"] = [{"name": "input", "value": json.dumps(LONG)}]
    record = run_tekton(docs, runs_dir=tmp_path / "r", quiet=True)
    assert record.phase == "Failed"
    for task in ("size-size", "tail-tail"):
        node = record.nodes[task]
        assert node.phase == "Failed" and node.exit_code == 1, node
        assert node.message.startswith(
            '"step-exec" exited with code 1: Error; exec /tekton/bin/entrypoint: argument '
            "list too long: environment variable LLMSTEP_INPUT is "
        )  # Tekton's words, then why
    assert record.nodes["join"].phase in ("Skipped", "Omitted")
    assert record.nodes["on-failure"].phase == "Succeeded"


def test_a_taskrun_with_a_long_input_gives_it_in_parts(tmp_path):
    compiled = llmstep.compile(RunnableLambda(lambda d: len(d["question"]), name="Size"), allow_pickle=True)
    step = compiled.plan.steps[0]
    doc = tekton.task_run(step, json.dumps(LONG), compiled.plan.image, compiled.plan.secret)
    params = {p["name"]: p["value"] for p in doc["spec"]["params"]}
    assert params["input"] == "" and json.loads(contract.join_value_parts(params["input-parts"], "parts")) == LONG
    record = run_tekton(
        [tekton.run_task(compiled.plan.image), doc], runs_dir=tmp_path / "r", quiet=True, allow_pickle=True
    )
    assert record.phase == "Succeeded", record.failures()
    assert record.result() == len(LONG["question"])
