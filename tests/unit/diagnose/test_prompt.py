"""The question put to the model: the evidence in the prompt type's message, a custom prompt with
the evidence where it says, and the answer's language."""

from __future__ import annotations

import pytest

import llmstep
from llmstep.diagnose import Evidence, Redactor, prepared
from llmstep.diagnose.prompt import TYPES, messages


def test_custom_prompt_inserts_the_evidence_where_it_says():
    sent = prepared(Evidence("t", [("s", ["EVIDENCE-LINE"])]), Redactor(), "custom", None, "Check this: {evidence} now")
    assert "Check this: ## s\nEVIDENCE-LINE now" in sent[1]["content"]
    appended = messages("EVIDENCE-LINE", "custom", custom="Is this fine?")
    assert appended[1]["content"] == "Is this fine?\n\nEvidence:\nEVIDENCE-LINE"  # no placeholder: the evidence follows


@pytest.mark.parametrize("kind", [t for t in TYPES if t != "custom"])
def test_each_prompt_type_asks_for_json_and_carries_the_evidence(kind):
    system, user = messages("pod p: CrashLoopBackOff", kind, lang="Japanese")
    assert system["role"] == "system" and user["role"] == "user"
    assert (
        "Answer with one JSON object" in system["content"]
        and "Write every text value in Japanese." in system["content"]
    )
    assert user["content"].endswith("Evidence (secrets removed):\npod p: CrashLoopBackOff")
    assert ('"score"' in system["content"]) == (kind == "quality-gate")  # only the gate is scored


def test_an_unknown_prompt_type_or_a_custom_one_without_text_is_refused():
    with pytest.raises(llmstep.DiagnosisError, match="prompt type 'summary' is not one of diagnose, audit"):
        messages("x", "summary")
    with pytest.raises(llmstep.LlmstepError, match="needs the prompt text") as caught:
        messages("x", "custom")
    assert caught.value.exit_code == 2  # a usage error
