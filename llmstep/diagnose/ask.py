"""One diagnosis: redacted evidence in the prompt, the model's answer, the report."""

from __future__ import annotations

from llmstep.diagnose.evidence import Evidence
from llmstep.diagnose.llm import Model, chat
from llmstep.diagnose.prompt import messages
from llmstep.diagnose.redact import Redactor
from llmstep.diagnose.report import Report, inert, parse


def prepared(evidence: Evidence, redactor: Redactor, kind: str, lang: str | None, custom: str | None) -> list[dict[str, str]]:
    """The exact messages that would be sent: redacted (and anonymized) evidence in the prompt, its
    control characters (a log's colours, a hostile log's terminal commands) shown as escapes, so
    that ``--dry-run`` prints it as it is sent without the terminal acting on it."""
    text = inert(redactor.mask_names(evidence.render(redactor), evidence.names))
    return messages(text, kind, lang, custom)


def diagnose(evidence: Evidence, model: Model, redactor: Redactor, *, kind: str = "diagnose",
             lang: str | None = None, custom: str | None = None) -> Report:
    """Ask the model about redacted evidence; names masked for the model are unmasked in the report."""
    sent = prepared(evidence, redactor, kind, lang, custom)
    answer = redactor.unmask(chat(model, sent))
    return parse(answer, target=evidence.target, prompt=kind, redactions=redactor.count, model=model.model)
