"""Tekton rendering: valid, native documents from the same Plan as Argo's, a task per step, values
through env and the workspace, secrets per step; a Plan built by hand renders without compile()."""

from __future__ import annotations

import json

import plans
import pytest
import yaml
from chains import openai_chain, qa_chain, qa_prompt
from conftest import ROOT, run_cli
from schemas import tekton_errors

import llmstep
from llmstep.plan import Plan, SecretKeyRef, StepSettings
from llmstep.render import tekton, tekton_tasks
from llmstep.render.tekton_checks import check_documents

KEY = "sk-tekton-key-abcdefghijklmnopqrstuvwxyz"


def docs_for(chain, **opts):
    compiled = llmstep.compile(chain, **opts)
    return compiled, compiled.to_tekton()


@pytest.mark.parametrize("shape", ["qa", "openai", "parallel", "assign", "settings"])
def test_generated_documents_validate_strictly_and_pass_webhook_rules(shape):
    chains = {
        "qa": qa_chain(),
        "openai": openai_chain(KEY),
        "parallel": {"a": qa_chain(), "b": qa_chain()} | qa_prompt(),
        "assign": llmstep.Step(qa_prompt(), name="p", retries=2, timeout=30) | (lambda x: x),
        "settings": llmstep.Step(qa_prompt(), resources={"cpu": "100m"}, image="example/x:1"),
    }
    compiled, docs = docs_for(chains[shape], allow_pickle=True)
    docs.append(tekton.task_run(compiled.plan.steps[0], '{"question": "q"}', compiled.plan.image, compiled.plan.secret))
    docs += tekton.rbac()
    for doc in docs:
        if doc["apiVersion"] == "tekton.dev/v1":
            assert tekton_errors(doc) == [], doc["kind"]
    check_documents(docs)


def test_one_pipeline_task_per_step_with_run_after_and_siblings():
    chain = {"a": qa_chain(), "b": qa_prompt()} | qa_prompt()
    compiled, (task, pipe, run) = docs_for(chain)
    tasks = {t["name"]: t for t in pipe["spec"]["tasks"]}
    assert set(tasks) == {s.name for s in compiled.plan.steps}
    assert "runAfter" not in tasks["a-chatprompttemplate"] and "runAfter" not in tasks["b-chatprompttemplate"]
    assert sorted(tasks["chatprompttemplate"]["runAfter"]) == ["a-stroutputparser", "b-chatprompttemplate"]
    assert tasks["a-offlinechatmodel"]["displayName"] == "a-OfflineChatModel"
    assert pipe["spec"]["params"][0] == {"name": "input", "type": "string", "description": "The chain input, as JSON."}
    assert [(p["name"], p["type"], p["default"]) for p in pipe["spec"]["params"][1:]] == [("input-parts", "array", [])]
    # every task that takes the chain input takes it either way; the others take neither
    for name, use in tasks.items():
        given = {p["name"]: p["value"] for p in use["params"]}
        takes = name in ("a-chatprompttemplate", "b-chatprompttemplate")
        assert ("input" in given, "input-parts" in given) == (takes, takes), name
        if takes:
            assert given["input-parts"] == ["$(params.input-parts[*])"]


def test_results_are_small_and_data_moves_through_the_workspace():
    compiled, (task, pipe, run) = docs_for(qa_chain())
    assert [r["name"] for r in task["spec"]["results"]] == ["preview", "output-path", "sha256", "usage"]
    second = pipe["spec"]["tasks"][1]
    inputs = next(p["value"] for p in second["params"] if p["name"] == "inputs")
    assert inputs == ["chatprompttemplate=$(context.pipelineRun.name)/chatprompttemplate/output.json"]
    assert run["spec"]["workspaces"][0]["volumeClaimTemplate"]["spec"]["accessModes"] == ["ReadWriteOnce"]


def test_secrets_per_step_exactly_as_on_argo():
    compiled, (task, pipe, run) = docs_for(openai_chain(KEY))
    bindings = {t["name"]: [w["name"] for w in t["workspaces"]] for t in pipe["spec"]["tasks"]}
    assert bindings == {
        "chatprompttemplate": ["data"],
        "chatopenai": ["data", "credentials"],
        "stroutputparser": ["data"],
    }
    secret = next(w for w in run["spec"]["workspaces"] if "secret" in w)
    assert secret["secret"]["items"] == [{"key": "OPENAI_API_KEY", "path": "OPENAI_API_KEY"}]
    assert KEY not in compiled.to_tekton_yaml()


def test_cli_compile_engine_tekton_and_run_the_files(tmp_path):
    out = tmp_path / "qa-tekton.yaml"
    result = run_cli("compile", "examples/qa.py:chain", "--engine", "tekton", "-o", str(out), cwd=ROOT)
    assert result.returncode == 0, result.stderr
    kinds = [d["kind"] for d in yaml.safe_load_all(out.read_text())]
    assert kinds == ["Task", "Pipeline"]  # the reusable objects: `kubectl apply -f` as often as you like
    ran = run_cli("run", str(out), "-p", 'input={"question": "from files"}', cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "offline answer: from files"
    run_only = run_cli(
        "compile", "examples/qa.py:chain", "--engine", "tekton", "--run-only", "--input", '{"question": "q"}', cwd=ROOT
    )
    [run] = list(yaml.safe_load_all(run_only.stdout))
    assert run["kind"] == "PipelineRun" and run["metadata"]["generateName"] == "qa-"
    assert run["spec"]["params"] == [{"name": "input", "value": '{"question": "q"}'}]
    refused = run_cli("compile", "examples/qa.py:chain", "--run-only", cwd=ROOT)
    assert refused.returncode == 2 and "--run-only writes a Tekton PipelineRun: add --engine tekton" in refused.stderr


# ---------------------------------------------------------------- a Plan built by hand (no compile())


def _hand_rendered(plan):
    """The Task, Pipeline and PipelineRun render.tekton makes of a Plan, valid and past the webhook's
    rules; the Pipeline's tasks by name."""
    docs = tekton.render(plan)
    assert [d["kind"] for d in docs] == ["Task", "Pipeline", "PipelineRun"]
    for doc in docs:
        assert tekton_errors(doc) == [], doc["kind"]
    check_documents(docs)
    _, pipe, run = docs
    return pipe, run, {t["name"]: t for t in pipe["spec"]["tasks"]}


def _params(task):
    return {p["name"]: p["value"] for p in task["params"]}


def test_a_hand_built_sequence_renders_a_task_per_step_wired_in_order():
    plan = plans.sequence()
    pipe, run, tasks = _hand_rendered(plan)
    assert list(tasks) == ["ask", "answer"]
    assert "runAfter" not in tasks["ask"] and tasks["answer"]["runAfter"] == ["ask"]
    ask, answer = _params(tasks["ask"]), _params(tasks["answer"])
    assert ask["inputs"] == ["input"] and ask["input"] == "$(params.input)"
    assert answer["inputs"] == ["ask=$(context.pipelineRun.name)/ask/output.json"] and "input" not in answer
    assert answer["output-dir"] == "$(context.pipelineRun.name)/answer"
    assert answer["log-output"] == "true" and "log-output" not in ask  # the output task logs the output
    assert pipe["metadata"]["annotations"]["llmstep.dev/output-task"] == "answer"
    assert {r["name"]: r["value"] for r in pipe["spec"]["results"]}[
        "output-path"
    ] == "$(tasks.answer.results.output-path)"
    for step in plan.steps:
        assert tasks[step.name]["taskRef"] == {"name": tekton_tasks.TASK_NAME}
        assert json.loads(_params(tasks[step.name])["payload"]) == step.payload  # the plan's payload, as it is
    assert run["spec"]["pipelineRef"] == {"name": "hand-seq"} and [w["name"] for w in run["spec"]["workspaces"]] == [
        "data"
    ]


def test_a_hand_built_fan_in_runs_the_branches_at_once_and_gives_the_consumer_a_file_each():
    _, _, tasks = _hand_rendered(plans.fan_in())
    assert "runAfter" not in tasks["left"] and "runAfter" not in tasks["right"]
    assert sorted(tasks["join"]["runAfter"]) == ["left", "right"]
    assert _params(tasks["join"])["inputs"] == [
        "left=$(context.pipelineRun.name)/left/output.json",
        "right=$(context.pipelineRun.name)/right/output.json",
    ]


def test_a_hand_built_plans_secret_keys_go_only_to_the_step_that_declares_them():
    steps = (
        plans.prompt_step("ask", "Q: {question}", ["input"]),
        plans.prompt_step("model", "M {text}", ["step", "ask"], secrets=("OPENAI_API_KEY", "ACME_API_KEY")),
        plans.prompt_step("after", "A {text}", ["step", "model"]),
    )
    pipe, run, tasks = _hand_rendered(
        Plan(name="hand-secret", steps=steps, output="after", image="example/llmstep:1", secret="team-keys")
    )
    workspace = tekton.credentials_workspace(("ACME_API_KEY", "OPENAI_API_KEY"))
    assert {name: t["workspaces"] for name, t in tasks.items()} == {
        "ask": [{"name": "data", "workspace": "data"}],
        "model": [{"name": "data", "workspace": "data"}, {"name": "credentials", "workspace": workspace}],
        "after": [{"name": "data", "workspace": "data"}],
    }
    assert [w["name"] for w in run["spec"]["workspaces"]] == ["data", workspace]
    assert run["spec"]["workspaces"][1]["secret"] == {
        "secretName": "team-keys",
        "items": [{"key": "ACME_API_KEY", "path": "ACME_API_KEY"}, {"key": "OPENAI_API_KEY", "path": "OPENAI_API_KEY"}],
    }


def test_a_hand_built_steps_settings_reach_its_task_and_no_other():
    resources = {"requests": {"cpu": "100m"}, "limits": {"memory": "64Mi"}}
    settings = StepSettings(
        image="example/other:2",
        retries=2,
        timeout=90,
        resources=resources,
        env=(("MODE", "fast"), ("TOKEN", SecretKeyRef("team", "token"))),
    )
    steps = (
        plans.prompt_step("ask", "Q: {question}", ["input"], settings=settings),
        plans.prompt_step("plain", "P {text}", ["step", "ask"]),
    )
    plan = Plan(name="hand-settings", steps=steps, output="plain", image="example/llmstep:1")
    _, run, tasks = _hand_rendered(plan)
    ask, plain = tasks["ask"], tasks["plain"]
    assert ask["retries"] == 2 and ask["timeout"] == "90s" and _params(ask)["image"] == "example/other:2"
    assert not {"retries", "timeout"} & set(plain) and _params(plain)["image"] == "example/llmstep:1"
    assert run["spec"]["taskRunSpecs"] == [{"pipelineTaskName": "ask", "computeResources": resources}]
    # a Task takes no env per use: the step with env embeds the Task's spec with its env added
    assert plain["taskRef"] == {"name": tekton_tasks.TASK_NAME} and "taskRef" not in ask
    assert ask["taskSpec"]["steps"][0]["env"][-2:] == [
        {"name": "MODE", "value": "fast"},
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "team", "key": "token"}}},
    ]
    one = tekton.task_run(plan.steps[0], '{"question": "q"}', plan.image, plan.secret)  # the step alone, as a TaskRun
    assert tekton_errors(one) == []
    assert (
        one["spec"]["computeResources"] == resources and one["spec"]["timeout"] == "90s" and one["spec"]["retries"] == 2
    )


@pytest.mark.parametrize("size", [10, 200_000])
def test_a_chain_input_reaches_the_pod_as_json_kubernetes_does_not_expand(size):
    r"""Kubernetes replaces ``$(NAME)`` in a container's env and args with its variable NAME (the
    payload's, say); the run writes ``$\u0028`` instead, the same JSON, small input or parts."""
    from llmstep import contract, serde

    value = {"q": "$(LLMSTEP_PAYLOAD) and $(LLMSTEP_INPUT) " + "x" * size, "not json": "\\u0024(HOME)"}
    params = {p["name"]: p["value"] for p in tekton.input_params(serde.parameter_text(value))}
    text = contract.join_value_parts(params["input-parts"], "parts") if "input-parts" in params else params["input"]
    assert "$(" not in text and json.loads(text) == value
    assert ("input-parts" in params) is (size > contract.PART_BYTES)
    assert tekton.input_params("plain text $(HOME)") == [{"name": "input", "value": "plain text $(HOME)"}]


def test_an_input_longer_than_a_pipelinerun_can_hold_is_refused_naming_the_limit():
    """Measured on the real controller: a PipelineRun with a 1 MB input never ends (its status,
    which holds the input again, is too large for etcd); 700 KB runs."""
    from llmstep.errors import RenderError

    assert [p["name"] for p in tekton.input_params(json.dumps("y" * (tekton.INPUT_LIMIT - 2)))] == [
        "input",
        "input-parts",
    ]
    with pytest.raises(RenderError, match=r"the chain input is 640 KiB, .* at most 640 KiB: pass a reference"):
        tekton.input_params(json.dumps("y" * (tekton.INPUT_LIMIT - 1)))
