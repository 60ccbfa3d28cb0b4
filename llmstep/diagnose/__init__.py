"""Failure diagnosis: gather evidence, strip secrets, ask the model, deliver a report."""

from __future__ import annotations

from dataclasses import dataclass, field

from llmstep.diagnose.evidence import Evidence
from llmstep.diagnose.llm import Model, chat
from llmstep.diagnose.prompt import messages
from llmstep.diagnose.redact import Redactor, compile_patterns
from llmstep.diagnose.report import Report, parse


@dataclass(frozen=True)
class Diagnose:
    """What ``compile(chain, on_failure=Diagnose(...))`` adds: an exit handler that diagnoses the
    workflow when it did not succeed. The key comes from the Secret of the compiled chain."""

    model: str = "gpt-4o-mini"
    lang: str | None = None
    prompt: str = "diagnose"
    provider: str = "openai"
    base_url: str | None = None
    azure_endpoint: str | None = None
    azure_deployment: str | None = None
    api_version: str = "2024-06-01"
    redact: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        compile_patterns(self.redact, "Diagnose(redact=...):")  # a bad pattern fails at compile time, not in the pod

    @property
    def key(self) -> str:
        """The Secret key (and env var) that holds the model's API key."""
        return "AZURE_OPENAI_API_KEY" if self.provider == "azure" else "OPENAI_API_KEY"

    def args(self) -> list[str]:
        """``llmstep diagnose`` options for these settings."""
        out = ["--prompt", self.prompt, "--provider", self.provider, "--model", self.model]
        for flag, value in (("--base-url", self.base_url), ("--azure-endpoint", self.azure_endpoint),
                            ("--azure-deployment", self.azure_deployment), ("--lang", self.lang)):
            if value:
                out += [flag, value]
        if self.provider == "azure":
            out += ["--api-version", self.api_version]
        for pattern in self.redact:
            out += ["--redact", pattern]
        return out


def prepared(evidence: Evidence, redactor: Redactor, kind: str, lang: str | None, custom: str | None) -> list[dict[str, str]]:
    """The exact messages that would be sent: redacted (and anonymized) evidence in the prompt."""
    text = redactor.mask_names(evidence.render(redactor), evidence.names)
    return messages(text, kind, lang, custom)


def diagnose(evidence: Evidence, model: Model, redactor: Redactor, *, kind: str = "diagnose",
             lang: str | None = None, custom: str | None = None) -> Report:
    """Ask the model about redacted evidence; names masked for the model are unmasked in the report."""
    sent = prepared(evidence, redactor, kind, lang, custom)
    answer = redactor.unmask(chat(model, sent))
    return parse(answer, target=evidence.target, prompt=kind, redactions=redactor.count, model=model.model)


__all__ = ["Diagnose", "Evidence", "Model", "Redactor", "Report", "diagnose", "prepared"]
