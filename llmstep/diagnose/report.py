"""The answer: parsed from the model's JSON, printed as Markdown or JSON, summarized for a
Tekton result or an Argo output parameter, and optionally posted to a Slack-compatible webhook."""

from __future__ import annotations

import json
import math
import re
import urllib.request
from dataclasses import asdict, dataclass, field
from typing import Any, TypeGuard

from llmstep.errors import DiagnosisError

SUMMARY_LIMIT = 3500
"""A Tekton result holds 4 KiB per container by default; the short summary stays under it."""

# What a terminal acts on instead of showing: C0 controls but newline and tab (ESC starts the
# CSI and OSC sequences that recolour, retitle, rewrite the clipboard or hide lines; CR and BS
# overwrite what was printed), DEL, C1 controls (a one-character CSI or OSC), and the bidi
# overrides and isolates that reorder what is shown (Trojan Source).
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def inert(text: str) -> str:
    r"""``text`` safe to print: each control character shown as its escape (``\x1b``), the rest kept."""
    text = text.replace("\r\n", "\n")
    return _CONTROLS.sub(
        lambda m: f"\\x{ord(m.group(0)):02x}" if ord(m.group(0)) < 0x100 else f"\\u{ord(m.group(0)):04x}", text
    )


def _inert_tree(value: Any) -> Any:
    if isinstance(value, str):
        return inert(value)
    if isinstance(value, list):
        return [_inert_tree(v) for v in value]
    if isinstance(value, dict):
        return {_inert_tree(k): _inert_tree(v) for k, v in value.items()}
    return value


@dataclass
class Report:
    """One diagnosis: what the model found, the evidence it cites, the steps to fix it, how sure it is."""

    target: str
    prompt: str
    summary: str
    root_cause: str
    evidence: list[str] = field(default_factory=list)
    fix_steps: list[dict[str, Any]] = field(default_factory=list)
    confidence: float | None = None
    score: int | None = None
    redactions: int = 0
    model: str = ""
    text: str | None = None
    """The model's own words when it answered in plain text instead of the JSON asked for."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, ensure_ascii=False)

    def to_markdown(self) -> str:
        lines = [
            f"# llmstep {self.prompt}: {self.target}",
            "",
            f"**Summary:** {self.summary}",
            "",
            f"**Root cause:** {self.root_cause}",
        ]
        if self.score is not None:
            lines += ["", f"**Score:** {self.score}/100"]
        if self.text is not None:
            lines = [
                f"# llmstep {self.prompt}: {self.target}",
                "",
                self.text.strip(),
                "",
                "_The model answered in plain text, not in the JSON asked for; its answer is above as it was._",
            ]
        if self.evidence:
            lines += ["", "## Evidence", *[f"- `{e}`" for e in self.evidence]]
        if self.fix_steps:
            lines += ["", "## Fix"]
            for i, step in enumerate(self.fix_steps, 1):
                lines.append(f"{i}. {step.get('description', '')}")
                if step.get("command"):
                    lines += ["", "   ```sh", f"   {step['command']}", "   ```"]
        footer = (
            f"confidence {self.confidence:.0%}" if isinstance(self.confidence, (int, float)) else "confidence unknown"
        )
        lines += ["", f"_{footer}; {self.redactions} secret value(s) redacted before asking {self.model}._"]
        return "\n".join(lines) + "\n"

    def short(self) -> str:
        text = f"{self.summary} Root cause: {self.root_cause}"
        if self.score is not None:
            text = f"score {self.score}/100. {text}"
        return text[:SUMMARY_LIMIT]


def parse(answer: str, *, target: str, prompt: str, redactions: int, model: str) -> Report:
    """Read the model's JSON answer; DiagnosisError that quotes it when it is not what was asked."""
    text = answer.strip()
    fenced = re.match(r"^```(?:json)?\s*(.*?)\s*```$", text, re.S)
    if fenced:
        text = fenced.group(1)
    try:
        data = json.loads(text)
    except ValueError:
        answer = inert(answer)  # the model's words are printed, posted and written: never a terminal's commands
        if prompt == "quality-gate" or not text:
            raise DiagnosisError(f"the model's answer is not JSON: {answer[:300]!r}") from None
        return _plain(answer, target=target, prompt=prompt, redactions=redactions, model=model)
    data = _inert_tree(data)  # escapes in JSON strings decode to control characters: neutralised after parsing
    if not isinstance(data, dict) or not isinstance(data.get("summary"), str) or "root_cause" not in data:
        raise DiagnosisError(f"the model's answer lacks summary/root_cause: {answer[:300]!r}")
    steps = data.get("fix_steps") or []
    if not isinstance(steps, list):
        raise DiagnosisError("the model's fix_steps is not a list")
    steps = [s if isinstance(s, dict) else {"description": str(s), "command": None} for s in steps]
    score = data.get("score")
    if prompt == "quality-gate" and not (_number(score) and 0 <= score <= 100):
        raise DiagnosisError(f"the quality-gate answer needs a score from 0 to 100, got {score!r}")
    confidence = data.get("confidence")
    return Report(
        target=target,
        prompt=prompt,
        summary=data["summary"],
        root_cause=str(data["root_cause"]),
        evidence=[str(e) for e in data.get("evidence") or []],
        fix_steps=steps,
        confidence=float(confidence) if _number(confidence) and 0 <= confidence <= 1 else None,
        score=int(score) if _number(score) else None,
        redactions=redactions,
        model=model,
    )


def _plain(answer: str, *, target: str, prompt: str, redactions: int, model: str) -> Report:
    """A report of a plain-text answer: kept whole as its text; its first line is the summary."""
    first = next((line.strip(" #*") for line in answer.strip().splitlines() if line.strip(" #*")), "")
    summary = first if len(first) <= 200 else first[:199] + "…"
    return Report(
        target=target,
        prompt=prompt,
        summary=summary,
        root_cause=answer.strip(),
        redactions=redactions,
        model=model,
        text=answer.strip(),
    )


def _number(value: Any) -> TypeGuard[int | float]:
    """A finite number: the model's JSON may say NaN (Python reads it), and --format json must not."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def post_webhook(url: str, report: Report, timeout: float = 10.0) -> None:
    """Post the report as Slack-compatible JSON (``{"text": ...}``)."""
    body = json.dumps({"text": report.to_markdown()}).encode()
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout):  # the configured webhook
            pass
    except OSError as exc:
        raise DiagnosisError(f"posting the report to the webhook failed: {exc}") from exc
