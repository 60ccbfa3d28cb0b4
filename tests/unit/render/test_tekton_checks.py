"""The Tekton documents' own checks (what the admission webhook and the controller refuse): they
accept Tekton's examples and llmstep's files and reject broken variants with the reason."""

from __future__ import annotations

import copy

import pytest
import yaml
from chains import qa_chain
from conftest import ROOT
from schemas import tekton_errors

import llmstep
from llmstep.errors import RenderError
from llmstep.render.tekton_checks import check_documents

EXAMPLES = ROOT / "tests" / "data" / "tekton-examples"


def docs_for(chain, **opts):
    compiled = llmstep.compile(chain, **opts)
    return compiled, compiled.to_tekton()


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
        (
            lambda task, pipe, run: pipe["spec"]["tasks"][1]["params"].append({"name": "undeclared", "value": "x"}),
            "not declared by the Task",
        ),
        (
            lambda task, pipe, run: pipe["spec"]["tasks"][0]["params"][1].update(value="$(params.missing)"),
            "not declared",
        ),
        (
            lambda task, pipe, run: pipe["spec"]["results"][0].update(value="$(tasks.ghost.results.preview)"),
            "unknown task",
        ),
        (
            lambda task, pipe, run: pipe["spec"]["tasks"][1]["params"][0].update(
                value="$(tasks.chatprompttemplate.results.nope)"
            ),
            "does not declare",
        ),
        (
            lambda task, pipe, run: pipe["spec"]["tasks"][1]["params"][0].update(value="$(tasks.status)"),
            "only available in finally",
        ),
        (
            lambda task, pipe, run: pipe["spec"]["finally"][0].update(runAfter=["chatprompttemplate"]),
            "cannot use runAfter",
        ),
        (lambda task, pipe, run: pipe["spec"]["finally"][0]["when"][0].update(operator="equals"), "operator in/notin"),
        (
            lambda task, pipe, run: pipe["spec"]["tasks"][0]["workspaces"][0].update(workspace="elsewhere"),
            "not declared",
        ),
        (lambda task, pipe, run: run["spec"]["workspaces"].pop(0), "'data' is not bound"),
        (lambda task, pipe, run: run["spec"]["workspaces"][0].update(emptyDir={}), "exactly one volume source"),
        (lambda task, pipe, run: task["spec"]["steps"][0]["args"].append("$(results.missing.path)"), "not declared"),
        (lambda task, pipe, run: task["spec"]["steps"][0]["args"].append("x$(params.inputs[*])"), "whole args item"),
    ],
)
def test_checks_reject_broken_variants(mutate, fragment):
    with pytest.raises(llmstep.RenderError, match=fragment.replace("(", r"\(").replace(")", r"\)").replace("$", r"\$")):
        check_documents(_broken(mutate))


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


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (
            lambda t, p, r: p["spec"]["tasks"][0].update(runAfter=["stroutputparser"]),
            'cycle detected; task "chatprompttemplate" depends on "stroutputparser" '
            "(chatprompttemplate -> stroutputparser -> offlinechatmodel -> chatprompttemplate): spec.tasks",
        ),
        (
            lambda t, p, r: p["spec"]["tasks"][1].update(runAfter=["offlinechatmodel"]),
            'task "offlinechatmodel" depends on "offlinechatmodel" (offlinechatmodel -> offlinechatmodel)',
        ),
        # a result reference is a dependency as runAfter is
        (
            lambda t, p, r: p["spec"]["tasks"][0].update(
                when=[{"input": "$(tasks.stroutputparser.results.preview)", "operator": "in", "values": ["x"]}]
            ),
            'task "chatprompttemplate" depends on "stroutputparser"',
        ),
    ],
)
def test_a_run_after_cycle_is_refused_as_the_webhook_does(mutate, fragment):
    with pytest.raises(RenderError, match="Pipeline") as err:
        check_documents(_broken(mutate))
    assert fragment in str(err.value)
