"""The Workflow checks: the strict upstream schemas (tests/schemas.py) accept Argo's own examples and
catch a misspelled field; llmstep's checks catch what a schema cannot (names, references)."""

from __future__ import annotations

import pytest
import yaml
from chains import qa_chain
from conftest import ROOT
from schemas import argo_errors

import llmstep
from llmstep.errors import RenderError
from llmstep.render.argo_checks import check_workflow

EXAMPLES = ROOT / "tests" / "data" / "argo-examples"


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_strict_validator_accepts_upstream_examples(path):
    doc = yaml.safe_load(path.read_text())
    assert argo_errors(doc, "v4.1.2") == []
    check_workflow(doc)


def test_strict_validator_rejects_a_misspelled_field():
    doc = llmstep.compile(qa_chain()).to_dict()
    doc["spec"]["templates"][1]["container"]["comand"] = ["x"]
    assert any("comand" in e for e in argo_errors(doc, "v4.1.2"))


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda d: d["spec"]["templates"][1].update(name="Bad_Name"), "Bad_Name"),
        (lambda d: d["spec"]["templates"][0]["dag"]["tasks"][1].update(depends="Nope"), "Nope"),
        (lambda d: d["spec"]["templates"][0]["dag"]["tasks"][1].update(depends=None), "without depending"),
        (lambda d: d["spec"]["templates"][0]["dag"]["tasks"][0].update(template="missing"), "missing"),
        (lambda d: d["spec"].update(entrypoint="elsewhere"), "elsewhere"),
    ],
)
def test_project_checks_catch_what_the_schema_cannot(mutate, fragment):
    doc = llmstep.compile(qa_chain()).to_dict()
    mutate(doc)
    with pytest.raises(llmstep.RenderError, match=fragment):
        check_workflow(doc)


@pytest.mark.parametrize(
    ("deps", "cycle"),
    [
        (
            {0: {"depends": "StrOutputParser"}},
            "ChatPromptTemplate->StrOutputParser->OfflineChatModel->ChatPromptTemplate",
        ),
        ({1: {"depends": "OfflineChatModel && ChatPromptTemplate"}}, "OfflineChatModel->OfflineChatModel"),
        (
            {0: {"depends": "OfflineChatModel.Failed || OfflineChatModel.Succeeded"}},
            "ChatPromptTemplate->OfflineChatModel->ChatPromptTemplate",
        ),
    ],
)
def test_a_dependency_cycle_is_refused_in_argo_s_words(deps, cycle):
    doc = llmstep.compile(qa_chain()).to_dict()
    tasks = doc["spec"]["templates"][0]["dag"]["tasks"]
    for index, change in deps.items():
        tasks[index].update(change)
    with pytest.raises(RenderError, match=f"templates.main.tasks dependency cycle detected: {cycle}$"):
        check_workflow(doc)


def test_dependencies_lists_make_cycles_too():
    doc = llmstep.compile(qa_chain()).to_dict()
    tasks = doc["spec"]["templates"][0]["dag"]["tasks"]
    for task in tasks:
        task.pop("depends", None)
    tasks[0]["dependencies"], tasks[1]["dependencies"] = ["OfflineChatModel"], ["ChatPromptTemplate"]
    with pytest.raises(
        RenderError, match="dependency cycle detected: ChatPromptTemplate->OfflineChatModel->ChatPromptTemplate"
    ):
        check_workflow(doc)
