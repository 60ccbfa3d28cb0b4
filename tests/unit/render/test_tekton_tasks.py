"""The reusable Tekton Tasks: values reach the step through env, never a script."""

from __future__ import annotations

from llmstep.render import tekton_tasks


def test_values_reach_the_step_through_env_never_a_script():
    task = tekton_tasks.run_task("img")
    step = task["spec"]["steps"][0]
    assert "script" not in step
    assert {"name": "LLMSTEP_PAYLOAD", "value": "$(params.payload)"} in step["env"]
    assert not any("$(params.payload)" in a or "$(params.input)" in a for a in step["args"] + step["command"])
