"""Tekton's time, unit by unit: a PipelineRun's spec.timeouts read and checked as the controller does
(Deadlines), and durations printed in the words of Tekton's messages (go_duration)."""

from __future__ import annotations

import pytest

from llmstep.errors import WorkflowError
from llmstep.local.tekton_time import Deadlines, go_duration


def test_durations_print_as_go_prints_them():
    assert [go_duration(s) for s in (0, 0.5, 5, 90, 3600, 5400.5)] == [
        "0s",
        "500ms",
        "5s",
        "1m30s",
        "1h0m0s",
        "1h30m0.5s",
    ]


def test_deadlines_of_a_spec_in_seconds_and_the_finally_budget():
    assert Deadlines.of({}) == Deadlines(None, None, None)
    assert Deadlines.of({"timeouts": {"pipeline": "0s"}}) == Deadlines(None, None, None)  # 0: no timeout
    both = Deadlines.of({"timeouts": {"pipeline": "1h", "tasks": "50m"}})
    assert both == Deadlines(3600, 3000, None) and both.finally_budget() == 600  # what pipeline leaves over tasks
    own = Deadlines.of({"timeouts": {"pipeline": "1h", "tasks": "30m", "finally": "10m"}})
    assert own.final == 600 and own.finally_budget() == 600
    assert Deadlines.of({"timeouts": {"tasks": "5m"}}).finally_budget() is None


@pytest.mark.parametrize(
    ("timeouts", "fragment"),
    [
        (["1h"], "spec.timeouts must be a mapping of pipeline, tasks and finally"),
        ({"task": "1m"}, "spec.timeouts.task is not a Tekton timeout"),
        ({"tasks": -60}, "spec.timeouts.tasks: -60 should be >= 0"),
        ({"tasks": "-1m"}, "spec.timeouts.tasks: '-1m' is not a duration"),
        (
            {"pipeline": "1m", "tasks": "2m"},
            "spec.timeouts.tasks: '2m' should be <= pipeline duration ('1m'), and not 0",
        ),
        (
            {"pipeline": "1m", "tasks": "40s", "finally": "30s"},
            "spec.timeouts: tasks '40s' + finally '30s' should be <= pipeline duration ('1m')",
        ),
    ],
)
def test_a_bad_timeouts_field_is_named_in_tektons_rules(timeouts, fragment):
    with pytest.raises(WorkflowError) as err:
        Deadlines.of({"timeouts": timeouts})
    assert fragment in str(err.value)
