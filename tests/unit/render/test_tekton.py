"""Tekton rendering: valid, native documents from the same Plan as Argo's, a task per step, values
through env and the workspace, secrets per step."""

from __future__ import annotations

import pytest
import yaml
from chains import openai_chain, qa_chain, qa_prompt
from conftest import ROOT, run_cli
from schemas import tekton_errors

import llmstep
from llmstep.render import tekton
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
    assert pipe["spec"]["params"] == [{"name": "input", "type": "string", "description": "The chain input, as JSON."}]


def test_values_reach_the_step_through_env_never_a_script():
    task = tekton.run_task("img")
    step = task["spec"]["steps"][0]
    assert "script" not in step
    assert {"name": "LLMSTEP_PAYLOAD", "value": "$(params.payload)"} in step["env"]
    assert not any("$(params.payload)" in a or "$(params.input)" in a for a in step["args"] + step["command"])


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
    assert bindings == {"chatprompttemplate": ["data"], "chatopenai": ["data", "credentials"], "stroutputparser": ["data"]}
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
    run_only = run_cli("compile", "examples/qa.py:chain", "--engine", "tekton", "--run-only", "--input", '{"question": "q"}',
                       cwd=ROOT)  # fmt: skip
    [run] = list(yaml.safe_load_all(run_only.stdout))
    assert run["kind"] == "PipelineRun" and run["metadata"]["generateName"] == "qa-"
    assert run["spec"]["params"] == [{"name": "input", "value": '{"question": "q"}'}]
    refused = run_cli("compile", "examples/qa.py:chain", "--run-only", cwd=ROOT)
    assert refused.returncode == 2 and "--run-only writes a Tekton PipelineRun: add --engine tekton" in refused.stderr
