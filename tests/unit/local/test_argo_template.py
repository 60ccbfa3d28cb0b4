"""One template of an Argo Workflow, checked and parsed for the local runner: a field outside the
supported subset, or a value the run would trip on, is refused with its path before a run starts;
a retry strategy is parsed into seconds."""

from __future__ import annotations

import copy

import pytest
from chains import qa_chain

import llmstep
from llmstep.errors import WorkflowError
from llmstep.local.argo_template import template


def _doc():
    return copy.deepcopy(llmstep.compile(qa_chain()).to_dict())


def _templates(doc):
    """Every template of the document, parsed in order as the Workflow's are."""
    return [template(t, f"spec.templates[{i}]") for i, t in enumerate(doc["spec"]["templates"])]


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (
            lambda d: d["spec"]["templates"][1].update(script={"source": "echo"}),
            "spec.templates[1].script is not supported",
        ),
        (
            lambda d: d["spec"]["templates"][1].update(dag={"tasks": []}),
            "spec.templates[1] ('chatprompttemplate') must have exactly one of dag or container",
        ),
        (
            lambda d: d["spec"]["templates"][1]["container"].update(volumeMounts=[]),
            "spec.templates[1].container.volumeMounts is not supported",
        ),
        (
            lambda d: d["spec"]["templates"][1]["container"].update(
                env=[{"name": "POD", "valueFrom": {"fieldRef": {}}}]
            ),
            "spec.templates[1].container.env[0].valueFrom.fieldRef is not supported",
        ),
        (
            lambda d: d["spec"]["templates"][1]["inputs"]["artifacts"][1].update(s3={"key": "x"}),
            "spec.templates[1].inputs.artifacts[1].s3 is not supported",
        ),
        (
            lambda d: d["spec"]["templates"][1]["outputs"]["parameters"][0]["valueFrom"].update(jqFilter="."),
            "spec.templates[1].outputs.parameters[0].valueFrom.jqFilter is not supported",
        ),
        (
            lambda d: d["spec"]["templates"][1].update(retryStrategy={"limit": 1, "affinity": {}}),
            "spec.templates[1].retryStrategy.affinity is not supported",
        ),
        (
            lambda d: d["spec"]["templates"][0]["dag"].update(tasks={"a": 1}),
            "spec.templates[0].dag.tasks must be a list",
        ),
        (
            lambda d: d["spec"]["templates"][0]["dag"]["tasks"][1]["arguments"]["artifacts"][0].update(s3={}),
            "spec.templates[0].dag.tasks[1].arguments.artifacts[0].s3 is not supported",
        ),
        (lambda d: d["spec"]["templates"].append("not a template"), "spec.templates[4] must be a mapping, found str"),
    ],
)
def test_a_field_outside_the_subset_is_refused_naming_it(mutate, fragment):
    doc = _doc()
    mutate(doc)
    with pytest.raises(WorkflowError) as err:
        _templates(doc)
    assert fragment in str(err.value)


def test_an_unsupported_key_is_refused_with_what_is_supported_there():
    doc = _doc()
    doc["spec"]["templates"][0]["dag"]["tasks"][0]["continueOn"] = {"failed": True}
    with pytest.raises(WorkflowError) as err:
        template(doc["spec"]["templates"][0], "spec.templates[0]")
    assert str(err.value) == (
        "spec.templates[0].dag.tasks[0].continueOn is not supported by the local runner (supported "
        "here: arguments, dependencies, depends, name, template, when, withItems, withParam)"
    )


def test_retry_strategy_is_parsed_into_seconds_and_decides_as_argo_does():
    retry = parse_retry(
        {"limit": "3", "retryPolicy": "Always", "backoff": {"duration": "2s", "factor": 2, "maxDuration": "5s"}}
    )
    assert (retry.limit, retry.duration, retry.factor, retry.max_duration) == (3, 2.0, 2.0, 5.0)
    assert [retry.backoff(n) for n in (1, 2, 3)] == [2.0, 4.0, 8.0]  # maxDuration is no cap: it ends the retrying
    capped = parse_retry({"limit": 3, "backoff": {"duration": "2s", "factor": "3", "cap": "10s"}})
    assert [capped.backoff(n) for n in (1, 2, 3)] == [2.0, 6.0, 10.0] and capped.max_duration is None
    assert (
        parse_retry({"limit": 3, "backoff": {"duration": "2s", "factor": 0}}).backoff(3) == 2.0
    )  # Argo: factor 0 is none
    assert retry.should_retry(1, "Failed", 0) and retry.should_retry(1, "Error", 0)
    on_failure = parse_retry({"limit": 1})
    assert on_failure.policy == "OnFailure" and on_failure.should_retry(1, "Failed", 0)
    assert not on_failure.should_retry(1, "Error", 0)
    on_error = parse_retry({"limit": 1, "retryPolicy": "OnError"})
    assert on_error.should_retry(1, "Error", 0) and not on_error.should_retry(1, "Failed", 0)
    by_code = parse_retry({"limit": 1, "retryPolicy": "Always", "expression": "asInt(lastRetry.exitCode) > 1"})
    assert by_code.should_retry(2, "Failed", 0) and not by_code.should_retry(1, "Failed", 0)


def parse_retry(strategy):
    doc = _doc()
    doc["spec"]["templates"][1]["retryStrategy"] = strategy
    return template(doc["spec"]["templates"][1], "spec.templates[1]").retry


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (
            lambda d: d["spec"]["templates"][1]["outputs"]["parameters"][0].pop("valueFrom"),
            "spec.templates[1].outputs.parameters[0].valueFrom.path is missing",
        ),
        (
            lambda d: d["spec"]["templates"][1]["inputs"]["artifacts"][0].pop("path"),
            "spec.templates[1].inputs.artifacts[0].path is missing: it must be a string",
        ),
        (
            lambda d: d["spec"]["templates"][1]["inputs"]["artifacts"][0]["raw"].update(data=7),
            "spec.templates[1].inputs.artifacts[0].raw.data is missing: it must be a string",
        ),
        (
            lambda d: d["spec"]["templates"][0]["dag"]["tasks"][1]["arguments"]["artifacts"][0].pop("from"),
            "spec.templates[0].dag.tasks[1].arguments.artifacts[0] ('input') must have exactly one of from or raw",
        ),
        (
            lambda d: d["spec"]["templates"][1].update(retryStrategy={"limit": 1, "retryPolicy": "Sometimes"}),
            "spec.templates[1].retryStrategy.retryPolicy must be Always, OnFailure, OnError or OnTransientError",
        ),
        (
            lambda d: d["spec"]["templates"][0]["dag"]["tasks"][1].update(depends=["a"]),
            "spec.templates[0].dag.tasks[1].depends must be an expression",
        ),
        (
            lambda d: d["spec"]["templates"][0]["dag"]["tasks"][0].update(when=True),
            "spec.templates[0].dag.tasks[0].when must be an expression",
        ),
        (
            lambda d: d["spec"]["templates"][0]["dag"].update(failFast="yes"),
            "spec.templates[0].dag.failFast must be true or false",
        ),
        (
            lambda d: d["spec"]["templates"][1]["container"]["env"].append({"value": "x"}),
            "spec.templates[1].container.env[0].name is missing",
        ),
    ],
)
def test_a_value_the_run_would_trip_on_is_refused_when_parsed(mutate, fragment):
    doc = _doc()
    doc["spec"]["templates"][1]["container"].setdefault("env", [])
    mutate(doc)
    with pytest.raises(WorkflowError) as err:
        _templates(doc)
    assert fragment in str(err.value)
