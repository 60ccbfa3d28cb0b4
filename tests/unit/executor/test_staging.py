"""Tekton staging stays inside the data workspace: an input path or a payload's input source never
reads (or writes) a file outside it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import llmstep
from llmstep import serde


def _staged_exec(tmp_path, payload: dict, inputs: list[str]):
    workspace = tmp_path / "ws"
    (workspace / "run" / "a").mkdir(parents=True)
    (workspace / "run" / "a" / "output.json").write_text(json.dumps({"llmstep": serde.FORMAT_VERSION, "kind": "json", "value": "a"}))
    (tmp_path / "secret.json").write_text(json.dumps({"llmstep": serde.FORMAT_VERSION, "kind": "json", "value": "the secret file"}))
    data_dir = workspace / "run" / "b"
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "LLMSTEP_PAYLOAD": json.dumps(payload)}
    return data_dir, subprocess.run(
        [sys.executable, "-m", "llmstep", "exec", "--data-dir", str(data_dir), "--payload-env", "LLMSTEP_PAYLOAD",
         "--link-root", str(workspace), "--inputs", *inputs],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip


def _payload(inputs_shape) -> dict:
    from langchain_core.runnables import RunnablePassthrough

    plan = llmstep.compile(RunnablePassthrough() | (lambda x: x), allow_pickle=True).plan
    payload = dict(plan.steps[-1].payload)
    payload["inputs"] = inputs_shape
    return payload


@pytest.mark.parametrize("where", ["absolute", "dot-dot", "symlink"])
def test_staged_input_path_outside_the_workspace_refused(tmp_path, where):
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "link.json").symlink_to(tmp_path / "secret.json")
    rel = {"absolute": str(tmp_path / "secret.json"), "dot-dot": "../secret.json", "symlink": "link.json"}[where]
    data_dir, result = _staged_exec(tmp_path, _payload(["step", "a"]), [f"a={rel}"])
    assert result.returncode == 2, result.stderr
    assert "outside the data workspace" in result.stderr
    assert not (data_dir / "input.json").exists()


def test_payload_input_source_outside_the_data_directory_refused(tmp_path):
    payload = _payload(["dict", {"k": ["step", "../../../x"]}])
    data_dir, result = _staged_exec(tmp_path, payload, ["../../../x=run/a/output.json"])
    assert result.returncode == 2, result.stderr
    assert "is not a step name" in result.stderr
    assert not (tmp_path / "x.json").exists()  # nothing written outside either
