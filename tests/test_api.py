"""The public surface is small and deliberate; this test pins it."""

import subprocess
import sys

import llmstep


def test_public_api_is_pinned():
    assert sorted(llmstep.__all__) == sorted([
        "BatchFailed", "ItemFailed", "KubernetesRunnable", "CompileError", "Compiled", "CredentialsError", "CredentialsWarning", "DEFAULT_IMAGE", "Diagnose", "DiagnosisError", "ExecutionError", "LlmstepError",
        "OfflineChatModel", "PayloadError", "Plan", "PlanStep", "RenderError", "RunFailed", "SecretError", "SerializationError",
        "Step", "SubmissionError", "WorkflowError", "__version__", "compile", "SecretKeyRef", "ConfigMapKeyRef",
        "Cancelled", "PipelineRunFailed", "UsageError", "WorkflowFailed",
    ])
    assert set(llmstep.__all__) == set(llmstep._EXPORTS) | {"__version__"}
    for name in llmstep.__all__:
        assert getattr(llmstep, name) is not None


def test_every_error_has_one_root():
    for name in llmstep.__all__:
        obj = getattr(llmstep, name)
        if isinstance(obj, type) and issubclass(obj, Exception) and not issubclass(obj, Warning):
            assert issubclass(obj, llmstep.LlmstepError)
    assert issubclass(llmstep.CompileError, llmstep.LlmstepError)


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


def test_importing_llmstep_is_lazy():
    code = "import sys, llmstep; print(sorted(m for m in sys.modules if m.startswith(('langchain', 'hera'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_unknown_attribute_is_an_attribute_error():
    import pytest

    with pytest.raises(AttributeError):
        llmstep.does_not_exist  # noqa: B018
