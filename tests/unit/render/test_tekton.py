"""Tekton: valid, native documents from the same Plan, webhook rules, and local runs."""

from __future__ import annotations

import copy
import json

import pytest
import yaml
from chains import corpus, needs_file, normalize, openai_chain, qa_chain, qa_prompt
from conftest import ROOT, run_cli
from langchain_core.runnables import RunnableLambda
from schemas import tekton_errors

import llmstep
from llmstep import serde
from llmstep.local.entry import run_tekton
from llmstep.render import tekton
from llmstep.render.tekton_checks import check_documents

EXAMPLES = ROOT / "tests" / "data" / "tekton-examples"
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


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_checks_accept_upstream_examples(path):
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    for doc in docs:
        if doc["apiVersion"] == "tekton.dev/v1":
            assert tekton_errors(doc) == []
    check_documents(docs)


def _broken(mutate):
    _, docs = docs_for(qa_chain())
    docs = copy.deepcopy(docs)
    mutate(*docs)
    return docs


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda task, pipe, run: pipe["spec"]["tasks"][0].update(name="Bad_Name"), "DNS label"),
        (lambda task, pipe, run: pipe["spec"]["tasks"][1].update(runAfter=["nope"]), "runAfter names 'nope'"),
        (lambda task, pipe, run: pipe["spec"]["tasks"][1]["params"].append({"name": "undeclared", "value": "x"}), "not declared by the Task"),
        (lambda task, pipe, run: pipe["spec"]["tasks"][0]["params"][1].update(value="$(params.missing)"), "not declared"),
        (lambda task, pipe, run: pipe["spec"]["results"][0].update(value="$(tasks.ghost.results.preview)"), "unknown task"),
        (lambda task, pipe, run: pipe["spec"]["tasks"][1]["params"][0].update(value="$(tasks.chatprompttemplate.results.nope)"), "does not declare"),
        (lambda task, pipe, run: pipe["spec"]["tasks"][1]["params"][0].update(value="$(tasks.status)"), "only available in finally"),
        (lambda task, pipe, run: pipe["spec"]["finally"][0].update(runAfter=["chatprompttemplate"]), "cannot use runAfter"),
        (lambda task, pipe, run: pipe["spec"]["finally"][0]["when"][0].update(operator="equals"), "operator in/notin"),
        (lambda task, pipe, run: pipe["spec"]["tasks"][0]["workspaces"][0].update(workspace="elsewhere"), "not declared"),
        (lambda task, pipe, run: run["spec"]["workspaces"].pop(0), "'data' is not bound"),
        (lambda task, pipe, run: run["spec"]["workspaces"][0].update(emptyDir={}), "exactly one volume source"),
        (lambda task, pipe, run: task["spec"]["steps"][0]["args"].append("$(results.missing.path)"), "not declared"),
        (lambda task, pipe, run: task["spec"]["steps"][0]["args"].append("x$(params.inputs[*])"), "whole args item"),
    ],
)
def test_checks_reject_broken_variants(mutate, fragment):
    with pytest.raises(llmstep.RenderError, match=fragment.replace("(", r"\(").replace(")", r"\)").replace("$", r"\$")):
        check_documents(_broken(mutate))


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


def test_finally_hook_runs_only_on_failure(tmp_path):
    ok = run_tekton(docs_for(qa_chain())[1], {"question": "fine"}, runs_dir=tmp_path / "r", quiet=True)
    assert ok.phase == "Succeeded" and ok.result() == "offline answer: fine"
    assert ok.nodes["on-failure"]["phase"] == "Skipped"  # a skipped finally task still counts as success

    def boom(x):
        raise RuntimeError("tekton step failed")

    bad = run_tekton(docs_for(qa_prompt() | RunnableLambda(boom), allow_pickle=True)[1], {"question": "x"},
                     runs_dir=tmp_path / "r", quiet=True)
    assert bad.phase == "Failed"
    assert bad.nodes["boom"]["phase"] == "Failed" and "tekton step failed" in bad.nodes["boom"]["message"]
    hook = bad.nodes["on-failure"]
    assert hook["phase"] == "Succeeded"
    preview = next(p["value"] for p in hook["outputs"]["parameters"] if p["name"] == "preview")
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
    docs = [tekton.run_task(compiled.plan.image), tekton.task_run(model, value, compiled.plan.image, compiled.plan.secret)]
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
        out = llmstep.compile(chain).run_local({"question": "t"}, engine="tekton", runs_dir=tmp_path / "r",
                                               secrets={"OPENAI_API_KEY": "sk-secret-workspace", "OTHER": "x"})
    assert out == "echo: t"
    assert server.requests[0]["headers"]["authorization"] == "Bearer sk-secret-workspace"
    everything = "".join(p.read_text(errors="ignore") for p in (tmp_path / "r").rglob("*") if p.is_file())
    assert "sk-secret-workspace" not in everything


@pytest.mark.parametrize("case", ["sequence", "terminal-parallel", "assign", "itemgetter-dict", "messages-in",
                                  "documents", "unicode", "lc-lookalike", "nested-parallel", "step-boundary"])
def test_equivalence_through_tekton(case, tmp_path):
    chain, x = corpus()[case]
    got = llmstep.compile(chain, allow_pickle=True).run_local(x, engine="tekton", runs_dir=tmp_path / "r")
    assert normalize(got) == normalize(chain.invoke(x))


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


def test_an_optional_pipeline_workspace_bound_to_a_required_task_workspace_is_refused():
    """As the controller fails the run (RequiredWorkspaceMarkedOptional), the local checks refuse it."""
    compiled, docs = docs_for(qa_chain(), on_failure=llmstep.Diagnose())
    pipe = next(d for d in docs if d["kind"] == "Pipeline")
    for ws in pipe["spec"]["workspaces"]:
        if ws["name"].startswith("credentials-"):
            ws["optional"] = True
    with pytest.raises(Exception, match="is marked optional, but the task requires its workspace 'credentials'"):
        check_documents(docs)


def test_golden_tekton_files_are_valid():
    docs = [d for p in sorted((ROOT / "tekton").glob("*.yaml")) for d in yaml.safe_load_all(p.read_text()) if d]
    assert {d["kind"] for d in docs} >= {"Task", "Pipeline", "PipelineRun", "TaskRun", "ServiceAccount", "Role"}
    for doc in docs:
        if doc["apiVersion"] == "tekton.dev/v1":
            assert tekton_errors(doc) == [], doc["kind"]
    check_documents(docs)


def test_tekton_failed_run_resumes_reusing_finished_tasks(tmp_path):
    from llmstep.local.entry import resume_run

    flag = tmp_path / "flag"
    chain = RunnableLambda(lambda x: x * 2) | RunnableLambda(needs_file(str(flag)))
    docs = llmstep.compile(RunnableLambda(str) | chain, allow_pickle=True).to_tekton()
    record = run_tekton(docs, 21, runs_dir=tmp_path / "r", quiet=True)
    assert record.phase == "Failed" and record.nodes["gate"]["phase"] == "Failed"
    assert record.nodes["on-failure"]["phase"] == "Succeeded"
    first = record.nodes["runnablelambda"]["finishedAt"]
    flag.write_text("ok")
    again = resume_run(record.run_id, runs_dir=tmp_path / "r", quiet=True, allow_pickle=True)
    assert again.phase == "Succeeded" and again.result() == "2121 (gate passed)"
    assert again.nodes["runnablelambda"]["finishedAt"] == first  # not run again
    assert again.nodes["on-failure"]["phase"] == "Skipped"


def test_a_missing_input_key_hints_at_tekton_commands_on_tekton(tmp_path):
    compiled = llmstep.compile(qa_chain())
    record = run_tekton(compiled.to_tekton(), {"wrong": "key"}, runs_dir=tmp_path, quiet=True)
    assert record.phase == "Failed"
    text = "".join(str(f.get("message")) for f in record.failures())
    assert "tkn pipeline start -p input='{...}'" in text and "argo submit" not in text


def test_cli_submit_engine_tekton_refuses_a_batch_and_argo_server_options(tmp_path):
    batch = run_cli("submit", "examples/qa.py:chain", "--engine", "tekton", "--inputs", "examples/questions.jsonl", cwd=ROOT)
    assert batch.returncode == 2 and "--inputs: a batch runs on Argo only" in batch.stderr
    server = run_cli("submit", "examples/qa.py:chain", "--engine", "tekton", "--argo-server", "127.0.0.1:1", cwd=ROOT)
    assert server.returncode == 2 and "--argo-server: an Argo Server option" in server.stderr
    param = run_cli("submit", "examples/qa.py:chain", "--engine", "tekton", "-p", "other=1", cwd=ROOT)
    assert param.returncode == 2 and "-p other: the Pipeline declares only the 'input' param" in param.stderr
