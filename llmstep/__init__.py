"""llmstep: run LangChain chains on Kubernetes workflow engines, one container per Runnable.

```python
import llmstep
compiled = llmstep.compile(prompt | llm | parser)
print(compiled.to_yaml())                      # argo submit -p input='{"question": "..."}'
compiled.run_local({"question": "..."})        # the same workflow, on this machine
compiled.submit({"question": "..."}).wait()    # on a cluster
```

Names resolve lazily so that ``llmstep exec`` (every step's entrypoint) starts without importing
LangChain's runnables, Hera or the renderers.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "compile": "llmstep.api",
    "Compiled": "llmstep.api",
    "DEFAULT_IMAGE": "llmstep.compiler.walk",
    "Step": "llmstep.compiler.step",
    "Plan": "llmstep.plan",
    "SecretKeyRef": "llmstep.plan",
    "ConfigMapKeyRef": "llmstep.plan",
    "PlanStep": "llmstep.plan",
    "RateLimit": "llmstep.plan",
    "RateLimited": "llmstep.errors",
    "OfflineChatModel": "llmstep.offline",
    "Diagnose": "llmstep.diagnose.settings",
    "DiagnosisError": "llmstep.errors",
    "LlmstepError": "llmstep.errors",
    "CompileError": "llmstep.errors",
    "SerializationError": "llmstep.errors",
    "PayloadError": "llmstep.errors",
    "RenderError": "llmstep.errors",
    "ExecutionError": "llmstep.errors",
    "CredentialsError": "llmstep.errors",
    "CredentialsWarning": "llmstep.errors",
    "SecretError": "llmstep.errors",
    "WorkflowError": "llmstep.errors",
    "UsageError": "llmstep.errors",
    "WorkflowFailed": "llmstep.errors",
    "PipelineRunFailed": "llmstep.errors",
    "Cancelled": "llmstep.errors",
    "RunFailed": "llmstep.errors",
    "SubmissionError": "llmstep.errors",
    "ItemFailed": "llmstep.errors",
    "BatchFailed": "llmstep.errors",
    "KubernetesRunnable": "llmstep.api",
}

__all__ = [
    "DEFAULT_IMAGE",
    "BatchFailed",
    "Cancelled",
    "ItemFailed",
    "KubernetesRunnable",
    "CompileError",
    "ConfigMapKeyRef",
    "Diagnose",
    "DiagnosisError",
    "Compiled",
    "CredentialsError",
    "CredentialsWarning",
    "ExecutionError",
    "LlmstepError",
    "OfflineChatModel",
    "PayloadError",
    "PipelineRunFailed",
    "Plan",
    "PlanStep",
    "RateLimit",
    "RateLimited",
    "RenderError",
    "RunFailed",
    "SecretError",
    "SecretKeyRef",
    "SerializationError",
    "Step",
    "SubmissionError",
    "UsageError",
    "WorkflowError",
    "WorkflowFailed",
    "__version__",
    "compile",
]

if TYPE_CHECKING:
    from llmstep.api import Compiled, KubernetesRunnable, compile
    from llmstep.compiler.step import Step
    from llmstep.compiler.walk import DEFAULT_IMAGE
    from llmstep.diagnose.settings import Diagnose
    from llmstep.errors import (
        BatchFailed,
        Cancelled,
        CompileError,
        CredentialsError,
        CredentialsWarning,
        DiagnosisError,
        ExecutionError,
        ItemFailed,
        LlmstepError,
        PayloadError,
        PipelineRunFailed,
        RateLimited,
        RenderError,
        RunFailed,
        SecretError,
        SerializationError,
        SubmissionError,
        UsageError,
        WorkflowError,
        WorkflowFailed,
    )
    from llmstep.offline import OfflineChatModel
    from llmstep.plan import ConfigMapKeyRef, Plan, PlanStep, RateLimit, SecretKeyRef


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'llmstep' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
