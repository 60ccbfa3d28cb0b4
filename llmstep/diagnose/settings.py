"""The diagnosis settings: ``Diagnose(...)`` and the one home of its defaults.

Everything that asks a model about a failure takes its defaults from here: ``llmstep diagnose``'s
options, the model client (:mod:`llmstep.diagnose.llm`), the Argo exit handler and the
``llmstep-diagnose`` WorkflowTemplate, and the Tekton ``llmstep-diagnose`` Task and ``finally``
task. This module is data: the renderers import it, and it imports nothing else of llmstep's
diagnosis, so compiling a chain never loads the evidence or model code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from llmstep.errors import UsageError

MODEL = "gpt-4o-mini"
PROVIDER = "openai"
PROVIDERS = ("openai", "azure", "compatible")
PROMPT = "diagnose"
PROMPTS = ("diagnose", "audit", "quality-gate", "custom")
API_VERSION = "2024-06-01"
"""The Azure OpenAI API version."""
OPENAI_URL = "https://api.openai.com/v1"
EVIDENCE_BYTES = 100_000
"""How much evidence a diagnosis sends at most (about 25,000 tokens); the rest is cut, and says so."""
EVIDENCE_BYTES_FLAG = "--max-evidence-bytes"
MIN_EVIDENCE_BYTES = 2000
"""The least budget that holds a section's title, a few lines and the note of what was cut."""
OPENAI_KEY = "OPENAI_API_KEY"
AZURE_KEY = "AZURE_OPENAI_API_KEY"
OPENAI_ENDPOINT_ENV = ("OPENAI_BASE_URL", "OPENAI_API_BASE")
"""Where this machine says an OpenAI-compatible model is, in the order LangChain's clients read them."""
AZURE_ENDPOINT_ENV = "AZURE_OPENAI_ENDPOINT"
API_VERSION_ENV = "OPENAI_API_VERSION"
ENDPOINT_ENV = (*OPENAI_ENDPOINT_ENV, AZURE_ENDPOINT_ENV, API_VERSION_ENV)
"""The variables that say where the model is: a local step gets this machine's, ``llmstep diagnose``
honours them, and a document from a file may not set them (it would send the key elsewhere)."""


def configured_endpoint(provider: str, environ: Mapping[str, str]) -> str | None:
    """The endpoint ``environ`` configures for ``provider`` (``OPENAI_BASE_URL``, ``OPENAI_API_BASE``,
    or ``AZURE_OPENAI_ENDPOINT`` for azure), or None: then the provider's default."""
    names = (AZURE_ENDPOINT_ENV,) if provider == "azure" else OPENAI_ENDPOINT_ENV
    return next((environ[name] for name in names if environ.get(name)), None)


def endpoints(environ: Mapping[str, str]) -> tuple[str, ...]:
    """Where the user's model keys may go, by ``environ``: the endpoints it configures, and OpenAI's
    own when it configures none for OpenAI; each without a trailing ``/``."""
    found = [configured_endpoint("openai", environ) or OPENAI_URL, configured_endpoint("azure", environ)]
    return tuple(url.rstrip("/") for url in found if url)


def key_for(provider: str) -> str:
    """The Secret key (and env var) that holds a provider's API key."""
    return AZURE_KEY if provider == "azure" else OPENAI_KEY


_EMPTY_PROBE = "\n\t aZ09_-.:/=@\n"
"""Text where a pattern that can match the empty string does so (at its start, a boundary or a line)."""


def compile_patterns(patterns: Iterable[str], where: str = "--redact") -> list[re.Pattern[str]]:
    """The caller's own redaction patterns; a usage error (exit 2) naming the bad one."""
    compiled = []
    for pattern in patterns:
        try:
            regex = re.compile(pattern)
        except (re.error, TypeError) as exc:
            raise UsageError(f"{where} {pattern!r} is not a valid regular expression: {exc}") from None
        # A pattern that can match nothing ('', 'x*', 'a|', '\b') would put a mask between characters.
        if any(not m.group(0) for m in regex.finditer(_EMPTY_PROBE)):
            raise UsageError(
                f"{where} {pattern!r} matches the empty string, so it would mask between the "
                "characters of the evidence; give a pattern that matches only the secret "
                "(say 'corp-token-[0-9]+')"
            )
        compiled.append(regex)
    return compiled


@dataclass(frozen=True)
class Diagnose:
    """What ``compile(chain, on_failure=Diagnose(...))`` adds: an exit handler that diagnoses the
    workflow when it did not succeed. The key comes from the Secret of the compiled chain."""

    model: str = MODEL
    lang: str | None = None
    prompt: str = PROMPT
    provider: str = PROVIDER
    base_url: str | None = None
    azure_endpoint: str | None = None
    azure_deployment: str | None = None
    api_version: str = API_VERSION
    redact: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        compile_patterns(self.redact, "Diagnose(redact=...):")  # a bad pattern fails at compile time, not in the pod

    @property
    def key(self) -> str:
        """The Secret key (and env var) that holds the model's API key."""
        return key_for(self.provider)

    def options(self) -> dict[str, str]:
        """The settings as ``llmstep diagnose`` options without their dashes (``base-url``), the
        unset ones left out: the Argo exit handler's arguments and the Tekton task's params."""
        out = {"prompt": self.prompt, "provider": self.provider, "model": self.model}
        for name, value in (
            ("base-url", self.base_url),
            ("azure-endpoint", self.azure_endpoint),
            ("azure-deployment", self.azure_deployment),
            ("lang", self.lang),
        ):
            if value:
                out[name] = value
        if self.provider == "azure":
            out["api-version"] = self.api_version
        return out

    def args(self) -> list[str]:
        """``llmstep diagnose`` options for these settings (``--redact`` once per pattern)."""
        out = [part for name, value in self.options().items() for part in (f"--{name}", value)]
        for pattern in self.redact:
            out += ["--redact", pattern]
        return out
