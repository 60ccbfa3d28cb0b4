"""Tekton staging stays inside the data workspace: an input path or a payload's input source never
reads (or writes) a file outside it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml
from chains import qa_chain

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


def test_tekton_data_dir_outside_the_workspaces_refused_by_the_local_runner(tmp_path):
    docs = llmstep.compile(qa_chain()).to_tekton()
    pipeline = next(d for d in docs if d["kind"] == "Pipeline")
    for param in pipeline["spec"]["tasks"][0]["params"]:
        if param["name"] == "output-dir":
            param["value"] = "../../../../../../victim"  # from the run's folder in the workspace up to tmp_path
    (tmp_path / "victim" / "input").mkdir(parents=True)
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    result = subprocess.run([sys.executable, "-m", "llmstep", "run", str(path), "--input", '{"question": "q"}'],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "--data-dir" in result.stderr and "outside the task's workspaces" in result.stderr
    assert (tmp_path / "victim" / "input").is_dir()  # the runner cleared nothing outside


def test_tekton_secret_item_path_outside_its_workspace_refused(tmp_path):
    docs = llmstep.compile(qa_chain()).to_tekton()
    run = next(d for d in docs if d["kind"] == "PipelineRun")
    run["spec"]["workspaces"].append({"name": "credentials", "secret": {
        "secretName": "llm-credentials", "items": [{"key": "OPENAI_API_KEY", "path": "../../../../planted"}]}})
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    result = subprocess.run([sys.executable, "-m", "llmstep", "run", str(path), "--input", '{"question": "q"}'],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "OPENAI_API_KEY": "sk-not-a-real-key"})  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "item 'OPENAI_API_KEY' path must be a relative path without '..'" in result.stderr
