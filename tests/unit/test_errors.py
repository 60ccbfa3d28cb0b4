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


@pytest.mark.parametrize(("error", "code"), [
    (llmstep.LlmstepError, 2), (llmstep.CompileError, 2), (llmstep.SecretError, 2), (llmstep.PayloadError, 2),
    (llmstep.WorkflowError, 2), (llmstep.ExecutionError, 1), (llmstep.DiagnosisError, 1), (llmstep.SubmissionError, 1),
    (llmstep.CredentialsError, 3), (Cancelled, 130),
])  # fmt: skip
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

    cause = ConnectionRefusedError("<urllib3.connection.HTTPSConnection object at 0x7f>: Failed to establish a new "
                                   "connection: [Errno 111] Connection refused")  # fmt: skip
    assert connection_reason(MaxRetryError(cause)) == "Failed to establish a new connection: [Errno 111] Connection refused"
