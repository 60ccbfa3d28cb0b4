"""What the local Argo runner computes from values alone as Argo v4 does (llmstep/local/argo_semantics.py):
a task's ``depends``, its ``withItems``/``withParam`` items, ``{{item}}``, ``{{workflow.failures}}``.
The runs that use them are in tests/unit/local/test_entry.py and tests/test_argo_fidelity.py."""

from __future__ import annotations

import json

import pytest

from llmstep.contract import Phase
from llmstep.errors import WorkflowError
from llmstep.local.argo_semantics import RECURSION_MESSAGE, depends_ok, item_vars, task_items, workflow_failures
from llmstep.local.argo_workflow import Task
from llmstep.local.records import RunRecord

# ---------------------------------------------------------------- depends


def test_without_an_expression_every_dependency_must_have_succeeded_or_been_skipped():
    assert depends_ok(None, ["a", "b"], {"a": Phase.SUCCEEDED, "b": Phase.SKIPPED}) is True
    assert depends_ok(None, ["a", "b"], {"a": Phase.SUCCEEDED, "b": Phase.FAILED}) is False
    assert depends_ok(None, ["a", "b"], {"a": Phase.SUCCEEDED, "b": Phase.OMITTED}) is False
    assert depends_ok(None, ["a"], {}) is False
    assert depends_ok(None, [], {}) is True


@pytest.mark.parametrize(
    "expression, phases, holds",
    [
        ("a", {"a": Phase.SUCCEEDED}, True),
        ("a", {"a": Phase.SKIPPED}, True),
        ("a", {"a": Phase.FAILED}, False),
        ("a.Succeeded", {"a": Phase.SUCCEEDED}, True),
        ("a.Succeeded", {"a": Phase.SKIPPED}, False),
        ("a.Failed", {"a": Phase.FAILED}, True),
        ("a.Skipped", {"a": Phase.SKIPPED}, True),
        ("a.Omitted", {"a": Phase.OMITTED}, True),
        ("a.Errored", {"a": Phase.ERROR}, True),  # Argo's word for an Error node in depends
        ("a.Errored", {"a": Phase.FAILED}, False),
        ("a.AnySucceeded", {"a": Phase.SUCCEEDED}, True),
        ("a.AllFailed", {"a": Phase.FAILED}, True),
        ("a.AllFailed", {"a": Phase.SUCCEEDED}, False),
        ("a.Daemoned", {"a": Phase.SUCCEEDED}, False),
        ("a.Succeeded || a.Failed", {"a": Phase.FAILED}, True),
        ("(a.Succeeded || a.Skipped) && !b.Failed", {"a": Phase.SKIPPED, "b": Phase.FAILED}, False),
    ],
)
def test_a_depends_expression_reads_the_results_of_the_tasks(expression, phases, holds):
    assert depends_ok(expression, phases, phases) is holds


def test_an_unknown_task_result_in_depends_is_named():
    with pytest.raises(WorkflowError, match="depends: unknown task result 'a.Finished'"):
        depends_ok("a.Finished", ["a"], {"a": Phase.SUCCEEDED})


# ---------------------------------------------------------------- withItems, withParam


def test_a_task_without_items_does_not_fan_out():
    assert task_items(Task("t", "tpl"), {}, "t") is None


def test_with_items_are_the_task_s_items_in_order():
    items = task_items(Task("t", "tpl", with_items=("b", {"k": 1}, 3)), {}, "t")
    assert items == ["b", {"k": 1}, 3]


def test_with_param_is_a_json_list_after_substitution():
    task = Task("t", "tpl", with_param="{{tasks.gen.outputs.parameters.list}}")
    values = {"tasks.gen.outputs.parameters.list": '[1, "two", {"three": 3}]'}
    assert task_items(task, values, "t") == [1, "two", {"three": 3}]


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", "task t: withParam must be a JSON list, found '{not json'"),
        ('{"a": 1}', "task t: withParam must be a JSON list, found dict"),
        ("7", "task t: withParam must be a JSON list, found int"),
    ],
)
def test_with_param_that_is_not_a_json_list_is_refused(text, message):
    with pytest.raises(WorkflowError) as err:
        task_items(Task("t", "tpl", with_param=text), {}, "t")
    assert str(err.value).startswith(message)


def test_with_param_naming_a_value_that_is_not_there_is_refused():
    with pytest.raises(WorkflowError, match="task t withParam"):
        task_items(Task("t", "tpl", with_param="{{tasks.gen.outputs.result}}"), {}, "t")


# ---------------------------------------------------------------- {{item}}


def test_a_string_item_is_itself_and_has_no_fields():
    assert item_vars('say "hi"') == {"item": 'say "hi"'}


def test_a_map_item_is_sorted_json_and_its_fields_are_go_s_item_strings():
    item = {"b": 'say "hi"\\', "a": 2, "c": [1, "x"], "d": {"z": None}}
    found = item_vars(item)
    assert found["item"] == '{"a":2,"b":"say \\"hi\\"\\\\","c":[1,"x"],"d":{"z":null}}'
    assert found["item.a"] == "2"
    assert found["item.b"] == 'say \\"hi\\"\\\\'  # the quotes cut off, what is inside stays escaped
    assert found["item.c"] == '[1,"x"]'
    assert found["item.d"] == '{"z":null}'
    assert set(found) == {"item", "item.a", "item.b", "item.c", "item.d"}


def test_a_number_or_list_item_is_its_json():
    assert item_vars(3) == {"item": "3"}
    assert item_vars(["é", 1]) == {"item": '["é",1]'}


# ---------------------------------------------------------------- {{workflow.failures}}


@pytest.fixture
def record(tmp_path):
    record = RunRecord.create(tmp_path / "runs", [{"kind": "Workflow"}], engine="argo", arguments={})
    yield record
    record.release()


def test_workflow_failures_is_a_json_string_holding_the_failed_nodes_and_the_entrypoint(record):
    record.update_node("ok", display_name="ok", template_name="ok", phase=Phase.SUCCEEDED)
    record.update_node("boom", display_name="boom", template_name="boom", phase=Phase.FAILED, message="déjà")
    value = workflow_failures(record, Phase.FAILED, "main")
    listed = json.loads(json.loads(value))  # Go's strconv.Quote over the JSON list
    assert [(f["displayName"], f["templateName"], f["phase"]) for f in listed] == [
        ("boom", "boom", "Failed"),
        (record.run_id, "main", "Failed"),
    ]
    assert listed[0]["message"] == "déjà" and "déjà" in value  # not escaped to \\u
    assert listed[1] == {
        "displayName": record.run_id,
        "message": "",
        "templateName": "main",
        "phase": "Failed",
        "podName": record.run_id,
        "finishedAt": "",
    }
    assert ", " not in json.loads(value) and ": " not in json.loads(value)  # Go's compact JSON


def test_a_workflow_that_succeeded_has_no_entrypoint_failure(record):
    record.update_node("ok", display_name="ok", template_name="ok", phase=Phase.SUCCEEDED)
    assert workflow_failures(record, Phase.SUCCEEDED, "main") == json.dumps("[]")


def test_the_recursion_message_is_the_controller_s():
    assert RECURSION_MESSAGE == (
        "Maximum recursion depth exceeded. See "
        "https://argo-workflows.readthedocs.io/en/latest/scaling/#maximum-recursion-depth"
    )
