"""A run's typed state reads status.json as records have always written it and writes it back in
the same shape; what is not a record is refused with the reason."""

from __future__ import annotations

import json

import pytest

from llmstep.contract import DONE_PHASES, FAILED_PHASES, FINISHED_OK, Phase
from llmstep.local.state import NodeState, NotARecord, Outputs, Parameter, RunState

WRITTEN = {  # a record of a failed, resumed run, as status.json holds it
    "engine": "argo",
    "phase": "Failed",
    "startedAt": "2026-01-01T00:00:00.000000Z",
    "finishedAt": "2026-01-01T00:00:09.000000Z",
    "message": "",
    "resumedAt": "2026-01-01T00:00:05.000000Z",
    "arguments": {"input": '{"question": "q"}'},
    "outputTask": "answer",
    "batch": False,
    "history": [{"phase": "Failed", "message": "", "finishedAt": "2026-01-01T00:00:04.000000Z", "failures": []}],
    "nodes": {
        "prompt": {
            "id": "prompt",
            "displayName": "prompt",
            "templateName": "prompt",
            "phase": "Succeeded",
            "startedAt": "2026-01-01T00:00:00.100000Z",
            "finishedAt": "2026-01-01T00:00:01.000000Z",
            "message": "",
            "exitCode": 0,
            "attempts": 1,
            "exitHandler": False,
            "outputs": {
                "parameters": [{"name": "preview", "value": "Human: q"}],
                "artifacts": [
                    {
                        "name": "output",
                        "path": "/llmstep/output.json",
                        "localPath": "/runs/r/steps/prompt/data/output.json",
                    }
                ],
            },
        },
        "items": {
            "id": "items",
            "displayName": "items",
            "type": "TaskGroup",
            "phase": "Failed",
            "startedAt": "2026-01-01T00:00:01.000000Z",
            "message": "1 of 2 items failed",
        },
        "answer": {
            "id": "answer",
            "displayName": "answer",
            "templateName": "answer",
            "phase": "Pending",
            "exitHandler": False,
        },
    },
}


def test_a_record_reads_into_typed_state_and_writes_back_the_same_json():
    state = RunState.from_json(json.loads(json.dumps(WRITTEN)))
    assert (state.phase, state.output_task, state.batch, state.arguments) == (
        "Failed",
        "answer",
        False,
        WRITTEN["arguments"],
    )
    prompt = state.nodes["prompt"]
    assert (prompt.phase, prompt.exit_code, prompt.attempts, prompt.exit_handler) == (Phase.SUCCEEDED, 0, 1, False)
    assert prompt.outputs.parameter("preview") == "Human: q"
    assert prompt.outputs.artifact("output").local_path.endswith("/steps/prompt/data/output.json")
    assert not state.nodes["items"].is_step and state.nodes["answer"].started_at is None
    assert [task for task, _ in state.steps()] == ["prompt", "answer"]
    assert state.to_json() == WRITTEN
    assert list(state.to_json()["nodes"]) == ["prompt", "items", "answer"]  # the order they were created in


def test_keys_this_version_does_not_know_are_kept():
    data = {"phase": "Running", "nodes": {"a": {"phase": "Running", "hostNodeName": "here"}}, "estimatedDuration": 3}
    state = RunState.from_json(data)
    assert state.to_json()["estimatedDuration"] == 3
    assert state.to_json()["nodes"]["a"] == {"id": "a", "displayName": "a", "phase": "Running", "hostNodeName": "here"}


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ([], "a JSON list, not an object"),
        ({"startedAt": None}, "startedAt is NoneType, not str"),
        ({"phase": "Done"}, "phase 'Done' is not a phase"),
        ({"nodes": {"a": 1}}, "node 'a' is not an object"),
        ({"nodes": {"../x": {}}}, "node name '../x' is not a step folder's name"),
        ({"nodes": {"a": {"phase": 5}}}, "node 'a': phase is int, not str"),
        ({"nodes": {"a": {"attempts": True}}}, "node 'a': attempts is bool, not int"),
        ({"nodes": {"a": {"outputs": {"parameters": [{"value": "no name"}]}}}}, "node 'a': outputs.parameters"),
        ({"arguments": {"input": 5}}, "argument 'input' is not text"),
    ],
)
def test_what_is_not_a_record_is_refused_with_the_reason(data, problem):
    with pytest.raises(NotARecord, match="^" + problem.replace("(", r"\(").replace(".", r"\.")):
        RunState.from_json(data)


def test_a_node_created_by_the_runner_writes_only_what_it_has():
    node = NodeState(id="t", display_name="t")
    assert node.to_json() == {"id": "t", "displayName": "t", "phase": "Pending"}
    node.phase, node.outputs = Phase.SUCCEEDED, Outputs([Parameter("output", "x")])
    assert node.ended and node.output() == "x"
    assert node.to_json()["outputs"] == {"parameters": [{"name": "output", "value": "x"}], "artifacts": []}


def test_phases_are_the_words_argo_writes():
    assert [str(p) for p in Phase] == ["Pending", "Running", "Succeeded", "Failed", "Error", "Skipped", "Omitted"]
    assert json.dumps([Phase.FAILED]) == '["Failed"]' and f"{Phase.ERROR}" == "Error"
    assert set(FAILED_PHASES) == {"Failed", "Error"} and set(DONE_PHASES) == {"Succeeded", "Failed", "Error"}
    assert set(FINISHED_OK) == {"Succeeded", "Skipped"}
