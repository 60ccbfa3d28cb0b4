"""The public API: a small, deliberate surface (pinned here), lazy to import; and what
Compiled.submit refuses for an engine that cannot do it."""

import subprocess
import sys

import pytest

import llmstep


def test_public_api_is_pinned():
    assert sorted(llmstep.__all__) == sorted(
        [
            "BatchFailed",
            "ItemFailed",
            "KubernetesRunnable",
            "CompileError",
            "Compiled",
            "CredentialsError",
            "CredentialsWarning",
            "DEFAULT_IMAGE",
            "Diagnose",
            "DiagnosisError",
            "ExecutionError",
            "LlmstepError",
            "OfflineChatModel",
            "PayloadError",
            "Plan",
            "PlanStep",
            "RenderError",
            "RunFailed",
            "SecretError",
            "SerializationError",
            "Step",
            "SubmissionError",
            "WorkflowError",
            "__version__",
            "compile",
            "SecretKeyRef",
            "ConfigMapKeyRef",
            "Cancelled",
            "PipelineRunFailed",
            "UsageError",
            "WorkflowFailed",
            "RateLimit",
            "RateLimited",
        ]
    )
    assert set(llmstep.__all__) == set(llmstep._EXPORTS) | {"__version__"}
    for name in llmstep.__all__:
        assert getattr(llmstep, name) is not None


def test_importing_llmstep_is_lazy():
    code = "import sys, llmstep; print(sorted(m for m in sys.modules if m.startswith(('langchain', 'hera'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError):
        llmstep.does_not_exist  # noqa: B018


def test_submit_batch_on_tekton_is_refused_with_the_reason():
    from chains import qa_chain

    from llmstep.errors import LlmstepError

    with pytest.raises(LlmstepError, match="submit_batch runs on Argo only .*one PipelineRun per input"):
        llmstep.compile(qa_chain()).submit_batch([{"question": "a"}], engine="tekton")


def test_tekton_submit_refuses_argo_server_options():
    from chains import qa_chain

    from llmstep.errors import LlmstepError

    with pytest.raises(LlmstepError, match="argo_server is for the Argo Server"):
        llmstep.compile(qa_chain()).submit({"question": "a"}, engine="tekton", argo_server="http://127.0.0.1:1")
    with pytest.raises(LlmstepError, match="engine must be 'argo' or 'tekton'"):
        llmstep.compile(qa_chain()).submit({"question": "a"}, engine="kfp")
