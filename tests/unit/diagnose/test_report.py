"""The model's answer becomes a report: JSON with the expected fields, a plain-text answer kept as
the report, a quality gate's score."""

from __future__ import annotations

import json

import pytest
from diagnose_cases import ANSWER

import llmstep
from llmstep.diagnose.report import parse


@pytest.mark.parametrize(
    ("answer", "fragment"),
    [
        (json.dumps({"summary": "x"}), "lacks summary/root_cause"),
        (json.dumps({**ANSWER, "fix_steps": "do things"}), "fix_steps is not a list"),
    ],
)
def test_malformed_answer_gives_a_clear_error(answer, fragment):
    with pytest.raises(llmstep.DiagnosisError, match=fragment):
        parse(answer, target="t", prompt="diagnose", redactions=0, model="m")


def test_a_plain_text_answer_is_the_report_text_not_an_error():
    answer = "## The pod is broken\n\nIts image tag does not exist; push it or fix the tag."
    report = parse(answer, target="pod/p", prompt="diagnose", redactions=2, model="m")
    assert report.text == answer and report.summary == "The pod is broken"
    markdown = report.to_markdown()
    assert "Its image tag does not exist; push it or fix the tag." in markdown and "plain text" in markdown
    assert json.loads(report.to_json())["text"] == answer
    with pytest.raises(llmstep.DiagnosisError, match="not JSON"):  # a gate needs its score
        parse(answer, target="t", prompt="quality-gate", redactions=0, model="m")


def test_quality_gate_needs_a_score():
    with pytest.raises(llmstep.DiagnosisError, match="score"):
        parse(json.dumps(ANSWER), target="t", prompt="quality-gate", redactions=0, model="m")
    report = parse(json.dumps({**ANSWER, "score": 72}), target="t", prompt="quality-gate", redactions=0, model="m")
    assert report.score == 72 and report.short().startswith("score 72/100")


ESC = "\x1b"
HOSTILE = [
    f"{ESC}]52;c;cm0gLXJmIH4={ESC}\\",
    f"{ESC}[2J{ESC}[H",
    f"{ESC}]0;owned\x07",
    "\x9b31m",
    "ok\rfake line",
    "back\x08\x08",
    "\u202egnp.exe",
    "\x00nul",
    "\x7fdel",
]


@pytest.mark.parametrize("control", HOSTILE, ids=range(len(HOSTILE)))
def test_terminal_control_sequences_in_the_answer_are_shown_not_acted_on(control):
    answer = json.dumps(
        {
            **ANSWER,
            "summary": f"the pod {control} failed",
            "evidence": [control],
            "fix_steps": [{"description": control, "command": f"kubectl get pod {control}"}],
        }
    )
    report = parse(answer, target="t", prompt="diagnose", redactions=0, model="m")
    plain = parse(f"## Cause {control}\nbad", target="t", prompt="diagnose", redactions=0, model="m")
    for shown in (report.to_markdown(), report.to_json(), report.short(), plain.to_markdown(), plain.to_json()):
        assert not any(ch in shown for ch in "\x1b\x9b\x07\r\x08\u202e\x00\x7f"), repr(shown)
    assert "\\x" in report.to_markdown() or "\\u202e" in report.to_markdown()  # visible as an escape, not dropped


def test_newlines_and_tabs_of_the_answer_stay():
    report = parse(
        json.dumps({**ANSWER, "root_cause": "line one\n\tline two\r\nline three"}),
        target="t",
        prompt="diagnose",
        redactions=0,
        model="m",
    )
    assert report.root_cause == "line one\n\tline two\nline three"
