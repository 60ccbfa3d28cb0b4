"""Payloads: versioned, loaded with the allowlist recorded at compile time, a secret only where a
model's credentials go."""

from __future__ import annotations

import json

import pytest
from chains import qa_prompt

from llmstep import payloads, serde
from llmstep.errors import PayloadError


def test_unknown_payload_versions_and_unreadable_payloads_are_refused():
    with pytest.raises(PayloadError, match="version"):
        payloads.read_payload(json.dumps({"llmstep": 1}))
    with pytest.raises(PayloadError, match="not valid JSON"):
        payloads.read_payload("{")


def test_langchain_payload_records_allowlist_and_secret_ids():
    from langchain_openai import ChatOpenAI

    dumped, reason = payloads.dump_langchain(ChatOpenAI(model="m", api_key="sk-abc-123456"))
    fields = payloads.langchain_fields(dumped)
    assert reason == "" and fields["format"] == "lc"
    assert fields["secrets"] == ["OPENAI_API_KEY"]
    assert ["langchain", "chat_models", "openai", "ChatOpenAI"] in fields["allowed"]
    assert "sk-abc-123456" not in json.dumps(fields)


def test_payload_loads_only_recorded_classes():
    dumped, _ = payloads.dump_langchain(qa_prompt())
    payload = {"llmstep": serde.FORMAT_VERSION, "name": "p", "inputs": ["input"], **payloads.langchain_fields(dumped)}
    assert payloads.load_runnable(payload, {}).invoke({"question": "x"}).to_messages()[-1].content == "x"
    payload["allowed"] = [a for a in payload["allowed"] if a[-1] != "PromptTemplate"]
    with pytest.raises(PayloadError, match="not in the payload's allowlist"):
        payloads.load_runnable(payload, {})


def test_a_secret_belongs_in_a_credential_field_or_a_header_map_only():
    """A model's key (``api_key``) and a header it sends (``default_headers``, filled by
    ``Step(secrets=...)``) go to its endpoint; a secret anywhere else (a prompt's partial
    variables, a message) would reach the output and the record."""
    secret = {"lc": 1, "type": "secret", "id": ["ACME_API_KEY"]}

    def model(**kwargs):
        return {
            "lc": 1,
            "type": "constructor",
            "id": ["langchain_openai", "chat_models", "ChatOpenAI"],
            "kwargs": kwargs,
        }

    assert payloads.misplaced_secret(model(openai_api_key=secret)) is None
    assert payloads.misplaced_secret(model(default_headers={"X-Api-Key": secret})) is None
    prompt = {
        "lc": 1,
        "type": "constructor",
        "id": ["langchain_core", "prompts", "PromptTemplate"],
        "kwargs": {"template": "{x}", "partial_variables": {"x": secret}},
    }
    assert payloads.misplaced_secret(prompt) == "ACME_API_KEY"
    assert (
        payloads.misplaced_secret(model(default_headers={"X-Api-Key": prompt})) == "ACME_API_KEY"
    )  # a Runnable in a header map is no header
    assert payloads.misplaced_secret(model(model_kwargs={"extra": secret})) == "ACME_API_KEY"
