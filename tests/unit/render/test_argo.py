"""Argo rendering: strict schema validity on both Argo versions, names, secrets, settings, size; a
Plan built by hand renders without compile()."""

from __future__ import annotations

import json

import plans
import pytest
import yaml
from chains import openai_chain, qa_chain, qa_prompt
from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import RunnableLambda, RunnablePassthrough
from schemas import ARGO_VERSIONS, argo_errors

import llmstep
from llmstep import serde
from llmstep.offline import OfflineChatModel
from llmstep.plan import ConfigMapKeyRef, Plan, SecretKeyRef, StepSettings
from llmstep.render import argo as render_argo
from llmstep.render.argo_checks import check_workflow

KEY = "sk-live-abcdefghijklmnopqrstuvwxyz0123456789"


def shapes():
    """A corpus of chain shapes; each must render to a valid Workflow."""
    return {
        "sequence": (qa_chain(), {}),
        "openai": (openai_chain(KEY), {}),
        "parallel": ({"a": qa_chain(), "b": qa_chain()} | RunnableLambda(lambda d: d), {"allow_pickle": True}),
        "assign": (RunnablePassthrough.assign(answer=qa_chain()), {}),
        "terminal-map": ({"x": qa_prompt(), "y": RunnablePassthrough()}, {}),
        "step": (
            llmstep.Step(
                qa_prompt() | OfflineChatModel(),
                retries=2,
                timeout=30,
                resources={"requests": {"cpu": "100m"}, "limits": {"memory": "1Gi"}},
            )
            | StrOutputParser(),
            {},
        ),
        "parameters": (qa_chain(), {"data": "parameters"}),
    }


@pytest.mark.parametrize("version", ARGO_VERSIONS)
@pytest.mark.parametrize("shape", list(shapes()))
def test_every_shape_validates_strictly(shape, version):
    chain, opts = shapes()[shape]
    doc = llmstep.compile(chain, **opts).to_dict()
    assert argo_errors(doc, version) == []
    check_workflow(doc)


def test_one_template_per_step_with_payload_artifact_and_outputs():
    doc = llmstep.compile(qa_chain(), name="qa").to_dict()
    assert doc["metadata"]["generateName"] == "qa-"
    dag, *templates = doc["spec"]["templates"]
    assert [t["name"] for t in templates] == ["chatprompttemplate", "offlinechatmodel", "stroutputparser"]
    assert [t["name"] for t in dag["dag"]["tasks"]] == ["ChatPromptTemplate", "OfflineChatModel", "StrOutputParser"]
    for t in templates:
        assert t["container"]["command"] == ["llmstep", "exec", "--data-dir", "/llmstep"]
        payload = t["inputs"]["artifacts"][0]
        assert payload["name"] == "payload" and payload["path"] == "/llmstep/runnable.json"
        assert json.loads(payload["raw"]["data"])["llmstep"] == serde.FORMAT_VERSION
        params = {p["name"] for p in t["outputs"]["parameters"]}
        assert {"preview", "usage"} <= params
        assert t["outputs"]["artifacts"][0]["name"] == "output"
    assert "output" in {p["name"] for p in templates[-1]["outputs"]["parameters"]}
    assert "output" not in {p["name"] for p in templates[0]["outputs"]["parameters"]}
    first, second, _ = dag["dag"]["tasks"]
    assert first["arguments"]["artifacts"] == [{"name": "input", "raw": {"data": "{{workflow.parameters.input}}"}}]
    assert second["arguments"]["artifacts"] == [
        {"name": "input", "from": "{{tasks.ChatPromptTemplate.outputs.artifacts.output}}"}
    ]
    assert doc["spec"]["arguments"]["parameters"][0]["name"] == "input"
    annotations = doc["metadata"]["annotations"]
    assert annotations["workflows.argoproj.io/title"] == "qa"
    assert "ChatPromptTemplate" in annotations["workflows.argoproj.io/description"]
    assert doc["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "llmstep"


def test_parameters_mode_needs_no_artifact_repository():
    doc = llmstep.compile(qa_chain(), data="parameters").to_dict()
    text = json.dumps(doc)
    assert "outputs.artifacts" not in text
    second = doc["spec"]["templates"][0]["dag"]["tasks"][1]
    assert second["arguments"]["artifacts"] == [
        {"name": "input", "raw": {"data": "{{tasks.ChatPromptTemplate.outputs.parameters.output}}"}}
    ]


def test_fan_in_gets_one_artifact_per_source():
    chain = {"a": qa_prompt(), "q": RunnablePassthrough()} | qa_prompt()
    doc = llmstep.compile(chain).to_dict()
    consumer = doc["spec"]["templates"][-1]
    paths = sorted(a["path"] for a in consumer["inputs"]["artifacts"][1:])
    assert paths == ["/llmstep/input/a-chatprompttemplate.json", "/llmstep/input/input.json"]


def test_step_settings_render_to_argo_fields():
    chain = (
        llmstep.Step(
            qa_prompt(), name="ask", image="example/other:1", retries=2, timeout="1m", resources={"cpu": "250m"}
        )
        | StrOutputParser()
    )
    template = llmstep.compile(chain).to_dict()["spec"]["templates"][1]
    assert template["container"]["image"] == "example/other:1"
    assert template["activeDeadlineSeconds"] == 60
    assert template["container"]["resources"] == {"limits": {"cpu": "250m"}, "requests": {"cpu": "250m"}}
    retry = template["retryStrategy"]
    assert retry["limit"] == 2 and retry["backoff"] == {"duration": "5s", "factor": 2}
    assert retry["expression"] == "asInt(lastRetry.exitCode) == 1 || asInt(lastRetry.exitCode) == 75"


def test_secret_never_in_yaml():
    compiled = llmstep.compile(openai_chain(KEY), secret="team-llm")
    text = compiled.to_yaml()
    assert KEY not in text
    assert KEY not in json.dumps([s.payload for s in compiled.plan.steps])
    assert "secretKeyRef" in text


def test_secret_keys_reach_only_model_steps():
    doc = llmstep.compile(openai_chain(KEY), secret="team-llm").to_dict()
    envs = {t["name"]: t["container"].get("env") for t in doc["spec"]["templates"][1:]}
    assert envs["chatprompttemplate"] is None and envs["stroutputparser"] is None
    assert envs["chatopenai"] == [
        {"name": "OPENAI_API_KEY", "valueFrom": {"secretKeyRef": {"name": "team-llm", "key": "OPENAI_API_KEY"}}}
    ]


def test_azure_model_declares_its_own_key():
    from langchain_openai import AzureChatOpenAI

    llm = AzureChatOpenAI(
        azure_endpoint="https://example.invalid", api_version="2024-06-01", azure_deployment="gpt", api_key=KEY
    )
    doc = llmstep.compile(qa_prompt() | llm).to_dict()
    env = doc["spec"]["templates"][2]["container"]["env"]
    assert [e["name"] for e in env] == ["AZURE_OPENAI_API_KEY"]
    assert KEY not in json.dumps(doc)


def test_oversized_workflow_fails_at_compile_time_listing_steps():
    big = RunnableLambda(lambda x, blob="x" * 400_000: x)
    chain = big | RunnableLambda(lambda x, blob="y" * 400_000: x) | RunnableLambda(lambda x, b="z" * 400_000: x)
    with pytest.raises(llmstep.RenderError) as err:
        llmstep.compile(chain, allow_pickle=True).to_yaml()
    message = str(err.value)
    assert "KiB" in message and "chain.steps[0]" in message and "split the chain" in message


def test_to_workflow_returns_a_hera_workflow():
    from hera.workflows import Workflow

    workflow = llmstep.compile(qa_chain()).to_workflow()
    assert isinstance(workflow, Workflow)
    assert workflow.to_dict()["spec"]["entrypoint"] == "main"


def test_yaml_is_ready_for_argo_submit():
    text = llmstep.compile(qa_chain()).to_yaml()
    doc = yaml.safe_load(text)
    assert doc["apiVersion"] == "argoproj.io/v1alpha1" and doc["kind"] == "Workflow"
    assert "generateName" in doc["metadata"] and "name" not in doc["metadata"]


def _fail_on_boom(value):
    if value == "boom":
        raise ValueError("boom is not allowed")
    return value


def test_a_runnable_used_by_several_steps_is_stored_once(tmp_path):
    branch = qa_prompt() | OfflineChatModel() | StrOutputParser()
    compiled = llmstep.compile({"a": branch, "b": branch, "c": branch})
    doc = compiled.to_dict()
    for version in ARGO_VERSIONS:
        assert argo_errors(doc, version) == [], version
    templates = {t["name"]: t for t in doc["spec"]["templates"] if "container" in t}
    payloads = [a for t in templates.values() for a in t["inputs"].get("artifacts", []) if a["name"] == "payload"]
    assert len(compiled.plan.steps) >= 9 and len(payloads) == len(templates) <= 4
    tasks = {t["name"]: t for t in doc["spec"]["templates"][0]["dag"]["tasks"]}
    shared = [t for t in tasks.values() if (t.get("arguments") or {}).get("parameters")]
    assert shared and all(t["arguments"]["parameters"] == [{"name": "step", "value": t["name"]}] for t in shared)
    for t in shared:
        template = templates[t["template"]]
        assert template["container"]["command"][-2:] == ["--step-name", "{{inputs.parameters.step}}"]
        assert template["metadata"]["annotations"]["llmstep.dev/shared-by"].endswith("steps")
    result = compiled.run_local({"question": "shared?"}, runs_dir=tmp_path / "r")
    assert result == {k: "offline answer: shared?" for k in "abc"}


def test_a_shared_template_names_the_step_that_failed(tmp_path):
    check = RunnableLambda(_fail_on_boom)
    chain = {"x": RunnableLambda(lambda d: d["x"]) | check, "y": RunnableLambda(lambda d: d["y"]) | check}
    compiled = llmstep.compile(chain, allow_pickle=True)
    owners = {t["name"]: t["template"] for t in compiled.to_dict()["spec"]["templates"][0]["dag"]["tasks"]}
    failing = next(s.display for s in compiled.plan.steps if s.display.startswith("y-") and "boom" in s.display)
    assert owners[failing] != failing.lower()  # it runs the x branch's template
    with pytest.raises(llmstep.RunFailed) as err:
        compiled.run_local({"x": "fine", "y": "boom"}, runs_dir=tmp_path / "r")
    [failure] = err.value.failures
    assert failure["displayName"] == failing
    [run] = (tmp_path / "r").iterdir()
    error = json.loads((run / "steps" / failing / "data" / "error.json").read_text())
    assert error["step"] == failing and "boom is not allowed" in error["message"]


def test_exit_handler_renders_validly():
    doc = llmstep.compile(qa_chain(), on_failure=llmstep.Diagnose(lang="Japanese")).to_dict()
    for version in ARGO_VERSIONS:
        assert argo_errors(doc, version) == []
    assert doc["spec"]["onExit"] == "exit-handler"
    handler = next(t for t in doc["spec"]["templates"] if t["name"] == "exit-handler")
    assert handler["dag"]["tasks"][0]["when"] == "{{workflow.status}} != Succeeded"
    with pytest.raises(llmstep.CompileError, match="on_failure"):
        llmstep.compile(qa_chain(), on_failure="yes please")


# ---------------------------------------------------------------- a Plan built by hand (no compile())


def _hand_rendered(plan):
    """The Workflow render.argo makes of a Plan, valid on both Argo versions; its templates by name."""
    doc = render_argo.render_dict(plan)
    for version in ARGO_VERSIONS:
        assert argo_errors(doc, version) == [], version
    return doc, {t["name"]: t for t in doc["spec"]["templates"]}


def test_a_hand_built_sequence_renders_one_template_per_step_wired_in_order():
    plan = plans.sequence()
    doc, templates = _hand_rendered(plan)
    assert list(templates) == ["main", "ask", "answer"] and doc["spec"]["entrypoint"] == "main"
    ask, answer = templates["main"]["dag"]["tasks"]
    assert ask == {
        "name": "Ask",
        "template": "ask",
        "arguments": {"artifacts": [{"name": "input", "raw": {"data": "{{workflow.parameters.input}}"}}]},
    }
    assert answer == {
        "name": "Answer",
        "template": "answer",
        "depends": "Ask",
        "arguments": {"artifacts": [{"name": "input", "from": "{{tasks.Ask.outputs.artifacts.output}}"}]},
    }
    assert doc["metadata"]["annotations"]["llmstep.dev/output-task"] == "Answer"
    assert "output" in {p["name"] for p in templates["answer"]["outputs"]["parameters"]}  # the result, for the UI
    assert "output" not in {p["name"] for p in templates["ask"]["outputs"]["parameters"]}
    for step in plan.steps:
        template = templates[step.name]
        assert template["container"]["command"] == ["llmstep", "exec", "--data-dir", "/llmstep"]
        assert template["container"]["image"] == "example/llmstep:1"
        [payload] = [a for a in template["inputs"]["artifacts"] if a["name"] == "payload"]
        assert json.loads(payload["raw"]["data"]) == step.payload  # the plan's payload, as it is
        assert "{{" not in payload["raw"]["data"]  # the prompt's {{ is escaped: Argo never substitutes in a payload


def test_a_hand_built_fan_in_runs_the_branches_at_once_and_gives_the_consumer_a_file_each():
    doc, templates = _hand_rendered(plans.fan_in())
    tasks = {t["name"]: t for t in templates["main"]["dag"]["tasks"]}
    assert "depends" not in tasks["Left"] and "depends" not in tasks["Right"]
    assert tasks["Join"]["depends"] == "Left && Right"
    assert tasks["Join"]["arguments"]["artifacts"] == [
        {"name": "input-left", "from": "{{tasks.Left.outputs.artifacts.output}}"},
        {"name": "input-right", "from": "{{tasks.Right.outputs.artifacts.output}}"},
    ]
    assert [(a["name"], a["path"]) for a in templates["join"]["inputs"]["artifacts"]] == [
        ("payload", "/llmstep/runnable.json"),
        ("input-left", "/llmstep/input/left.json"),
        ("input-right", "/llmstep/input/right.json"),
    ]
    _, by_parameters = _hand_rendered(plans.fan_in(data="parameters"))
    assert by_parameters["main"]["dag"]["tasks"][2]["arguments"]["artifacts"][0] == {
        "name": "input-left",
        "raw": {"data": "{{tasks.Left.outputs.parameters.output}}"},
    }


def test_a_hand_built_plans_secret_keys_go_only_to_the_step_that_declares_them():
    steps = (
        plans.prompt_step("ask", "Q: {question}", ["input"]),
        plans.prompt_step("model", "M {text}", ["step", "ask"], secrets=("OPENAI_API_KEY", "ACME_API_KEY")),
        plans.prompt_step("after", "A {text}", ["step", "model"]),
    )
    _, templates = _hand_rendered(
        Plan(name="hand-secret", steps=steps, output="after", image="example/llmstep:1", secret="team-keys")
    )
    assert "env" not in templates["ask"]["container"] and "env" not in templates["after"]["container"]
    assert templates["model"]["container"]["env"] == [
        {"name": key, "valueFrom": {"secretKeyRef": {"name": "team-keys", "key": key}}}
        for key in ("ACME_API_KEY", "OPENAI_API_KEY")
    ]


def test_a_hand_built_steps_settings_reach_its_template_and_no_other():
    resources = {"requests": {"cpu": "100m"}, "limits": {"memory": "64Mi"}}
    settings = StepSettings(
        image="example/other:2",
        retries=2,
        backoff="3s",
        timeout=90,
        resources=resources,
        env=(("MODE", "fast"), ("TOKEN", SecretKeyRef("team", "token")), ("REGION", ConfigMapKeyRef("cfg", "region"))),
    )
    steps = (
        plans.prompt_step("ask", "Q: {question}", ["input"], settings=settings),
        plans.prompt_step("plain", "P {text}", ["step", "ask"]),
    )
    _, templates = _hand_rendered(Plan(name="hand-settings", steps=steps, output="plain", image="example/llmstep:1"))
    ask, plain = templates["ask"], templates["plain"]
    assert ask["container"]["image"] == "example/other:2" and plain["container"]["image"] == "example/llmstep:1"
    assert ask["retryStrategy"] == {
        "limit": 2,
        "retryPolicy": "OnFailure",
        "expression": render_argo.RETRY_WHEN,
        "backoff": {"duration": "3s", "factor": 2},
    }
    assert ask["activeDeadlineSeconds"] == 90 and ask["container"]["resources"] == resources
    assert ask["container"]["env"] == [
        {"name": "MODE", "value": "fast"},
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "team", "key": "token"}}},
        {"name": "REGION", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "region"}}},
    ]
    assert not {"retryStrategy", "activeDeadlineSeconds"} & set(plain) and not {"resources", "env"} & set(
        plain["container"]
    )
