"""llmstep/diagnose/ask.py: one diagnosis, redacted evidence in, the model's answer out as a report.
The model is a real OpenAI-compatible HTTP server on loopback (tests/openai_server.py), standing in
for OpenAI."""

from __future__ import annotations

from openai_server import FakeOpenAI

from llmstep.diagnose.ask import diagnose, prepared
from llmstep.diagnose.evidence import from_text
from llmstep.diagnose.llm import Model
from llmstep.diagnose.redact import Redactor

LOG = "pod web-7f9c failed: connecting to db.shop-prod.svc:5432 with password=hunter2-secret refused"


def test_prepared_is_exactly_what_is_sent_redacted_and_masked():
    redactor = Redactor(anonymize=True)
    messages = prepared(from_text(LOG, "web.log"), redactor, "diagnose", "French", None)
    text = "\n".join(m["content"] for m in messages)
    assert "hunter2-secret" not in text and "db.shop-prod.svc" not in text
    assert "French" in text
    with FakeOpenAI() as server:
        diagnose(
            from_text(LOG, "web.log"),
            Model(api_key="k", provider="compatible", base_url=server.url),
            Redactor(anonymize=True),
            lang="French",
        )
    assert server.requests[0]["body"]["messages"] == messages  # the dry run shows what goes out, to the byte


def test_names_masked_for_the_model_are_unmasked_in_the_report():
    def answer(body):
        sent = body["messages"][-1]["content"]
        masked = next(word for word in sent.split() if word.startswith("host-"))  # the model sees only the mask
        return f"## Cause\nThe database {masked} refused the connection.\n## Fix\nCheck {masked}."

    with FakeOpenAI(reply=answer) as server:
        report = diagnose(
            from_text(LOG, "web.log"),
            Model(api_key="k", provider="compatible", base_url=server.url, model="m-1"),
            Redactor(anonymize=True),
        )
    assert "db.shop-prod.svc" in report.to_markdown() and "host-" not in report.to_markdown()
    assert report.model == "m-1" and report.redactions >= 1 and report.prompt == "diagnose"


def test_control_characters_of_the_evidence_are_sent_and_shown_as_escapes():
    log = "\x1b[31mERROR\x1b[0m image pull failed\x1b]0;retitled\x07"
    text = "\n".join(m["content"] for m in prepared(from_text(log, "web.log"), Redactor(), "diagnose", None, None))
    assert "\x1b" not in text and "\x07" not in text
    assert "\\x1b[31mERROR\\x1b[0m image pull failed" in text
