"""The typed Argo Workflow the local runner walks: a retry strategy decides and waits as Argo's
controller does, a run's parameters are the declared ones with the given ones over them, and a
container says whether it reads a Secret or a ConfigMap."""

from __future__ import annotations

import pytest

from llmstep.errors import WorkflowError
from llmstep.local.argo_workflow import Container, Dag, EnvVar, Parameter, Retry, Task, Template, Workflow


def test_a_retry_backs_off_by_its_factor_up_to_its_cap():
    assert [Retry(limit=3, duration=2.0, factor=2, max_duration=5.0).backoff(n) for n in (1, 2, 3)] == [2.0, 4.0, 8.0]
    assert [Retry(limit=3, duration=2.0, factor=3, cap=10.0).backoff(n) for n in (1, 2, 3)] == [2.0, 6.0, 10.0]
    assert Retry(limit=3, duration=2.0, factor=0).backoff(3) == 2.0  # Argo: a factor of 0 is none


@pytest.mark.parametrize(
    ("retry", "retried", "not_retried"),
    [
        (Retry(limit=1, policy="Always"), [(1, "Failed"), (1, "Error")], []),
        (Retry(limit=1), [(1, "Failed")], [(1, "Error")]),
        (Retry(limit=1, policy="OnError"), [(1, "Error")], [(1, "Failed")]),
        (Retry(limit=1, policy="Always", expression="asInt(lastRetry.exitCode) > 1"), [(2, "Failed")], [(1, "Failed")]),
    ],
)
def test_a_retry_decides_by_its_policy_and_expression(retry, retried, not_retried):
    assert all(retry.should_retry(code, phase, 0) for code, phase in retried)
    assert not any(retry.should_retry(code, phase, 0) for code, phase in not_retried)


def _workflow(*parameters):
    step = Template(
        "step",
        container=Container(
            "img",
            ("llmstep", "exec"),
            (EnvVar("A", "1"), EnvVar("KEY", value_from={"secretKeyRef": {"name": "s", "key": "k"}})),
        ),
    )
    main = Template("main", dag=Dag((Task("a", "step"),)))
    return Workflow(document={}, templates={"main": main, "step": step}, entrypoint="main", parameters=parameters)


def test_a_runs_parameters_are_the_declared_ones_with_the_given_ones_over_them():
    workflow = _workflow(Parameter("input", '{"q": 1}'), Parameter("other", None))
    assert workflow.arguments({"other": "x"}) == {"input": '{"q": 1}', "other": "x"}
    assert workflow.arguments({"input": '"given"', "other": "y"}) == {"input": '"given"', "other": "y"}
    with pytest.raises(WorkflowError, match=r"parameter 'other' has no value: pass -p other="):
        workflow.arguments({})


def test_a_container_that_reads_a_secret_needs_the_network_and_writes_its_entry_as_kubernetes_does():
    workflow = _workflow()
    step = workflow.template("step").container
    assert step is not None and step.needs_network and workflow.images == ["img"]
    assert step.env[1].entry() == {"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}
    assert not Container("img", ("llmstep", "exec"), (EnvVar("A", "1"),)).needs_network
