"""Every error llmstep raises on purpose.

```
LlmstepError                  root; ``exit_code`` is what the CLI exits with            exit 2
├── UsageError                an argument, option, setting or named file is wrong       exit 2
│   └── ReferenceError_       a chain reference (file.py:attr) cannot be resolved       exit 2
├── CompileError              a chain cannot become a plan (not serializable, bad Step settings)
│   └── SecretError           a chain holds a secret value that a payload would carry
├── SerializationError        a payload or value cannot be encoded or decoded
│   └── PayloadError          a step's files are unusable (version, digest, allowlist)  exit 2
├── RenderError               a plan cannot become a valid engine document
├── ExecutionError            a step's Runnable raised                                  exit 1
│   └── RateLimited           ... still rate limited when its model retries ran out     exit 75
├── CredentialsError          a secret the step needs is missing                        exit 3
├── WorkflowError             a workflow document is outside what llmstep can run       exit 2
├── RunFailed                 a run finished without succeeding (``failures``)          exit 1
│   ├── WorkflowFailed        ... an Argo Workflow on a cluster   (also a SubmissionError)
│   └── PipelineRunFailed     ... a Tekton PipelineRun            (also a SubmissionError)
├── DiagnosisError            evidence could not be read or the model could not answer  exit 1
├── SubmissionError           the cluster refused a workflow or could not be reached    exit 1
├── ItemFailed                one input of a batch produced no result                   exit 1
├── BatchFailed               some inputs of a batch failed (holds every result)        exit 1
└── Cancelled                 the caller stopped waiting (a cancelled async call)       exit 130
```

A run that fails is one event wherever it ran: ``except RunFailed`` catches a local run, a
Workflow and a PipelineRun alike; the cluster ones stay ``SubmissionError`` too, as they were.

Foreign errors are translated where they cross into llmstep (``raise ... from exc``), once: the
Kubernetes and Argo Server clients' in :func:`llmstep.cluster.transports.api_error` and
:func:`connection_reason`, LangChain's and pickle's in :mod:`llmstep.payloads`, the model's HTTP
errors in :mod:`llmstep.diagnose.llm`, the OS's file errors in :mod:`llmstep.files`.

``CredentialsWarning`` (a ``UserWarning``) is the one warning: a key given in code is not sent.
"""

from __future__ import annotations

import re
from typing import Any

from llmstep.exitcodes import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_MISSING_CREDENTIALS,
    EXIT_RATE_LIMITED,
    EXIT_RUNNABLE_FAILED,
)

__all__ = [
    "BatchFailed",
    "Cancelled",
    "ItemFailed",
    "CompileError",
    "CredentialsError",
    "CredentialsWarning",
    "DiagnosisError",
    "ExecutionError",
    "LlmstepError",
    "PayloadError",
    "RateLimited",
    "PipelineRunFailed",
    "ReferenceError_",
    "RenderError",
    "RunFailed",
    "SecretError",
    "SerializationError",
    "SubmissionError",
    "UsageError",
    "WorkflowError",
    "WorkflowFailed",
]


class LlmstepError(Exception):
    """Root of every error llmstep raises on purpose."""

    exit_code = EXIT_BAD_INPUT


class UsageError(LlmstepError):
    """An argument, an option, a setting (an ``LLMSTEP_*`` environment variable, a run id) or a file
    the user names is wrong; the message names it."""


class ReferenceError_(UsageError):  # the underscore: not the builtin ReferenceError
    """A chain reference (``path/to/file.py:attr``, ``package.module:attr``) cannot be resolved."""


class CompileError(LlmstepError):
    """A chain cannot be turned into a plan."""


class SecretError(CompileError):
    """A chain holds a secret value (a key in headers, a token in a closure, the value of a
    secret-named environment variable) that its payload would carry in plain text."""


class CredentialsWarning(UserWarning):
    """A credential given in code (``ChatOpenAI(api_key=...)``) is not sent with the chain: the
    step reads it by id from the Kubernetes Secret (locally, from the environment)."""


class SerializationError(LlmstepError):
    """A Runnable or value cannot be encoded or decoded."""


class PayloadError(SerializationError):
    """A step's payload or input is unusable (bad JSON, version, digest, class, keys)."""


class RenderError(LlmstepError):
    """A plan cannot be rendered to a valid engine document."""


class ExecutionError(LlmstepError):
    """A step's Runnable raised while running."""

    exit_code = EXIT_RUNNABLE_FAILED


class RateLimited(ExecutionError):
    """A step's model still answered "rate limited" or "overloaded" (429, 503, 529) when the step's
    rate-limit retries ran out (``llmstep.RateLimit``): a later attempt may succeed."""

    exit_code = EXIT_RATE_LIMITED  # EX_TEMPFAIL


class CredentialsError(LlmstepError):
    """A secret that the step's Runnable needs is not in its environment."""

    exit_code = EXIT_MISSING_CREDENTIALS


class WorkflowError(LlmstepError):
    """A workflow document uses something the local runner cannot run faithfully."""


class RunFailed(LlmstepError):
    """A workflow run finished without succeeding."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, run_id: str = "", failures: list[dict] | None = None):
        super().__init__(message)
        self.run_id = run_id
        self.failures = failures or []


class DiagnosisError(LlmstepError):
    """Evidence could not be gathered, or the model could not be reached or answered badly."""

    exit_code = EXIT_FAILED


class SubmissionError(LlmstepError):
    """The cluster refused a workflow (forbidden, CRD missing, rejected) or could not be reached."""

    exit_code = EXIT_FAILED


class WorkflowFailed(RunFailed, SubmissionError):
    """A submitted Argo Workflow finished without succeeding; ``failures`` names its failed steps."""

    exit_code = EXIT_FAILED


class PipelineRunFailed(RunFailed, SubmissionError):
    """A Tekton PipelineRun finished without succeeding; ``failures`` names its failed tasks."""

    exit_code = EXIT_FAILED


class ItemFailed(LlmstepError):
    """One input of a batch did not produce a result; ``index`` is its place in the inputs."""

    exit_code = EXIT_FAILED

    def __init__(self, index: int, message: str, steps: list[str] | None = None) -> None:
        super().__init__(f"input {index}: {message}")
        self.index = index
        self.steps = steps or []


class BatchFailed(LlmstepError):
    """Some inputs of a batch failed. ``results`` holds every result in input order, with an
    ``ItemFailed`` in the place of each failed input."""

    exit_code = EXIT_FAILED

    def __init__(self, results: list[Any], where: str) -> None:
        failed = [r for r in results if isinstance(r, ItemFailed)]
        lines = [f"{len(failed)} of {len(results)} inputs failed in {where}:"]
        lines += [f"  {r}" for r in failed[:10]] + ([f"  ... and {len(failed) - 10} more"] if len(failed) > 10 else [])
        lines.append("  results(return_exceptions=True) returns the others, with an ItemFailed in each failed place")
        super().__init__("\n".join(lines))
        self.results = results


class Cancelled(LlmstepError):
    """The caller stopped waiting (an async call was cancelled); what it started was stopped."""

    exit_code = EXIT_INTERRUPTED


def connection_reason(exc: BaseException) -> str:
    """Why a connection failed, without the transport's wrappers and object names: urllib3's
    ``MaxRetryError`` (the kubernetes client) or requests' ``ConnectionError`` (the Argo Server)
    becomes "Failed to establish a new connection: [Errno 111] Connection refused"."""
    reason: BaseException = exc
    for _ in range(5):  # requests' ConnectionError wraps MaxRetryError, which wraps the cause
        inner = getattr(reason, "reason", None) or (reason.args[0] if reason.args else None)
        if not isinstance(inner, BaseException) or inner is reason:
            break
        reason = inner
    return re.sub(r"^(?:<[^>]*>|\w+\([^)]*\)|None): ", "", str(reason))


def storage_full(exc: BaseException) -> str | None:
    """What a write that failed for lack of room says (no space left, a quota reached, a file past
    the process's size limit), naming the file; None for any other error. A full disk is the
    machine's state, not a bug: every entry point reports it so (exit 1), never as exit 70."""
    import errno

    if not isinstance(exc, OSError):
        return None
    reasons = {
        errno.ENOSPC: ("no space left on the device", "free some space"),
        errno.EDQUOT: ("the disk quota is exhausted", "free some space or raise the quota"),
        errno.EFBIG: ("the file grew past the size limit of the process", "raise the limit (ulimit -f)"),
    }
    if exc.errno not in reasons:
        return None
    reason, advice = reasons[exc.errno]
    return f"{reason}{f' writing {exc.filename}' if exc.filename else ''}; {advice}"
