"""The question put to the model: a custom prompt with the evidence where it says."""

from __future__ import annotations

from llmstep.diagnose import Evidence, Redactor, prepared


def test_custom_prompt_inserts_the_evidence_where_it_says():
    sent = prepared(Evidence("t", [("s", ["EVIDENCE-LINE"])]), Redactor(), "custom", None, "Check this: {evidence} now")
    assert "Check this: ## s\nEVIDENCE-LINE now" in sent[1]["content"]
