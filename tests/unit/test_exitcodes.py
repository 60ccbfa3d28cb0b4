"""Exit codes: the step's and the command's, as the README's table has them; each error carries its own."""

from __future__ import annotations

from llmstep import exitcodes
from llmstep.errors import (
    Cancelled,
    CredentialsError,
    ExecutionError,
    LlmstepError,
    PayloadError,
    RunFailed,
    UsageError,
)


def test_each_exit_code_is_the_one_its_error_carries():
    assert exitcodes.EXIT_OK == 0
    assert ExecutionError.exit_code == exitcodes.EXIT_RUNNABLE_FAILED == 1
    assert PayloadError.exit_code == exitcodes.EXIT_BAD_INPUT == 2
    assert CredentialsError.exit_code == exitcodes.EXIT_MISSING_CREDENTIALS == 3


def test_the_commands_codes_are_the_readmes():
    assert (
        exitcodes.EXIT_INTERNAL,
        exitcodes.EXIT_INTERRUPTED,
        exitcodes.EXIT_BROKEN_PIPE,
        exitcodes.EXIT_TERMINATED,
    ) == (70, 130, 141, 143)
    assert LlmstepError.exit_code == UsageError.exit_code == 2 and RunFailed.exit_code == exitcodes.EXIT_FAILED == 1
    assert Cancelled.exit_code == exitcodes.EXIT_INTERRUPTED and exitcodes.EXIT_NO_SPACE == 1
