"""The Tekton document set the local runner runs, read once: what llmstep generates parses into the
typed PipelineRun with every field the run uses, and what the runner cannot run faithfully is
refused with its place before anything runs."""

from __future__ import annotations

import copy
import json

import pytest
from chains import qa_chain

import llmstep
from llmstep import contract
from llmstep.errors import WorkflowError
from llmstep.local.tekton_doc import STEP_KEYS, EnvVar, Param, When, Workspace, check_relative, parse
from llmstep.local.tekton_time import Deadlines
from llmstep.render import tekton

IMAGE = "llmstep"


def _docs(**opts):
    return copy.deepcopy(llmstep.compile(qa_chain(), **opts).to_tekton())


def _kind(docs, kind):
    return next(d for d in docs if d["kind"] == kind)


def _inline(docs, i=0):
    """Task ``i`` of the Pipeline with its Task's spec written inline (taskSpec), returned to edit."""
    use = _kind(docs, "Pipeline")["spec"]["tasks"][i]
    spec = copy.deepcopy(
        next(d for d in docs if d["kind"] == "Task" and d["metadata"]["name"] == use["taskRef"]["name"])["spec"]
    )
    del use["taskRef"]
    use["taskSpec"] = spec
    return spec


# ---------------------------------------------------------------- the typed fields


def test_a_generated_pipeline_run_parses_into_its_typed_fields():
    docs = _docs(on_failure=llmstep.Diagnose())
    run = parse(docs, IMAGE)
    pipeline_doc = _kind(docs, "Pipeline")
    assert run.kind == "PipelineRun" and run.documents == tuple(docs)
    assert run.pipeline_name == pipeline_doc["metadata"]["name"] and run.namespace == "default"
    assert run.params == {"input": "{}"}
    assert run.workspaces[0] == Workspace("data")
    assert run.workspaces[1] == Workspace(
        "credentials-openai-api-key", secret=True, items=(("OPENAI_API_KEY", "OPENAI_API_KEY"),)
    )
    assert run.deadlines == Deadlines()
    pipeline = run.pipeline
    assert pipeline.output_task == "stroutputparser" == pipeline_doc["metadata"]["annotations"][contract.OUTPUT_TASK]
    assert [p.name for p in pipeline.params] == pipeline.param_names == ["input", "input-parts"]
    assert pipeline.params[0] == Param("input") and pipeline.params[1] == Param("input-parts", [])
    assert [t.name for t in pipeline.tasks] == ["chatprompttemplate", "offlinechatmodel", "stroutputparser"]
    assert [t.name for t in pipeline.final] == ["diagnose"] and pipeline.uses == (*pipeline.tasks, *pipeline.final)

    first, second = pipeline.tasks[0], pipeline.tasks[1]
    assert (first.display_name, first.template, first.deps, first.retries, first.timeout) == (
        "ChatPromptTemplate",
        tekton.TASK_NAME,
        (),
        0,
        None,
    )
    assert second.deps == ("chatprompttemplate",)  # its runAfter
    assert dict(first.params)["input-parts"] == ["$(params.input-parts[*])"]
    assert dict(first.params)["output-dir"] == "$(context.pipelineRun.name)/chatprompttemplate"
    assert first.workspaces == (("data", "data"),)
    task = first.task
    assert task.results == contract.RESULTS and task.workspaces == ("data", "credentials")
    assert Param("payload") in task.params and Param("inputs", ["input"]) in task.params
    step = task.step
    assert step.name == "exec" and step.image == "$(params.image)"
    assert step.argv[:4] == ("llmstep", "exec", "--data-dir", "$(workspaces.data.path)/$(params.output-dir)")
    assert EnvVar("LLMSTEP_PAYLOAD", "$(params.payload)") in step.env

    diagnose = pipeline.final[0]
    assert diagnose.template == tekton.DIAGNOSE_TASK and diagnose.deps == ()
    assert diagnose.when == (When("$(tasks.status)", "in", ("Failed",)),)
    assert diagnose.task.step.argv[:2] == ("llmstep", "diagnose")


def test_a_finally_task_waits_for_nothing_and_a_regular_one_for_the_results_it_reads():
    docs = _docs(on_failure=llmstep.Diagnose())
    tasks = _kind(docs, "Pipeline")["spec"]["tasks"]
    tasks[2].pop("runAfter")
    image = next(p for p in tasks[2]["params"] if p["name"] == "image")
    image["value"] = "$(tasks.chatprompttemplate.results.preview)"
    pipeline = parse(docs, IMAGE).pipeline
    assert {t.name: t.deps for t in pipeline.tasks}["stroutputparser"] == ("chatprompttemplate",)
    assert "$(tasks.chatprompttemplate.status)" in dict(pipeline.final[0].params)["statuses"]
    assert pipeline.final[0].deps == ()


def test_settings_timeouts_and_the_run_annotation_are_typed():
    docs = _docs()
    use = _kind(docs, "Pipeline")["spec"]["tasks"][0]
    use.update(retries=2, timeout="1m30s", displayName="First")
    run_doc = _kind(docs, "PipelineRun")
    run_doc["metadata"].update(namespace="ml", annotations={contract.OUTPUT_TASK: "offlinechatmodel"})
    run_doc["spec"]["timeouts"] = {"pipeline": "10m", "tasks": "8m"}
    run_doc["spec"]["params"].append({"name": "input-parts", "value": ["0/1:{}"]})
    run = parse(docs, IMAGE)
    first = run.pipeline.tasks[0]
    assert (first.retries, first.timeout, first.display_name) == (2, 90.0, "First")
    assert run.deadlines == Deadlines(pipeline=600.0, tasks=480.0)
    assert (run.namespace, run.output_task) == ("ml", "offlinechatmodel")
    assert run.params["input-parts"] == ["0/1:{}"]


def test_an_inline_task_with_env_from_a_secret_and_values_of_other_types():
    docs = _docs()
    spec = _inline(docs)
    spec["steps"][0]["env"].append({"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "s", "key": "K"}}})
    spec["steps"][0]["env"].append({"name": "N", "value": 3})
    _kind(docs, "PipelineRun")["spec"]["params"].append({"name": "input-parts", "value": [1, "b"]})
    run = parse(docs, IMAGE)
    first = run.pipeline.tasks[0]
    assert first.template == "taskSpec"
    env = {e.name: e for e in first.task.step.env}
    assert env["KEY"].value_from == {"secretKeyRef": {"name": "s", "key": "K"}}
    assert env["KEY"].entry() == {"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "s", "key": "K"}}}
    assert env["N"] == EnvVar("N", "3")  # Tekton reads a value as text
    assert run.params["input-parts"] == ["1", "b"]


def test_a_secret_workspace_without_items_holds_every_key():
    docs = _docs()
    _kind(docs, "PipelineRun")["spec"]["workspaces"].append({"name": "credentials", "secret": {"secretName": "s"}})
    assert parse(docs, IMAGE).workspaces[-1] == Workspace("credentials", secret=True, items=())


def test_a_pipeline_run_with_an_inline_pipeline():
    docs = _docs()
    pipeline = _kind(docs, "Pipeline")
    run_doc = _kind(docs, "PipelineRun")
    del run_doc["spec"]["pipelineRef"]
    run_doc["spec"]["pipelineSpec"] = pipeline["spec"]
    docs.remove(pipeline)
    run = parse(docs, IMAGE)
    assert run.pipeline_name == "pipeline" and run.pipeline.output_task is None
    assert [t.name for t in run.pipeline.tasks] == ["chatprompttemplate", "offlinechatmodel", "stroutputparser"]


def test_a_task_run_is_a_one_task_pipeline_passing_its_params_and_workspaces_through():
    compiled = llmstep.compile(qa_chain())
    step = compiled.plan.steps[0]
    run_doc = tekton.task_run(step, json.dumps({"question": "q"}), compiled.plan.image, compiled.plan.secret)
    run_doc["spec"].update(retries=1, timeout="5s")
    run = parse([run_doc], IMAGE)  # the llmstep Task is built in
    assert run.kind == "TaskRun"
    [task] = run.pipeline.tasks
    assert (task.name, task.template, task.retries, task.timeout) == (tekton.TASK_NAME, "taskSpec", 1, 5.0)
    given = {p["name"]: p["value"] for p in run_doc["spec"]["params"]}
    assert set(run.params) == set(given) == set(run.pipeline.param_names)
    assert dict(task.params) == {
        name: f"$(params.{name}[*])" if isinstance(value, list) else f"$(params.{name})"
        for name, value in given.items()
    }
    assert task.workspaces == tuple((w["name"], w["name"]) for w in run_doc["spec"]["workspaces"])


# ---------------------------------------------------------------- each refusal, with its place


def _tasks(docs):
    return _kind(docs, "Pipeline")["spec"]["tasks"]


def _run_spec(docs):
    return _kind(docs, "PipelineRun")["spec"]


def _step(docs):
    return _inline(docs)["steps"][0]


REFUSED = [
    (
        lambda d: d.append(copy.deepcopy(_kind(d, "PipelineRun"))),
        "expected exactly one PipelineRun or TaskRun (or one Pipeline, which gets a run), found 2",
    ),
    (
        lambda d: _run_spec(d)["pipelineRef"].update(name="nope"),
        "PipelineRun references Pipeline 'nope', which is not in the documents",
    ),
    (
        lambda d: _tasks(d)[0].update(runAfter=[_tasks(d)[-1]["name"]]),
        'cycle detected; task "chatprompttemplate" depends on',
    ),
    (
        lambda d: _tasks(d)[0].update(retries="abc"),
        "tasks[0] (chatprompttemplate).retries must be a whole number of at least 0, found 'abc'",
    ),
    (
        lambda d: _tasks(d)[0].update(retries=True),
        "tasks[0] (chatprompttemplate).retries must be a whole number of at least 0, found True",
    ),
    (
        lambda d: _tasks(d)[0].update(retries=-1),
        "tasks[0] (chatprompttemplate).retries must be a whole number of at least 0, found -1",
    ),
    (lambda d: _tasks(d)[0].update(timeout="soon"), "tasks[0] (chatprompttemplate).timeout: 'soon' is not a duration"),
    (
        lambda d: _tasks(d)[1].update(taskRef={"name": "no-such-task"}),
        "task offlinechatmodel: Task 'no-such-task' is not in the documents; give its file too (llmstep run pipelinerun.yaml tasks.yaml)",
    ),
    (
        lambda d: _step(d).update(command=["sh", "-c", "true"], args=[]),
        "task chatprompttemplate: a step must run `llmstep exec ...` or `llmstep diagnose ...` locally, found ['sh', '-c', 'true']",
    ),
    (
        lambda d: _step(d)["args"].__setitem__(1, "/etc/x"),
        "task chatprompttemplate: `llmstep exec` --data-dir /etc/x is outside",
    ),
    (
        lambda d: _inline(d)["steps"].append(dict(_kind(d, "Task")["spec"]["steps"][0], name="second")),
        f"task chatprompttemplate: the local runner runs Tasks with one step using {sorted(STEP_KEYS)}",
    ),
    (
        lambda d: _step(d).update(volumeMounts=[]),
        "task chatprompttemplate: the local runner runs Tasks with one step using",
    ),
    (lambda d: _step(d)["env"].append({"value": "x"}), "task chatprompttemplate step env[2].name is missing"),
    (
        lambda d: _tasks(d)[0].update(when=[{"cel": "'a' == 'a'"}]),
        "tasks[0] (chatprompttemplate).when[0].cel is not supported by the local runner (use input, operator and values)",
    ),
    (lambda d: _tasks(d)[0]["params"][5].pop("value"), "tasks[0] (chatprompttemplate).params[5].value is missing"),
    (lambda d: _run_spec(d)["params"].append({"name": "x"}), "spec.params[1].value is missing"),
    (
        lambda d: _run_spec(d)["workspaces"].append(
            {
                "name": "credentials",
                "secret": {"secretName": "s", "items": [{"key": "OPENAI_API_KEY", "path": "../../planted"}]},
            }
        ),
        "workspace 'credentials' item 'OPENAI_API_KEY' path must be a relative path without '..' (found '../../planted')",
    ),
    (
        lambda d: _run_spec(d)["workspaces"].append(
            {"name": "credentials", "secret": {"secretName": "s", "items": ["K"]}}
        ),
        "spec.workspaces[1].secret.items[0].key is missing",
    ),
    (
        lambda d: _run_spec(d)["workspaces"].append({"name": "a/b", "emptyDir": {}}),
        "workspace 'a/b' must be a relative path without '..' (found 'a/b')",
    ),
    (
        lambda d: _run_spec(d).update(timeouts="5m"),
        "spec.timeouts must be a mapping of pipeline, tasks and finally, found '5m'",
    ),
    (
        lambda d: _run_spec(d).update(timeouts={"pipelines": "1m"}),
        "spec.timeouts.pipelines is not a Tekton timeout (use pipeline, tasks or finally)",
    ),
    (lambda d: _run_spec(d).update(timeouts={"pipeline": -5}), "spec.timeouts.pipeline: -5 should be >= 0"),
    (lambda d: _run_spec(d).update(timeouts={"pipeline": "soon"}), "spec.timeouts.pipeline: 'soon' is not a duration"),
    (
        lambda d: _run_spec(d).update(timeouts={"pipeline": "1m", "tasks": "0s"}),
        "spec.timeouts.tasks: '0s' should be <= pipeline duration ('1m'), and not 0",
    ),
    (
        lambda d: _run_spec(d).update(timeouts={"pipeline": "1m", "tasks": "2m"}),
        "spec.timeouts.tasks: '2m' should be <= pipeline duration ('1m')",
    ),
    (
        lambda d: _run_spec(d).update(timeouts={"pipeline": "1m", "tasks": "40s", "finally": "30s"}),
        "spec.timeouts: tasks '40s' + finally '30s' should be <= pipeline duration ('1m')",
    ),
]


@pytest.mark.parametrize(("mutate", "fragment"), REFUSED, ids=[str(i) for i in range(len(REFUSED))])
def test_what_the_runner_cannot_run_is_refused_when_parsed(mutate, fragment):
    docs = _docs()
    mutate(docs)
    with pytest.raises(WorkflowError) as err:
        parse(docs, IMAGE)
    assert fragment in str(err.value)


def test_a_task_run_of_a_task_not_in_the_documents_is_refused():
    compiled = llmstep.compile(qa_chain())
    run_doc = tekton.task_run(compiled.plan.steps[0], "{}", compiled.plan.image, compiled.plan.secret)
    run_doc["spec"]["taskRef"]["name"] = "nope"
    with pytest.raises(WorkflowError, match="TaskRun references Task 'nope', which is not in the documents"):
        parse([run_doc], IMAGE)
    run_doc["spec"]["taskRef"]["name"] = tekton.TASK_NAME
    run_doc["spec"]["retries"] = "x"
    with pytest.raises(WorkflowError, match=r"tasks\[0\] \(llmstep-run\)\.retries must be a whole number"):
        parse([run_doc], IMAGE)


def test_an_unsupported_task_is_refused_even_when_a_when_would_skip_it():
    """Refused before the run, as the Argo subset is: never half way through a run."""
    docs = _docs()
    _step(docs)["volumeMounts"] = []
    _tasks(docs)[0]["when"] = [{"input": "a", "operator": "in", "values": ["b"]}]
    with pytest.raises(WorkflowError, match="the local runner runs Tasks with one step"):
        parse(docs, IMAGE)


def test_a_task_the_run_does_not_use_is_not_read():
    """A document set may carry other Tasks (for the cluster); only the ones the run uses are read."""
    docs = _docs()
    spare = copy.deepcopy(_kind(docs, "Task"))
    spare["metadata"]["name"] = "spare"
    spare["spec"]["steps"].append(dict(spare["spec"]["steps"][0], name="second"))
    parse([*docs, spare], IMAGE)


@pytest.mark.parametrize(
    ("path", "plain", "ok"),
    [
        ("data", True, True),
        ("a/b", False, True),
        ("a/b", True, False),
        ("../x", False, False),
        ("/etc", False, False),
        ("", True, False),
        (3, True, False),
    ],
)
def test_check_relative(path, plain, ok):
    if ok:
        check_relative(path, "it", plain=plain)
    else:
        with pytest.raises(WorkflowError, match="it must be a relative path without '..'"):
            check_relative(path, "it", plain=plain)
