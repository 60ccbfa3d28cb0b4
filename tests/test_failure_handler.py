"""The failure handler end to end on the local runners: a chain compiled with
``on_failure=Diagnose(...)`` asks the model (a local OpenAI-compatible server that records
requests) only when a step failed, on Argo (the exit handler) and on Tekton (the finally task)."""

from __future__ import annotations

import json
import re

from chains import qa_chain, qa_prompt
from diagnose_cases import ANSWER
from langchain_core.runnables import RunnableLambda
from openai_server import FakeOpenAI

import llmstep


def test_exit_handler_runs_locally_only_when_a_step_fails(tmp_path):
    def fails(x):
        raise RuntimeError("upstream API returned 500")

    answer = {**ANSWER, "summary": "The step 'fails' raised.", "root_cause": "The upstream API failed."}
    with FakeOpenAI(reply=json.dumps(answer)) as server:
        settings = llmstep.Diagnose(provider="compatible", base_url=server.url, model="m")
        ok = llmstep.compile(qa_chain(), on_failure=settings).to_dict()
        from llmstep.local.entry import run_document

        secrets = {"OPENAI_API_KEY": "sk-diagnose-secret-value"}
        good = run_document(ok, {"question": "fine"}, secrets=secrets, runs_dir=tmp_path / "r", quiet=True)
        assert good.phase == "Succeeded" and good.nodes["diagnose"].phase == "Skipped"
        assert server.requests == []
        bad_doc = llmstep.compile(qa_prompt() | RunnableLambda(fails), allow_pickle=True, on_failure=settings).to_dict()
        bad = run_document(bad_doc, {"question": "x"}, secrets=secrets, runs_dir=tmp_path / "r", quiet=True)
    assert bad.phase == "Failed"
    node = bad.nodes["diagnose"]
    assert node.phase == "Succeeded", node
    summary = node.outputs.parameter("summary")
    assert summary.startswith("The step 'fails' raised.")
    sent = json.dumps(server.requests[0]["body"])
    assert "upstream API returned 500" in sent and "sk-diagnose-secret-value" not in sent
    assert server.requests[0]["headers"]["authorization"] == "Bearer sk-diagnose-secret-value"


def test_tekton_finally_diagnoses_only_on_failure(tmp_path):
    from schemas import tekton_errors

    from llmstep.local.entry import run_tekton
    from llmstep.render.tekton_checks import check_documents

    def fails(x):
        raise RuntimeError("tekton task exploded")

    with FakeOpenAI(reply=json.dumps(ANSWER)) as server:
        settings = llmstep.Diagnose(provider="compatible", base_url=server.url)
        good_docs = llmstep.compile(qa_chain(), on_failure=settings).to_tekton()
        for doc in good_docs:
            assert tekton_errors(doc) == []
        check_documents(good_docs)
        secrets = {"OPENAI_API_KEY": "sk-tekton-diagnose-key"}
        good = run_tekton(good_docs, {"question": "ok"}, secrets=secrets, runs_dir=tmp_path / "r", quiet=True)
        assert good.phase == "Succeeded" and good.nodes["diagnose"].phase == "Skipped" and server.requests == []
        bad_docs = llmstep.compile(
            qa_prompt() | RunnableLambda(fails), allow_pickle=True, on_failure=settings
        ).to_tekton()
        bad = run_tekton(bad_docs, {"question": "x"}, secrets=secrets, runs_dir=tmp_path / "r", quiet=True)
    assert bad.phase == "Failed" and bad.nodes["diagnose"].phase == "Succeeded", bad.nodes["diagnose"]
    summary = bad.nodes["diagnose"].outputs.parameter("summary")
    assert summary.startswith(ANSWER["summary"])
    sent = json.dumps(server.requests[0]["body"])
    assert "task fails: Failed" in sent and "task chatprompttemplate: Succeeded" in sent
    assert server.requests[0]["headers"]["authorization"] == "Bearer sk-tekton-diagnose-key"


def test_diagnose_redact_reaches_the_handler_on_both_engines(tmp_path):
    """Diagnose(redact=...) removes its patterns from what the failure handler sends, on Argo (the
    exit handler's --redact) and on Tekton (the finally task's redact array param)."""
    from llmstep.local.entry import run_document, run_tekton

    def fails(x):
        raise RuntimeError("boom")

    with FakeOpenAI(reply=json.dumps(ANSWER)) as server:
        settings = llmstep.Diagnose(provider="compatible", base_url=server.url, redact=(r"\bfails\b",))
        chain = qa_prompt() | RunnableLambda(fails)
        secrets = {"OPENAI_API_KEY": "k"}
        compiled = llmstep.compile(chain, allow_pickle=True, on_failure=settings)
        pipe = next(d for d in compiled.to_tekton() if d["kind"] == "Pipeline")
        assert {"name": "redact", "value": [r"\bfails\b"]} in pipe["spec"]["finally"][0]["params"]
        run_document(compiled.to_dict(), {"question": "x"}, secrets=secrets, runs_dir=tmp_path / "a", quiet=True)
        run_tekton(compiled.to_tekton(), {"question": "x"}, secrets=secrets, runs_dir=tmp_path / "t", quiet=True)
        sent = [json.dumps(r["body"]) for r in server.requests]
    assert len(sent) == 2
    for text in sent:
        assert "chatprompttemplate" in text.lower() and not re.search(r"\bfails\b", text), text[:2000]


def test_full_report_lands_in_the_workspace_and_as_an_artifact(tmp_path):
    from llmstep.local.entry import run_document, run_tekton

    def fails(x):
        raise RuntimeError("boom")

    with FakeOpenAI(reply=json.dumps(ANSWER)) as server:
        settings = llmstep.Diagnose(provider="compatible", base_url=server.url)
        chain = qa_prompt() | RunnableLambda(fails)
        secrets = {"OPENAI_API_KEY": "k"}
        argo = run_document(
            llmstep.compile(chain, allow_pickle=True, on_failure=settings).to_dict(),
            {"question": "x"},
            secrets=secrets,
            runs_dir=tmp_path / "a",
            quiet=True,
        )
        tekton = run_tekton(
            llmstep.compile(chain, allow_pickle=True, on_failure=settings).to_tekton(),
            {"question": "x"},
            secrets=secrets,
            runs_dir=tmp_path / "t",
            quiet=True,
        )
    report = argo.nodes["diagnose"].outputs.artifact("report")
    assert "## Fix" in open(report.local_path).read()
    written = tekton.root / "workspaces" / "data" / tekton.run_id / "diagnosis.md"
    assert "## Fix" in written.read_text()
