"""Tekton staging: a step lays out its own data directory (the payload and the chain input from
env, earlier steps' outputs linked from the data workspace, secrets from files) and publishes its
small results; it stays inside the data workspace: an input path or a payload's input source
never reads (or writes) a file outside it."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest

import llmstep
from llmstep import contract, serde
from llmstep.errors import PayloadError
from llmstep.executor import staging


def _staged_exec(tmp_path, payload: dict, inputs: list[str]):
    workspace = tmp_path / "ws"
    (workspace / "run" / "a").mkdir(parents=True)
    (workspace / "run" / "a" / "output.json").write_text(
        json.dumps({"llmstep": serde.FORMAT_VERSION, "kind": "json", "value": "a"})
    )
    (tmp_path / "secret.json").write_text(
        json.dumps({"llmstep": serde.FORMAT_VERSION, "kind": "json", "value": "the secret file"})
    )
    data_dir = workspace / "run" / "b"
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "LLMSTEP_PAYLOAD": json.dumps(payload)}
    return data_dir, subprocess.run(
        [
            sys.executable,
            "-m",
            "llmstep",
            "exec",
            "--data-dir",
            str(data_dir),
            "--payload-env",
            "LLMSTEP_PAYLOAD",
            "--link-root",
            str(workspace),
            "--inputs",
            *inputs,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


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


# ---------------------------------------------------------------- stage and publish, in process


def _shape_payload(shape) -> str:
    return json.dumps({"llmstep": serde.FORMAT_VERSION, "name": "b", "inputs": shape})


def _workspace(tmp_path):
    """A data workspace where step a has run: run/a/output.json."""
    ws = tmp_path / "ws"
    (ws / "run" / "a").mkdir(parents=True)
    (ws / "run" / "a" / "output.json").write_text('{"llmstep": 2, "kind": "json", "value": "a"}')
    return ws


def test_stage_writes_the_payload_and_the_chain_input_from_their_env(tmp_path):
    ws = _workspace(tmp_path)
    data_dir = ws / "run" / "b"
    payload = _shape_payload(["input"])
    staging.stage(data_dir, payload=payload, chain_input='{"question": "q"}', inputs=["input"], link_root=str(ws))
    assert (data_dir / contract.PAYLOAD).read_text() == payload
    assert (data_dir / "input.json").read_text() == '{"question": "q"}'


def test_stage_links_an_earlier_steps_output_as_the_input_and_a_fan_in_gets_a_file_per_source(tmp_path):
    ws = _workspace(tmp_path)
    one = ws / "run" / "b"
    staging.stage(
        one, payload=_shape_payload(["step", "a"]), chain_input=None, inputs=["a=run/a/output.json"], link_root=str(ws)
    )
    assert os.path.samefile(one / "input.json", ws / "run" / "a" / "output.json")  # the same file, not a copy
    staging.stage(one, payload=None, chain_input=None, inputs=["a=run/a/output.json"], link_root=str(ws))  # a retry
    assert os.path.samefile(one / "input.json", ws / "run" / "a" / "output.json")
    fan = ws / "run" / "c"
    staging.stage(
        fan,
        payload=_shape_payload(["dict", {"a": ["step", "a"], "q": ["input"]}]),
        chain_input='"q"',
        inputs=["a=run/a/output.json", "input"],
        link_root=str(ws),
    )
    assert sorted(p.name for p in (fan / "input").iterdir()) == ["a.json", "input.json"]
    assert (fan / "input" / "input.json").read_text() == '"q"' and not (fan / "input.json").exists()


@pytest.mark.parametrize(
    ("inputs", "chain_input", "fragment"),
    [
        (["a"], None, "--inputs 'a': only 'input' may come without a path (from the input param)"),
        (["input"], None, "--inputs 'input': only 'input' may come without a path"),
        (
            ["a=run/missing/output.json"],
            None,
            "input 'a': run/missing/output.json is not a file in the data workspace; did step 'a' run?",
        ),
    ],
)
def test_stage_refuses_an_input_it_cannot_place(tmp_path, inputs, chain_input, fragment):
    ws = _workspace(tmp_path)
    with pytest.raises(PayloadError) as err:
        staging.stage(
            ws / "run" / "b",
            payload=_shape_payload(["step", "a"]),
            chain_input=chain_input,
            inputs=inputs,
            link_root=str(ws),
        )
    assert fragment in str(err.value)


def test_stage_leaves_a_broken_payload_to_the_executor(tmp_path):
    ws = _workspace(tmp_path)
    data_dir = ws / "run" / "b"
    staging.stage(data_dir, payload="{not json", chain_input='"x"', inputs=["input"], link_root=str(ws))
    assert (data_dir / contract.PAYLOAD).read_text() == "{not json"  # `llmstep exec` says what is wrong with it
    assert not (data_dir / "input.json").exists()


def test_secrets_mounted_as_files_are_read_by_file_name(tmp_path):
    folder = tmp_path / "credentials"
    (folder / "nested").mkdir(parents=True)
    (folder / "OPENAI_API_KEY").write_text("sk-from-the-secret\n")
    (folder / "..data").write_text("kubelet's own")  # what a Secret volume also holds
    assert staging.read_secrets_dir(str(folder)) == {"OPENAI_API_KEY": "sk-from-the-secret"}
    assert staging.read_secrets_dir("") == {} and staging.read_secrets_dir(str(tmp_path / "absent")) == {}


def test_publish_writes_the_small_results_tekton_shows(tmp_path):
    ws = tmp_path / "ws"
    data_dir = ws / "run" / "b"
    data_dir.mkdir(parents=True)
    (data_dir / contract.OUTPUT).write_text('{"llmstep": 2, "kind": "json", "value": "b"}')
    (data_dir / contract.PREVIEW).write_text("p" * (staging.RESULT_LIMIT + 10))
    (data_dir / contract.USAGE).write_text('{"m": {"input_tokens": 1}}')
    results = {name: str(tmp_path / "results" / name) for name in ("preview", "output-path", "sha256", "usage")}
    staging.publish(data_dir, results, str(ws))
    written = {name: open(path).read() for name, path in results.items()}
    assert written == {
        "preview": "p" * staging.RESULT_LIMIT,
        "output-path": "run/b/output.json",
        "sha256": hashlib.sha256((data_dir / contract.OUTPUT).read_bytes()).hexdigest(),
        "usage": '{"m": {"input_tokens": 1}}',
    }
    with pytest.raises(
        PayloadError, match="--result cost: unknown result \\(known: preview, output-path, sha256, usage\\)"
    ):
        staging.publish(data_dir, {"cost": str(tmp_path / "cost")}, str(ws))


def test_publish_of_a_failed_step_writes_empty_results(tmp_path):
    data_dir = tmp_path / "ws" / "run" / "b"
    data_dir.mkdir(parents=True)
    results = {name: str(tmp_path / name) for name in ("preview", "sha256", "usage")}
    staging.publish(data_dir, results, str(tmp_path / "ws"))
    assert [open(results[n]).read() for n in ("preview", "sha256", "usage")] == ["", "", "{}"]
