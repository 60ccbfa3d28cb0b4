"""One error root: every error llmstep raises on purpose is an LlmstepError, with the exit code the
CLI exits with and what its caller needs; a connection failure is told without the transport's
wrappers."""

import pytest

import llmstep
from llmstep import errors
from llmstep.errors import Cancelled, connection_reason


def test_every_error_has_one_root():
    for name in llmstep.__all__:
        obj = getattr(llmstep, name)
        if isinstance(obj, type) and issubclass(obj, Exception) and not issubclass(obj, Warning):
            assert issubclass(obj, llmstep.LlmstepError)
    assert issubclass(llmstep.CompileError, llmstep.LlmstepError)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (llmstep.LlmstepError, 2),
        (llmstep.CompileError, 2),
        (llmstep.SecretError, 2),
        (llmstep.PayloadError, 2),
        (llmstep.WorkflowError, 2),
        (llmstep.ExecutionError, 1),
        (llmstep.DiagnosisError, 1),
        (llmstep.SubmissionError, 1),
        (llmstep.CredentialsError, 3),
        (Cancelled, 130),
    ],
)
def test_each_error_carries_the_exit_code_its_docstring_documents(error, code):
    assert error.exit_code == code
    assert error.__name__ in errors.__doc__  # drawn in the one tree


def test_a_failed_run_and_a_failed_batch_carry_what_the_caller_needs():
    failed = llmstep.RunFailed("run r failed", run_id="r-1", failures=[{"displayName": "gate"}])
    assert (failed.run_id, failed.failures, failed.exit_code) == ("r-1", [{"displayName": "gate"}], 1)
    items = [llmstep.ItemFailed(i, "boom", steps=["gate"]) for i in range(12)]
    batch = llmstep.BatchFailed(["ok", *items], "run b")
    text = str(batch)
    assert text.startswith("12 of 13 inputs failed in run b:") and "input 9: boom" in text
    assert "input 10: boom" not in text and "... and 2 more" in text  # at most ten named
    assert batch.results[0] == "ok" and batch.results[1].steps == ["gate"]


def test_a_connection_failure_is_told_without_the_transports_wrappers():
    class MaxRetryError(Exception):
        def __init__(self, reason):
            super().__init__("HTTPSConnectionPool(host='127.0.0.1', port=9): Max retries exceeded")
            self.reason = reason

    cause = ConnectionRefusedError(
        "<urllib3.connection.HTTPSConnection object at 0x7f>: Failed to establish a new "
        "connection: [Errno 111] Connection refused"
    )
    assert (
        connection_reason(MaxRetryError(cause))
        == "Failed to establish a new connection: [Errno 111] Connection refused"
    )


def test_the_error_tree_in_the_docstring_is_the_real_one():
    """errors.py draws its tree; every error it defines is drawn, under its real parent."""
    import re

    from llmstep import errors

    drawn = {}
    stack: list[tuple[int, str]] = []
    for line in errors.__doc__.split("```")[1].strip().splitlines():
        m = re.match(r"^([│ ├└─]*)(\w+)", line)
        depth, name = len(m.group(1)) // 4, m.group(2)
        stack = stack[:depth] + [(depth, name)]
        drawn[name] = stack[-2][1] if depth else None
    classes = {n: getattr(errors, n) for n in errors.__all__ if not issubclass(getattr(errors, n), Warning)}
    assert set(drawn) == set(classes) | {"LlmstepError"}
    for name, parent in drawn.items():
        if parent:
            assert classes[name].__mro__[1].__name__ == parent, name
    for name in set(errors.__all__) - {"ReferenceError_"}:  # the CLI's own (chain references)
        assert getattr(llmstep, name) is getattr(errors, name)  # every other error is public


def test_a_failed_run_is_one_event_on_every_engine():
    from llmstep import errors

    for cls in (errors.WorkflowFailed, errors.PipelineRunFailed):
        exc = cls("x failed", run_id="x", failures=[{"step": "a"}])
        assert isinstance(exc, errors.RunFailed) and isinstance(exc, errors.SubmissionError)
        assert (exc.exit_code, exc.run_id, exc.failures, str(exc)) == (1, "x", [{"step": "a"}], "x failed")


def test_a_write_that_failed_for_lack_of_room_is_told_as_such_naming_the_file():
    import errno

    from llmstep.errors import storage_full

    assert (
        storage_full(OSError(errno.ENOSPC, "No space left on device", "/r/out.json"))
        == "no space left on the device writing /r/out.json; free some space"
    )
    assert (
        storage_full(OSError(errno.EDQUOT, "Disk quota exceeded"))
        == "the disk quota is exhausted; free some space or raise the quota"
    )
    assert "size limit of the process" in storage_full(OSError(errno.EFBIG, "File too large"))
    assert storage_full(OSError(errno.EACCES, "Permission denied", "/r")) is None
    assert storage_full(ValueError("no")) is None
