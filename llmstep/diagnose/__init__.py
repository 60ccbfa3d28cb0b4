"""Failure diagnosis: gather evidence (evidence, collector), strip secrets (redact, anonymize),
ask the model (prompt, llm, ask), deliver a report (report). The settings (``Diagnose``) live in
``settings``, the one diagnosis module the renderers import.

Names resolve lazily, so that importing ``llmstep.diagnose.settings`` (as compiling a chain with
``on_failure=Diagnose(...)`` does) loads none of the others.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Diagnose": "llmstep.diagnose.settings",
    "Evidence": "llmstep.diagnose.evidence",
    "Model": "llmstep.diagnose.llm",
    "Redactor": "llmstep.diagnose.redact",
    "Report": "llmstep.diagnose.report",
    "diagnose": "llmstep.diagnose.ask",
    "prepared": "llmstep.diagnose.ask",
}

__all__ = ["Diagnose", "Evidence", "Model", "Redactor", "Report", "diagnose", "prepared"]

if TYPE_CHECKING:
    from llmstep.diagnose.ask import diagnose, prepared
    from llmstep.diagnose.evidence import Evidence
    from llmstep.diagnose.llm import Model
    from llmstep.diagnose.redact import Redactor
    from llmstep.diagnose.report import Report
    from llmstep.diagnose.settings import Diagnose


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'llmstep.diagnose' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
