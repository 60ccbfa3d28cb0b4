"""`llmstep submit` and `llmstep result`: through the Argo Server (a loopback stand-in), waiting,
batches, a Workflow file; Ctrl-C stops the waiting, not the Workflow; Tekton's refusals."""

from __future__ import annotations

import json
import subprocess

from argo_server import TOKEN, FakeArgoServer
from chains import qa_chain
from conftest import ROOT, as_from_a_terminal, chain_module, run_cli


def test_cli_submit_engine_tekton_refuses_a_batch_and_argo_server_options(tmp_path):
    batch = run_cli(
        "submit", "examples/qa.py:chain", "--engine", "tekton", "--inputs", "examples/questions.jsonl", cwd=ROOT
    )
    assert batch.returncode == 2 and "--inputs: a batch runs on Argo only" in batch.stderr
    server = run_cli("submit", "examples/qa.py:chain", "--engine", "tekton", "--argo-server", "127.0.0.1:1", cwd=ROOT)
    assert server.returncode == 2 and "--argo-server: an Argo Server option" in server.stderr
    param = run_cli("submit", "examples/qa.py:chain", "--engine", "tekton", "-p", "other=1", cwd=ROOT)
    assert param.returncode == 2 and "-p other: the Pipeline declares only the 'input' param" in param.stderr


def test_cli_submit_wait_and_result(server, tmp_path):
    env = {"ARGO_SERVER": server.url, "ARGO_TOKEN": TOKEN, "PYTHONPATH": str(tmp_path)}
    chain_module(tmp_path, "from chains import qa_chain\nchain = qa_chain()\n")
    out = run_cli(
        "submit", "mychain.py:chain", "-n", "argo", "--input", '{"question": "cli"}', "--wait", cwd=tmp_path, env=env
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "offline answer: cli" and "Name: mychain-" in out.stderr
    name = out.stderr.split("Name: ")[1].split()[0]
    again = run_cli("result", name, "-n", "argo", "--json", cwd=tmp_path, env=env)
    assert json.loads(again.stdout) == {"workflow": name, "output": "offline answer: cli"}
    (tmp_path / "in.jsonl").write_text('{"question": "x"}\n{"question": "y"}\n')
    batch = run_cli("submit", "mychain.py:chain", "-n", "argo", "--inputs", "in.jsonl", "--wait", cwd=tmp_path, env=env)
    assert [json.loads(line) for line in batch.stdout.splitlines()] == [
        {"index": 0, "output": "offline answer: x"},
        {"index": 1, "output": "offline answer: y"},
    ]
    compiled = run_cli("compile", "mychain.py:chain", "-o", "qa.yaml", cwd=tmp_path, env=env)
    assert compiled.returncode == 0, compiled.stderr
    from_file = run_cli(
        "submit",
        "qa.yaml",
        "-n",
        "argo",
        "-p",
        'input={"question": "from a file"}',
        "--wait",
        "--json",
        cwd=tmp_path,
        env=env,
    )
    assert json.loads(from_file.stdout)["output"] == "offline answer: from a file", from_file.stderr
    not_batch = run_cli("submit", "qa.yaml", "-n", "argo", "--inputs", "in.jsonl", cwd=tmp_path, env=env)
    assert (
        not_batch.returncode == 2 and "--inputs needs a batch Workflow (llmstep compile --batch N)" in not_batch.stderr
    )
    missing = run_cli("result", "nope", "-n", "argo", cwd=tmp_path, env=env)
    assert missing.returncode == 1 and 'workflows.argoproj.io "nope" not found' in missing.stderr
    bad = run_cli("submit", "mychain.py:chain", "--input", "{not json", cwd=tmp_path, env=env)
    assert bad.returncode == 2 and "the input is not valid JSON" in bad.stderr


def test_cli_ctrl_c_stops_waiting_not_the_workflow(tmp_path):
    import signal
    import sys
    import time

    chain_module(tmp_path, "from chains import qa_chain\nchain = qa_chain()\n")
    with FakeArgoServer(qa_chain(), token=TOKEN, step_delay=30) as server:
        env = {**__import__("os").environ, "ARGO_SERVER": server.url, "ARGO_TOKEN": TOKEN}
        proc = subprocess.Popen(
            as_from_a_terminal(
                [
                    sys.executable,
                    "-m",
                    "llmstep",
                    "submit",
                    "mychain.py:chain",
                    "-n",
                    "argo",
                    "--input",
                    '{"question": "x"}',
                    "--wait",
                ]
            ),
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while not any(r["method"] == "GET" for r in server.requests):  # it is waiting
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "keeps running" in err and "argo terminate -n argo" in err
    assert not any(r["method"] == "PUT" for r in server.requests)  # not terminated


def test_cli_submit_wait_timeout_must_be_seconds_above_zero(tmp_path):
    for bad in ("0", "nan", "inf", "-5"):
        result = run_cli("submit", f"{ROOT}/examples/qa.py:chain", "--wait", "--timeout", bad, cwd=tmp_path, timeout=60)
        assert result.returncode == 2, result.stderr
        assert f"argument --timeout: {bad!r} is not a number of seconds above 0" in result.stderr


def test_cli_submit_refuses_chain_options_with_a_file(tmp_path):
    for flag in (["--image", "example/llm:2"], ["--allow-pickle"]):
        result = run_cli(
            "submit",
            str(ROOT / "workflows" / "qa.yaml"),
            *flag,
            "--input",
            '{"question": "q"}',
            cwd=tmp_path,
            timeout=60,
        )
        assert result.returncode == 2, result.stderr
        assert f"{flag[0]} applies to a chain reference" in result.stderr
