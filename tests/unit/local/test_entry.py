"""The local runner's entry points (run_local, run_document, resume_run, llmstep run): failures,
resume, retries, timeouts, when, exit handlers, secrets, hand-edited documents, concurrency and
interruption."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from chains import needs_file, qa_chain, qa_prompt
from conftest import ROOT, as_from_a_terminal, run_cli
from forkserver_cases import _alive
from langchain_core.runnables import RunnableLambda
from openai_server import FakeOpenAI

import llmstep
from llmstep.local.entry import resume_run, run_document


def _flaky_counter(path: str, fail_times: int):
    def flaky(x):
        p = Path(path)
        n = int(p.read_text()) if p.exists() else 0
        p.write_text(str(n + 1))
        if n < fail_times:
            raise ConnectionError(f"transient failure {n + 1}")
        return f"{x} after {n + 1} tries"

    return flaky


def test_middle_step_failure_keeps_finished_outputs_and_resume_finishes(tmp_path):
    flag = tmp_path / "flag"
    chain = (
        RunnableLambda(lambda x: x.upper()) | RunnableLambda(needs_file(str(flag))) | RunnableLambda(lambda x: x + "!")
    )
    compiled = llmstep.compile(chain, allow_pickle=True)
    runs = tmp_path / "runs"
    with pytest.raises(llmstep.RunFailed) as err:
        compiled.run_local("go", runs_dir=runs)
    failure = err.value
    assert failure.exit_code == 1
    assert [f["displayName"] for f in failure.failures] == ["gate"]
    assert "is not there yet" in str(failure) and "--resume" in str(failure)
    status = json.loads((runs / failure.run_id / "status.json").read_text())
    assert status["phase"] == "Failed"
    phases = {k: v["phase"] for k, v in status["nodes"].items()}
    assert phases == {"RunnableLambda": "Succeeded", "gate": "Failed", "RunnableLambda-2": "Pending"}
    first_output = runs / failure.run_id / "steps" / "RunnableLambda" / "data" / "output.json"
    assert "GO" in first_output.read_text()
    first_mtime = first_output.stat().st_mtime_ns

    flag.write_text("now")
    record = resume_run(failure.run_id, runs_dir=runs, quiet=True, allow_pickle=True)
    assert record.phase == "Succeeded" and record.result() == "GO (gate passed)!"
    assert first_output.stat().st_mtime_ns == first_mtime  # the finished step did not run again


@pytest.mark.parametrize("engine", ["argo", "tekton"])
def test_resume_runs_again_a_finished_step_whose_output_is_gone(tmp_path, engine, caplog):
    """It stopped with exit 70 (FileNotFoundError) when the next step's input was linked."""
    flag = tmp_path / "flag"
    chain = (
        RunnableLambda(lambda x: x.upper()) | RunnableLambda(needs_file(str(flag))) | RunnableLambda(lambda x: x + "!")
    )
    compiled = llmstep.compile(chain, allow_pickle=True)
    runs = tmp_path / "runs"
    with pytest.raises(llmstep.RunFailed) as err:
        compiled.run_local("go", runs_dir=runs, engine=engine)
    run_id = err.value.run_id
    status = json.loads((runs / run_id / "status.json").read_text())
    name = next(k for k in status["nodes"] if k.lower() == "runnablelambda")  # Tekton's task names are lower case
    first = status["nodes"][name]["outputs"]["artifacts"][0]["localPath"]
    Path(first).unlink()
    flag.write_text("now")
    with caplog.at_level("WARNING", logger="llmstep.local.entry"):
        record = resume_run(run_id, runs_dir=runs, quiet=True, allow_pickle=True)
    assert record.phase == "Succeeded" and record.result() == "GO (gate passed)!"
    assert Path(first).is_file()  # made again
    assert f"step {name} finished, but its output {first} is gone: it runs again" in caplog.text


@contextlib.contextmanager
def small_disk(folder: Path, size: str):
    """A real tmpfs of ``size`` mounted at ``folder`` (root, or CAP_SYS_ADMIN, is needed): a disk
    that fills for real. Skipped, with the reason, where mounting is not allowed."""
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(
            f"cannot mount a small tmpfs here ({mounted.stderr.strip() or 'not root'}): the full-disk "
            "case is covered by RLIMIT_FSIZE in tests/unit/executor/test_step.py"
        )
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_disk_that_fills_while_a_step_writes_its_output_fails_the_run_saying_so(tmp_path):
    """It read "Error (exit code 70)". The step's output does not fit; the run fails with the full
    disk named (exit 1), its record finished, and the finished step's output kept."""
    (tmp_path / "big.py").write_text(
        "from langchain_core.runnables import RunnableLambda\n"
        "chain = RunnableLambda(lambda x: x + '!') | RunnableLambda(lambda x: x * 200_000)\n"
    )
    with small_disk(tmp_path / "disk", "256k") as disk:
        result = run_cli(
            "run",
            "big.py:chain",
            "--allow-pickle",
            "--input",
            '"ab"',
            "--runs-dir",
            str(disk / "runs"),
            cwd=tmp_path,
            timeout=120,
        )
        assert result.returncode == 1, result.stderr[-2000:]
        assert (
            "no space left on the device writing " in result.stderr and "output.json; free some space" in result.stderr
        )
        assert "exit code 70" not in result.stderr and "internal error" not in result.stderr
        status = json.loads(next((disk / "runs").glob("*/status.json")).read_text())
        assert status["phase"] == "Failed"
        assert {k: n["phase"] for k, n in status["nodes"].items()} == {
            "RunnableLambda": "Succeeded",
            "RunnableLambda-2": "Failed",
        }
        assert "no space left on the device" in status["nodes"]["RunnableLambda-2"]["message"]


@pytest.mark.parametrize(
    ("engine", "fragment"),
    [
        ("argo", "/llmstep/output.json was not written, though the step exited 0"),
        ("tekton", "the step exited 0 without writing its results (output-path)"),
    ],
)
def test_a_step_that_exits_0_without_its_output_fails_the_run(tmp_path, engine, fragment):
    """os._exit(0) skips everything llmstep exec does after the Runnable: on Tekton the run read
    as succeeded, with no output to print."""
    chain = RunnableLambda(lambda x: x + 1) | RunnableLambda(lambda x: __import__("os")._exit(0))
    with pytest.raises(llmstep.RunFailed) as err:
        llmstep.compile(chain, allow_pickle=True).run_local(1, runs_dir=tmp_path / "runs", engine=engine)
    assert fragment in str(err.value)


DAEMON_CHAIN = """
import subprocess, sys, time
from langchain_core.runnables import RunnableLambda
import llmstep

DAEMON = ("import os, sys, time\\n"
          "if os.fork(): os._exit(0)\\n"
          "os.setsid()\\n"  # out of the step's process group and session
          "if os.fork(): os._exit(0)\\n"
          "open(sys.argv[1], 'w').write(str(os.getpid()))\\n"
          "time.sleep(600)\\n")

def start(pid_file):
    subprocess.run([sys.executable, "-c", DAEMON, pid_file])
    while not open(pid_file).read():
        time.sleep(0.02)
    return pid_file

def hang(pid_file):
    start(pid_file)
    time.sleep(600)  # the step's timeout stops it

chain = RunnableLambda(start)
hangs = llmstep.Step(RunnableLambda(hang), timeout=600)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a step's subreaper is Linux's PR_SET_CHILD_SUBREAPER")
@pytest.mark.parametrize("fork", [[], ["--no-fork-server"]], ids=["fork-server", "cold"])
@pytest.mark.parametrize("stopped", [False, True], ids=["step-ends", "step-stopped"])
def test_a_daemon_a_step_starts_ends_with_the_step(tmp_path, fork, stopped):
    """A Runnable that starts a real daemon (double fork, setsid): it outlived the run before.
    Stopped: the run is terminated while the step hangs (what a timeout does to the step too)."""
    (tmp_path / "daemons.py").write_text(DAEMON_CHAIN)
    pid_file = tmp_path / "daemon.pid"
    pid_file.write_text("")
    argv = [
        sys.executable,
        "-m",
        "llmstep",
        "run",
        f"daemons.py:{'hangs' if stopped else 'chain'}",
        "--allow-pickle",
        "--input",
        json.dumps(str(pid_file)),
        *fork,
    ]
    run = subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not pid_file.read_text() and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        daemon = int(pid_file.read_text())  # it started: the state the test needs
        if stopped:
            run.send_signal(signal.SIGTERM)
        _, stderr = run.communicate(timeout=120)
        assert run.returncode == (143 if stopped else 0), stderr
        deadline = time.monotonic() + 10  # the step's SIGTERM, then its grace
        while _alive(daemon) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(daemon)
    finally:
        if run.poll() is None:
            run.kill()
        if pid_file.read_text() and _alive(int(pid_file.read_text())):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)


@pytest.mark.parametrize("engine", ["argo", "tekton"])
def test_a_big_input_is_stored_once_in_the_record(tmp_path, engine):
    """The input is a workflow argument, the first step's input file and (Tekton) a file the step
    stages from its environment: a record of a big input was twice its size on Tekton. Measured
    with du, which counts a hard-linked file once. Tekton takes at most 640 KiB of input (a
    PipelineRun holds it twice, and Kubernetes keeps an object under 1.5 MiB)."""
    size = 8_000_000 if engine == "argo" else 600_000
    chain = RunnableLambda(lambda x: len(x["q"])) | RunnableLambda(lambda n: n + 1)
    out = llmstep.compile(chain, allow_pickle=True).run_local(
        {"q": "x" * size}, runs_dir=tmp_path / "runs", engine=engine
    )
    assert out == size + 1
    record = next((tmp_path / "runs").iterdir())
    used = int(subprocess.run(["du", "-sk", str(record)], capture_output=True, text=True, check=True).stdout.split()[0])
    assert used * 1024 < 1.3 * size, f"{used} KiB for an input of {size // 1024} KiB"


def test_retry_with_a_flaky_step(tmp_path):
    counter = tmp_path / "count"
    chain = llmstep.Step(RunnableLambda(_flaky_counter(str(counter), 2)), name="flaky", retries=2, backoff="0s")
    compiled = llmstep.compile(chain, allow_pickle=True)
    assert compiled.run_local("call", runs_dir=tmp_path / "r") == "call after 3 tries"
    [run] = (tmp_path / "r").iterdir()
    node = json.loads((run / "status.json").read_text())["nodes"]["flaky"]
    assert node["attempts"] == 3
    log = (run / "steps" / "flaky" / "log.txt").read_text()
    assert log.count("--- attempt") == 3 and "transient failure 2" in log


def test_retries_are_not_spent_on_bad_input(tmp_path):
    chain = llmstep.Step(qa_prompt(), name="p", retries=3, backoff="0s")
    with pytest.raises(llmstep.RunFailed):
        llmstep.compile(chain).run_local({"wrong": "keys"}, runs_dir=tmp_path / "r")
    [run] = (tmp_path / "r").iterdir()
    assert json.loads((run / "status.json").read_text())["nodes"]["p"]["attempts"] == 1


def test_timeout_stops_the_step(tmp_path):
    chain = llmstep.Step(RunnableLambda(lambda x: time.sleep(60) or x), name="slow", timeout=2)
    started = time.monotonic()
    with pytest.raises(llmstep.RunFailed) as err:
        llmstep.compile(chain, allow_pickle=True).run_local("x", runs_dir=tmp_path / "r")
    assert time.monotonic() - started < 20
    assert "longer than the specified deadline" in str(err.value)


def _hand_doc(chain, **compile_opts):
    return copy.deepcopy(llmstep.compile(chain, allow_pickle=True, **compile_opts).to_dict())


def test_the_workflows_deadline_stops_the_run_and_keeps_what_finished(tmp_path):
    """spec.activeDeadlineSeconds, as the controller runs it (tests/test_argo_fidelity.py): the
    running step is stopped with "Step exceeded its deadline", the next never starts, the run
    fails and is not left Running."""
    doc = _hand_doc(
        RunnableLambda(lambda x: x + "!", name="first")
        | RunnableLambda(lambda x: time.sleep(60) or x, name="slow")
        | RunnableLambda(lambda x: x, name="never")
    )
    doc["spec"]["activeDeadlineSeconds"] = 8  # time enough for "first" to start and end on a loaded machine
    started = time.monotonic()
    record = run_document(doc, "x", runs_dir=tmp_path / "r", quiet=True)
    assert time.monotonic() - started < 30
    status = json.loads((record.root / "status.json").read_text())
    nodes = {n["displayName"]: n for n in status["nodes"].values()}
    assert status["phase"] == "Failed" and nodes["first"]["phase"] == "Succeeded"
    assert (nodes["slow"]["phase"], nodes["slow"]["message"]) == ("Failed", "Step exceeded its deadline")
    assert nodes["never"]["phase"] == "Pending" and "startedAt" not in nodes["never"]


def test_when_skips_a_task(tmp_path):
    doc = _hand_doc(RunnableLambda(lambda x: x) | RunnableLambda(lambda x: x + 1))
    doc["spec"]["arguments"]["parameters"].append({"name": "extra", "value": "no"})
    tasks = doc["spec"]["templates"][0]["dag"]["tasks"]
    tasks[1]["when"] = "{{workflow.parameters.extra}} == yes"
    record = run_document(doc, 1, runs_dir=tmp_path / "r", quiet=True)
    assert record.phase == "Succeeded"
    assert record.nodes[tasks[1]["name"]].phase == "Skipped"
    record = run_document(doc, 1, parameters={"extra": "yes"}, runs_dir=tmp_path / "r", quiet=True)
    assert record.nodes[tasks[1]["name"]].phase == "Succeeded" and record.result() == 2


def test_exit_handler_receives_status_and_failures(tmp_path):
    def boom(x):
        raise ValueError("deliberate")

    doc = _hand_doc(RunnableLambda(lambda x: x) | RunnableLambda(boom))
    handler = copy.deepcopy(doc["spec"]["templates"][1])
    handler["name"] = "exit-handler"
    payload = llmstep.compile(RunnableLambda(lambda d: d), allow_pickle=True).plan.steps[0].payload
    handler["inputs"]["artifacts"] = [
        {"name": "payload", "path": "/llmstep/runnable.json", "raw": {"data": json.dumps(payload)}},
        {
            "name": "input",
            "path": "/llmstep/input.json",
            "raw": {"data": '{"status": "{{workflow.status}}", "failures": {{workflow.failures}}}'},
        },
    ]
    doc["spec"]["templates"].append(handler)
    doc["spec"]["onExit"] = "exit-handler"
    record = run_document(doc, "x", runs_dir=tmp_path / "r", quiet=True)
    assert record.phase == "Failed"
    out = json.loads((record.root / "steps" / "onExit" / "data" / "output.json").read_text())["value"]
    assert out["status"] == "Failed"
    # As Argo v4 gives it: a JSON string holding the JSON list (strconv.Quote), with every failed
    # node, the entrypoint's DAG node included
    failures = json.loads(out["failures"])
    assert sorted((f["displayName"], f["templateName"], f["phase"]) for f in failures) == [
        ("boom", "boom", "Failed"),
        (record.run_id, "main", "Failed"),
    ]
    assert "deliberate" in next(f["message"] for f in failures if f["displayName"] == "boom")


def test_exit_handler_can_be_skipped_on_success_with_when(tmp_path):
    doc = _hand_doc(RunnableLambda(lambda x: x))
    doc["spec"]["templates"].append(
        {
            "name": "on-exit",
            "dag": {
                "tasks": [
                    {
                        "name": "diagnose",
                        "template": doc["spec"]["templates"][1]["name"],
                        "when": "{{workflow.status}} != Succeeded",
                        "arguments": {"artifacts": [{"name": "input", "raw": {"data": "1"}}]},
                    }
                ]
            },
        }
    )
    doc["spec"]["onExit"] = "on-exit"
    record = run_document(doc, 5, runs_dir=tmp_path / "r", quiet=True)
    assert record.phase == "Succeeded" and record.result() == 5
    assert record.nodes["diagnose"].phase == "Skipped"


def test_step_without_secret_cannot_see_callers_key(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-caller-secret-value")
    monkeypatch.setenv("SOME_OTHER_VAR", "leaky")
    chain = RunnableLambda(lambda x: {k: os.environ.get(k) for k in ("OPENAI_API_KEY", "SOME_OTHER_VAR")})
    assert llmstep.compile(chain, allow_pickle=True).run_local("x", runs_dir=tmp_path / "r") == {
        "OPENAI_API_KEY": None,
        "SOME_OTHER_VAR": None,
    }


def test_model_step_gets_exactly_its_secret(tmp_path):
    from langchain_core.output_parsers import StrOutputParser
    from langchain_openai import ChatOpenAI

    with FakeOpenAI() as server:
        llm = ChatOpenAI(model="gpt-test", api_key="sk-compile-time-placeholder", base_url=server.url, max_retries=0)
        compiled = llmstep.compile(qa_prompt() | llm | StrOutputParser())
        assert "sk-compile-time-placeholder" not in compiled.to_yaml()
        out = compiled.run_local(
            {"question": "hi"}, secrets={"OPENAI_API_KEY": "sk-from-the-secret"}, runs_dir=tmp_path / "r"
        )
    assert out == "echo: hi"
    assert server.requests[0]["headers"]["authorization"] == "Bearer sk-from-the-secret"
    [run] = (tmp_path / "r").iterdir()
    everything = "".join(p.read_text(errors="ignore") for p in run.rglob("*") if p.is_file())
    assert "sk-from-the-secret" not in everything  # never in records, logs or outputs


def test_missing_secret_fails_that_step_with_the_executor_message(tmp_path):
    from langchain_openai import ChatOpenAI

    chain = qa_prompt() | ChatOpenAI(model="m", api_key="sk-placeholder", base_url="http://127.0.0.1:9/v1")
    with pytest.raises(llmstep.RunFailed) as err:
        llmstep.compile(chain).run_local({"question": "q"}, secrets={}, runs_dir=tmp_path / "r")
    assert "OPENAI_API_KEY" in str(err.value) and "exit code 3" in str(err.value)


def test_hand_edited_supported_change_takes_effect(tmp_path):
    doc = _hand_doc(qa_chain())
    payload = json.loads(doc["spec"]["templates"][2]["inputs"]["artifacts"][0]["raw"]["data"])
    payload["data"]["kwargs"]["prefix"] = "edited by hand"
    doc["spec"]["templates"][2]["inputs"]["artifacts"][0]["raw"]["data"] = json.dumps(payload)
    path = tmp_path / "edited.yaml"
    path.write_text(yaml.safe_dump(doc))
    result = run_cli("run", str(path), "-p", 'input={"question": "q"}', cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "edited by hand: q"


def test_parallel_branches_overlap_in_time(tmp_path):
    def nap(x):
        time.sleep(2)
        return x

    chain = {"a": RunnableLambda(nap), "b": RunnableLambda(nap), "c": RunnableLambda(nap)}
    compiled = llmstep.compile(chain, allow_pickle=True)
    compiled.run_local(1, runs_dir=tmp_path / "r")
    [run] = (tmp_path / "r").iterdir()
    nodes = json.loads((run / "status.json").read_text())["nodes"]

    def t(s):
        return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()

    spans = [(t(nodes[n]["startedAt"]), t(nodes[n]["finishedAt"])) for n in ("a-nap", "b-nap", "c-nap")]
    assert max(s for s, _ in spans) < min(e for _, e in spans)  # all three were running at once


def test_parallelism_bounds_concurrency(tmp_path):
    chain = {k: RunnableLambda(lambda x: time.sleep(1) or x) for k in "abc"}
    record = run_document(_hand_doc(chain), 1, parallelism=1, runs_dir=tmp_path / "r", quiet=True)

    def t(s):
        return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()

    spans = sorted((t(n.started_at), t(n.finished_at)) for k, n in record.nodes.items() if k != "result")
    assert all(spans[i][1] <= spans[i + 1][0] + 0.05 for i in range(len(spans) - 1))


def test_ctrl_c_stops_steps_and_leaves_a_consistent_record(tmp_path):
    script = tmp_path / "slow_chain.py"
    script.write_text(
        "import time\nfrom langchain_core.runnables import RunnableLambda\n"
        "chain = RunnableLambda(lambda x: x) | RunnableLambda(lambda x: time.sleep(120) or x)\n"
    )
    proc = subprocess.Popen(
        as_from_a_terminal(
            [sys.executable, "-m", "llmstep", "run", "slow_chain.py:chain", "--allow-pickle", "--input", "1"]
        ),
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    status_files = []
    while time.monotonic() < deadline:
        status_files = list((tmp_path / ".llmstep" / "runs").glob("*/status.json"))
        if (
            status_files
            and json.loads(status_files[0].read_text())["nodes"].get("RunnableLambda-2", {}).get("phase") == "Running"
        ):
            break
        time.sleep(0.2)
    time.sleep(1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    status = json.loads(status_files[0].read_text())
    assert status["phase"] == "Failed" and status["message"] == "interrupted"
    assert status["nodes"]["RunnableLambda"]["phase"] == "Succeeded"
    assert status["nodes"]["RunnableLambda-2"]["phase"] == "Failed"
    leftover = subprocess.run(["pgrep", "-f", str(tmp_path / ".llmstep")], capture_output=True, text=True)
    assert leftover.stdout.strip() == ""  # no step process outlives the run


@pytest.mark.parametrize(
    "given", [["--input", '{"question": "half an emoji \\ud83d"}'], ["-p", 'input={"question": "\\udc80"}']]
)
def test_lone_surrogate_in_the_chain_input_is_a_clear_error_naming_it(tmp_path, given):
    result = run_cli("run", f"{ROOT}/examples/qa.py:chain", *given, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "the chain input holds a lone surrogate" in result.stderr
