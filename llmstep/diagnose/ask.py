"""One diagnosis: redacted evidence in the prompt, the model's answer, the report."""

from __future__ import annotations

from llmstep.diagnose.evidence import Evidence
from llmstep.diagnose.llm import Model, chat
from llmstep.diagnose.prompt import messages
from llmstep.diagnose.redact import Redactor
from llmstep.diagnose.report import Report, inert, parse
from llmstep.diagnose.settings import EVIDENCE_BYTES


def prepared(
    evidence: Evidence,
    redactor: Redactor,
    kind: str,
    lang: str | None,
    custom: str | None,
    budget: int = EVIDENCE_BYTES,
) -> list[dict[str, str]]:
    """The exact messages that would be sent: redacted (and anonymized) evidence in the prompt, its
    control characters (a log's colours, a hostile log's terminal commands) shown as escapes, so
    that ``--dry-run`` prints it as it is sent without the terminal acting on it. The evidence
    is cut to ``budget`` bytes, and says what was cut."""
    text = inert(redactor.mask_names(evidence.render(redactor, budget), evidence.names))
    return messages(text, kind, lang, custom)


def diagnose(
    evidence: Evidence,
    model: Model,
    redactor: Redactor,
    *,
    kind: str = "diagnose",
    lang: str | None = None,
    custom: str | None = None,
    budget: int = EVIDENCE_BYTES,
) -> Report:
    """Ask the model about redacted evidence; names masked for the model are unmasked in the report."""
    sent = prepared(evidence, redactor, kind, lang, custom, budget)
    answer = redactor.unmask(chat(model, sent))
    return parse(answer, target=evidence.target, prompt=kind, redactions=redactor.count, model=model.model)
