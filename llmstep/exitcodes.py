"""Exit codes: of ``llmstep exec`` (the step contract) and of the ``llmstep`` command (the README's
table). Each error of :mod:`llmstep.errors` carries one as its ``exit_code``, so this module sits
below the errors and imports nothing.
"""

EXIT_OK = 0
EXIT_RUNNABLE_FAILED = 1
EXIT_FAILED = EXIT_RUNNABLE_FAILED
"""The command's 1: a step raised, a run failed, or a cluster or model could not be reached."""
EXIT_NO_SPACE = EXIT_FAILED
"""A full disk fails the run (its record is finished); not an internal error."""
EXIT_BAD_INPUT = 2
EXIT_MISSING_CREDENTIALS = 3
EXIT_INTERNAL = 70
"""An error llmstep did not foresee: a bug (``llmstep exec`` and the CLI alike)."""
EXIT_RATE_LIMITED = 75
"""EX_TEMPFAIL: the model still answered "rate limited" or "overloaded" (429, 503, 529) when the
step's rate-limit retries ran out; a later attempt may succeed, so ``retries=`` retries it."""
RETRIED_EXITS = (EXIT_RUNNABLE_FAILED, EXIT_RATE_LIMITED)
"""The exit codes ``Step(retries=...)`` retries (Argo's ``retryStrategy.expression``); a bad payload
(2) or a missing credential (3) fails the same way every time."""
EXIT_INTERRUPTED = 130
"""128 + SIGINT."""
EXIT_BROKEN_PIPE = 141
"""128 + SIGPIPE: what a shell reports for a writer whose reader left (``llmstep show RUN | head``)."""
EXIT_TERMINATED = 143
"""128 + SIGTERM, what a shell reports for a process that SIGTERM ended."""
