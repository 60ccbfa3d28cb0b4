"""The public surface is small and deliberate; this test pins it."""

import subprocess
import sys

import llmstep


def test_public_api_is_pinned():
    assert sorted(llmstep.__all__) == sorted([
        "BatchFailed", "ItemFailed", "KubernetesRunnable", "CompileError", "Compiled", "CredentialsError", "CredentialsWarning", "DEFAULT_IMAGE", "Diagnose", "DiagnosisError", "ExecutionError", "LlmstepError",
        "OfflineChatModel", "PayloadError", "Plan", "PlanStep", "RenderError", "RunFailed", "SecretError", "SerializationError",
        "Step", "SubmissionError", "WorkflowError", "__version__", "compile", "SecretKeyRef", "ConfigMapKeyRef",
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


def test_importing_llmstep_is_lazy():
    code = "import sys, llmstep; print(sorted(m for m in sys.modules if m.startswith(('langchain', 'hera'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_unknown_attribute_is_an_attribute_error():
    import pytest

    with pytest.raises(AttributeError):
        llmstep.does_not_exist  # noqa: B018
