"""One step of a local run with its attempts (llmstep/local/attempts.py), with real processes and
a real run record: retries and their rules, backoff, deadlines, interruption, and what the
record and the log get."""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from llmstep import contract
from llmstep.errors import WorkflowError
from llmstep.local.attempts import Attempt, StepRun, error_message, run_step, seconds
from llmstep.local.process import DEADLINE_MESSAGE, Launcher
from llmstep.local.progress import Progress
from llmstep.local.records import PID, RunRecord
from llmstep.local.state import Outputs, Parameter


class Changes(Progress):
    """Progress that keeps every change it is told of."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, int | None]] = []

    def changed(self, task, node):
        self.seen.append((task, node.phase, node.attempts))


@pytest.fixture
def record(tmp_path):
    record = RunRecord.create(
        tmp_path / "runs", [{"kind": "Workflow", "metadata": {"name": "attempts"}}], engine="argo", arguments={}
    )
    yield record
    record.release()


@pytest.fixture
def launcher():
    launcher = Launcher()
    yield launcher
    launcher.close()


def python(code: str, data_dir: Path) -> Attempt:
    """An attempt that runs ``code`` with the attempt's data directory as ``sys.argv[1]``."""
    return Attempt(argv=[sys.executable, "-c", code, str(data_dir)], env={})


def output(data_dir: Path) -> Outputs:
    """A ``collect`` that reads the step's ``out.txt`` as its output parameter."""
    return Outputs([Parameter("output", (data_dir / "out.txt").read_text(encoding="utf-8"))])


def step(code: str, **settings) -> StepRun:
    return StepRun(name="ask", template="ask-tmpl", prepare=lambda d: python(code, d), collect=output, **settings)


FAIL_WITH_ERROR_JSON = """
import json, pathlib, sys
data = pathlib.Path(sys.argv[1])
(data / "error.json").write_text(json.dumps({"type": "ValueError", "message": "no answer"}))
sys.exit(1)
"""


def counting(body: str, counter: Path) -> str:
    """Code that counts its attempts in ``counter`` (outside the data directory, which each
    attempt gets afresh), with ``n`` the attempt's number, then runs ``body``."""
    return f"""
import pathlib, sys, time
data, counter = pathlib.Path(sys.argv[1]), pathlib.Path({str(counter)!r})
n = len(counter.read_text()) + 1 if counter.exists() else 1
counter.write_text("x" * n)
{body}
"""


# ---------------------------------------------------------------- one attempt


def test_a_step_that_succeeds_records_its_phase_outputs_and_log(record, launcher):
    progress = Changes()
    code = "import pathlib, sys; print('printed by the step'); (pathlib.Path(sys.argv[1]) / 'out.txt').write_text('42')"
    phase = run_step(step(code, retries=2), record, launcher, progress)
    assert phase == "Succeeded"
    node = record.nodes["ask"]
    assert {
        k: getattr(node, k)
        for k in ("phase", "message", "exit_code", "attempts", "template_name", "display_name", "exit_handler")
    } == {
        "phase": "Succeeded",
        "message": "",
        "exit_code": 0,
        "attempts": 1,
        "template_name": "ask-tmpl",
        "display_name": "ask",
        "exit_handler": False,
    }
    assert node.outputs == Outputs([Parameter("output", "42")])
    assert node.started_at <= node.finished_at
    log = (record.step_dir("ask") / "log.txt").read_text(encoding="utf-8")
    assert log.startswith("--- attempt 1 at ") and "printed by the step" in log
    assert progress.seen == [("ask", "Running", 1), ("ask", "Succeeded", 1)]
    record.save()
    saved = json.loads((record.root / "status.json").read_text(encoding="utf-8"))
    assert saved["nodes"]["ask"]["phase"] == "Succeeded" and saved["nodes"]["ask"]["attempts"] == 1


def test_the_running_process_is_named_in_the_pid_file_until_it_ends(record, launcher):
    # the process waits for its pid file, then reports what it names
    code = """
import os, pathlib, sys, time
pid_file = pathlib.Path(sys.argv[1]).parent / "pid"
for _ in range(2400):  # up to a minute: a loaded machine is slow to start the step
    if pid_file.exists():
        break
    time.sleep(0.025)
pid = pid_file.read_text().split()[0]
(pathlib.Path(sys.argv[1]) / "out.txt").write_text(f"{pid} {os.getpid()}")
"""
    assert run_step(step(code), record, launcher, Progress()) == "Succeeded"
    named, own = record.nodes["ask"].outputs.parameters[0].value.split()
    assert named == own
    assert not (record.step_dir("ask") / PID).exists()


def test_a_failed_step_says_what_its_error_json_says(record, launcher):
    assert run_step(step(FAIL_WITH_ERROR_JSON), record, launcher, Progress()) == "Failed"
    node = record.nodes["ask"]
    assert node.message == "ValueError: no answer (exit code 1)"
    assert (node.exit_code, node.attempts, node.outputs) == (1, 1, Outputs())


def test_a_failed_step_without_error_json_says_its_exit_code(record, launcher):
    assert run_step(step("import sys; sys.exit(3)"), record, launcher, Progress()) == "Failed"
    assert record.nodes["ask"].message == "Error (exit code 3)"
    assert record.nodes["ask"].exit_code == 3


def test_error_json_is_read_where_the_attempt_says_the_step_keeps_it(record, launcher, tmp_path):
    elsewhere = tmp_path / "container-data"
    elsewhere.mkdir()

    def prepare(data_dir):
        return Attempt(argv=[sys.executable, "-c", FAIL_WITH_ERROR_JSON, str(elsewhere)], env={}, data_dir=elsewhere)

    run_step(StepRun(name="ask", template="t", prepare=prepare, collect=output), record, launcher, Progress())
    assert record.nodes["ask"].message == "ValueError: no answer (exit code 1)"


@pytest.mark.parametrize(
    "error",
    [
        FileNotFoundError(2, "No such file or directory", "/runs/x/steps/a/data/output.json"),
        OSError(28, "No space left on device"),
    ],
)
def test_inputs_that_cannot_be_laid_out_make_an_error_node_not_a_crash(record, launcher, error):
    def prepare(data_dir):
        raise error

    phase = run_step(StepRun(name="ask", template="t", prepare=prepare, collect=output), record, launcher, Progress())
    assert phase == "Error" and record.nodes["ask"].phase == "Error"
    assert record.nodes["ask"].message.startswith(f"its inputs cannot be laid out: {error.strerror}")
    assert (error.filename or "") in record.nodes["ask"].message


def test_the_process_gets_only_the_env_of_its_attempt(record, launcher):
    code = "import json, os, pathlib, sys; (pathlib.Path(sys.argv[1]) / 'out.txt').write_text(json.dumps(sorted(os.environ)))"

    def prepare(data_dir):
        return Attempt(argv=[sys.executable, "-c", code, str(data_dir)], env={"ONLY_THIS": "1"})

    run_step(StepRun(name="ask", template="t", prepare=prepare, collect=output), record, launcher, Progress())
    names = json.loads(record.nodes["ask"].outputs.parameters[0].value)
    assert "ONLY_THIS" in names and "HOME" not in names and "PATH" not in names


# ---------------------------------------------------------------- retries


def test_a_failing_step_is_retried_in_a_fresh_data_directory_until_it_succeeds(record, launcher, tmp_path):
    progress = Changes()
    body = """
if (data / "leftover").exists():
    sys.exit(7)  # an earlier attempt's file: the directory was not fresh
(data / "leftover").write_text("x")
if n < 3:
    sys.exit(1)
(data / "out.txt").write_text(f"attempt {n}")
"""
    prepared = []

    def prepare(data_dir):
        prepared.append((data_dir, sorted(p.name for p in data_dir.iterdir())))
        return python(counting(body, tmp_path / "count"), data_dir)

    phase = run_step(
        StepRun(name="ask", template="t", prepare=prepare, collect=output, retries=2), record, launcher, progress
    )
    assert phase == "Succeeded"
    node = record.nodes["ask"]
    assert (node.attempts, node.exit_code) == (3, 0)
    assert node.outputs.parameters[0].value == "attempt 3"
    assert prepared == [(record.step_dir("ask") / "data", [])] * 3
    log = (record.step_dir("ask") / "log.txt").read_text(encoding="utf-8")
    assert [line.split(" at ")[0] for line in log.splitlines()] == ["--- attempt 1", "--- attempt 2", "--- attempt 3"]
    assert progress.seen == [
        ("ask", "Running", 1),
        ("ask", "Running", 2),
        ("ask", "Running", 3),
        ("ask", "Succeeded", 3),
    ]


@pytest.mark.parametrize("retries", [0, 2])
def test_a_step_that_keeps_failing_runs_its_retries_plus_one_times(record, launcher, tmp_path, retries):
    code = counting("sys.exit(1)", tmp_path / "count")
    assert run_step(step(code, retries=retries), record, launcher, Progress()) == "Failed"
    assert record.nodes["ask"].attempts == retries + 1
    assert (tmp_path / "count").read_text() == "x" * (retries + 1)


def test_the_retry_rule_decides_from_the_exit_code_phase_and_duration(record, launcher, tmp_path):
    asked = []

    def retry(code, phase, duration):
        asked.append((code, phase, duration))
        return code == 3  # as a retryStrategy.expression on lastRetry.exitCode

    code = counting("sys.exit(3 if n == 1 else 4)", tmp_path / "count")
    assert run_step(step(code, retries=5, retry=retry), record, launcher, Progress()) == "Failed"
    assert record.nodes["ask"].attempts == 2
    assert record.nodes["ask"].exit_code == 4
    assert [(c, p) for c, p, _ in asked] == [(3, "Failed"), (4, "Failed")]
    assert all(isinstance(d, float) and 0 <= d < 30 for _, _, d in asked)


def test_by_default_only_a_failed_step_is_retried_not_one_whose_outputs_are_unusable(record, launcher):
    def collect(data_dir):
        raise WorkflowError("output 'answer' is missing")

    run = StepRun(name="ask", template="t", prepare=lambda d: python("pass", d), collect=collect, retries=3)
    assert run_step(run, record, launcher, Progress()) == "Error"
    node = record.nodes["ask"]
    assert (node.phase, node.message, node.attempts, node.exit_code) == ("Error", "output 'answer' is missing", 1, 0)


def test_a_retry_rule_may_retry_an_error_phase(record, launcher, tmp_path):
    collected = []

    def collect(data_dir):
        collected.append(1)
        if len(collected) == 1:
            raise WorkflowError("not yet")
        return output(data_dir)

    code = "import pathlib, sys; (pathlib.Path(sys.argv[1]) / 'out.txt').write_text('second')"
    run = StepRun(
        name="ask",
        template="t",
        prepare=lambda d: python(code, d),
        collect=collect,
        retries=1,
        retry=lambda code, phase, duration: phase in ("Failed", "Error"),
    )
    assert run_step(run, record, launcher, Progress()) == "Succeeded"
    assert record.nodes["ask"].attempts == 2


def test_backoff_waits_between_attempts_and_not_after_the_last(record, launcher, tmp_path):
    asked = []

    def backoff(attempt):
        asked.append(attempt)
        return 0.3 * attempt

    body = "open(str(counter) + '.times', 'a').write(f'{time.time()}\\n'); sys.exit(1)"
    code = counting(body, tmp_path / "count")
    assert run_step(step(code, retries=2, backoff=backoff), record, launcher, Progress()) == "Failed"
    assert asked == [1, 2]
    starts = [float(t) for t in (tmp_path / "count.times").read_text().split()]
    assert len(starts) == 3
    assert starts[1] - starts[0] >= 0.3 and starts[2] - starts[1] >= 0.6


# ---------------------------------------------------------------- deadlines and interruption


def test_a_step_past_its_deadline_is_stopped_and_fails_with_the_pods_message(record, launcher):
    started = time.monotonic()
    assert run_step(step("import time; time.sleep(20)", timeout=0.5), record, launcher, Progress()) == "Failed"
    elapsed = time.monotonic() - started
    node = record.nodes["ask"]
    assert node.message == DEADLINE_MESSAGE
    assert node.exit_code == -signal.SIGTERM
    assert 0.5 <= elapsed < 10


def test_a_deadline_counts_for_each_attempt_and_a_timed_out_attempt_is_retried(record, launcher, tmp_path):
    code = counting("time.sleep(20) if n == 1 else (data / 'out.txt').write_text('in time')", tmp_path / "count")
    started = time.monotonic()
    # each attempt has 5 s: the second needs only to start and write (which a loaded machine may make slow)
    assert run_step(step(code, timeout=5.0, retries=1), record, launcher, Progress()) == "Succeeded"
    assert time.monotonic() - started < 60
    assert record.nodes["ask"].attempts == 2
    assert record.nodes["ask"].outputs.parameters[0].value == "in time"


def test_a_step_stopped_with_the_run_fails_as_interrupted_and_is_not_retried(record, launcher):
    stopper = threading.Timer(0.5, launcher.stop)
    stopper.start()
    started = time.monotonic()
    try:
        phase = run_step(step("import time; time.sleep(20)", retries=3), record, launcher, Progress())
    finally:
        stopper.cancel()
    assert phase == "Failed"
    node = record.nodes["ask"]
    assert (node.message, node.exit_code, node.attempts) == ("interrupted", 130, 1)
    assert time.monotonic() - started < 10


def test_a_step_of_a_stopped_run_does_not_start(record, launcher, tmp_path):
    launcher.stop()
    code = counting("pass", tmp_path / "count")
    assert run_step(step(code, retries=3), record, launcher, Progress()) == "Failed"
    assert record.nodes["ask"].message == "interrupted"
    assert not (tmp_path / "count").exists()


# ---------------------------------------------------------------- preparing, and the slot


def test_a_step_that_cannot_be_prepared_is_an_error_without_a_process(record, launcher):
    def prepare(data_dir):
        raise WorkflowError("input parameter 'question' has no value")

    run = StepRun(name="ask", template="t", prepare=prepare, collect=output, retries=3)
    assert run_step(run, record, launcher, Progress()) == "Error"
    node = record.nodes["ask"]
    assert (node.message, node.exit_code, node.attempts) == ("input parameter 'question' has no value", None, 1)
    assert not (record.step_dir("ask") / "log.txt").exists()


def test_the_slot_is_held_while_the_process_runs(record, launcher):
    log = record.step_dir("ask") / "log.txt"
    held = []

    @contextmanager
    def slot():
        held.append(("enter", log.read_text(encoding="utf-8")))
        yield
        held.append(("exit", log.read_text(encoding="utf-8")))

    code = "import pathlib, sys; print('inside'); (pathlib.Path(sys.argv[1]) / 'out.txt').write_text('ok')"
    assert run_step(step(code, slot=slot), record, launcher, Progress()) == "Succeeded"
    (enter, before), (leave, after) = held
    assert (enter, leave) == ("enter", "exit")
    assert before.startswith("--- attempt 1") and "inside" not in before
    assert "inside" in after


def test_an_exit_handler_is_recorded_as_one(record, launcher):
    code = "import pathlib, sys; (pathlib.Path(sys.argv[1]) / 'out.txt').write_text('ok')"
    run_step(step(code, exit_handler=True), record, launcher, Progress())
    assert record.nodes["ask"].exit_handler is True


# ---------------------------------------------------------------- error_message and seconds


@pytest.mark.parametrize(
    "error_json, message",
    [
        (json.dumps({"type": "ValueError", "message": "bad"}), "ValueError: bad (exit code 2)"),
        (json.dumps({"type": "ExecutionError", "message": "ExecutionError: bad"}), "ExecutionError: bad (exit code 2)"),
        ("{cut short", "Error (exit code 2)"),
        (None, "Error (exit code 2)"),
    ],
)
def test_error_message_is_the_steps_account_else_its_exit_code(tmp_path, error_json, message):
    if error_json is not None:
        (tmp_path / contract.ERROR).write_text(error_json, encoding="utf-8")
    assert error_message(tmp_path, 2) == message


@pytest.mark.parametrize(
    "text, value",
    [
        (30, 30.0),
        ("30", 30.0),
        ("2.5", 2.5),
        ("5s", 5.0),
        ("1.5s", 1.5),
        ("500ms", 0.5),
        ("1m", 60.0),
        ("1m30s", 90.0),
        ("1h30m", 5400.0),
        ("2h", 7200.0),
        (" 10s ", 10.0),
    ],
)
def test_seconds_of_an_engine_duration(text, value):
    assert seconds(text, "backoff.duration") == value


@pytest.mark.parametrize("text", ["5x", "m", "1m 30s", "s5", "", "five", "1d"])
def test_a_duration_that_is_not_one_names_where_it_is(text):
    with pytest.raises(WorkflowError) as caught:
        seconds(text, "task ask timeout")
    assert str(caught.value) == f"task ask timeout: {text!r} is not a duration like '5s' or '1m30s'"


# ---------------------------------------------------------------- Argo's maxDuration and the run's deadline


def test_max_duration_ends_the_retrying_when_it_has_passed_since_the_first_attempt(record, launcher, tmp_path):
    """Argo's backoff.maxDuration is no cap on the wait: once it has passed since the first attempt
    started, the step is not retried, with the controller's message."""
    code = counting("time.sleep(0.6); sys.exit(1)", tmp_path / "count")
    assert run_step(step(code, retries=5, max_duration=0.3), record, launcher, Progress()) == "Failed"
    assert (tmp_path / "count").read_text() == "x"  # one attempt, five retries left
    assert record.nodes["ask"].message == "Max duration limit exceeded"


def test_max_duration_refuses_a_backoff_that_would_end_after_it(record, launcher, tmp_path):
    code = counting("sys.exit(1)", tmp_path / "count")
    started = time.monotonic()
    run = step(code, retries=5, max_duration=30, backoff=lambda attempt: 60.0)
    assert run_step(run, record, launcher, Progress()) == "Failed"
    assert time.monotonic() - started < 20  # it did not wait 60 s to find out
    assert (tmp_path / "count").read_text() == "x"
    assert record.nodes["ask"].message == "Backoff would exceed max duration limit"


def test_a_retry_is_stopped_when_the_max_duration_ends(record, launcher, tmp_path):
    """A retry runs until the max duration's end (Argo sets it as the retry pod's deadline)."""
    code = counting("sys.exit(1) if n == 1 else time.sleep(30)", tmp_path / "count")
    started = time.monotonic()
    # 6 s: time enough for the first attempt to start and fail on a loaded machine, then the retry runs
    assert run_step(step(code, retries=5, max_duration=6.0), record, launcher, Progress()) == "Failed"
    assert time.monotonic() - started < 60
    assert (tmp_path / "count").read_text() == "xx"
    assert record.nodes["ask"].message == "Max duration limit exceeded"


def test_the_runs_deadline_stops_a_running_step_and_fails_one_that_starts_after_it(record, launcher, tmp_path):
    deadline = time.monotonic() + 4  # time enough for the step to start (and count) on a loaded machine
    run = step(counting("time.sleep(60)", tmp_path / "count"), timeout=120, retries=3, deadline=deadline)
    assert run_step(run, record, launcher, Progress()) == "Failed"
    assert time.monotonic() - deadline < 30
    assert record.nodes["ask"].message == "Step exceeded its deadline"
    assert (tmp_path / "count").read_text() == "x"  # no retry after the run's deadline
    late = StepRun(
        name="late",
        template="t",
        prepare=lambda d: python(counting("", tmp_path / "late"), d),
        collect=output,
        deadline=deadline,
    )
    assert run_step(late, record, launcher, Progress()) == "Failed"
    assert record.nodes["late"].message == "Step exceeded its deadline"
    assert not (tmp_path / "late").exists()  # it never ran


def test_a_steps_own_timeout_keeps_the_pods_message_under_a_later_run_deadline(record, launcher):
    run = step("import time; time.sleep(20)", timeout=0.5, deadline=time.monotonic() + 60)
    assert run_step(run, record, launcher, Progress()) == "Failed"
    assert record.nodes["ask"].message == DEADLINE_MESSAGE
