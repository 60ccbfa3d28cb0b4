"""The model's requests (OpenAI-compatible and Azure) and retries, against a local server that
records what it receives."""

from __future__ import annotations

import json

import pytest
from diagnose_cases import ANSWER, MANIFEST
from openai_server import FakeOpenAI

import llmstep
from llmstep.diagnose import Model, Redactor, diagnose
from llmstep.diagnose.evidence import from_text


def test_openai_request_shape_and_structured_answer():
    with FakeOpenAI(reply=json.dumps(ANSWER)) as server:
        model = Model(api_key="sk-openai-test", provider="compatible", base_url=server.url, model="gpt-test")
        report = diagnose(from_text(MANIFEST, "bad.yaml"), model, Redactor(), lang="Japanese")
    request = server.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["authorization"] == "Bearer sk-openai-test"
    body = request["body"]
    assert body["model"] == "gpt-test" and body["response_format"] == {"type": "json_object"}
    assert [m["role"] for m in body["messages"]] == ["system", "user"] and "Japanese" in body["messages"][0]["content"]
    assert report.summary == ANSWER["summary"] and report.confidence == 0.9
    markdown = report.to_markdown()
    assert "kubectl set image deployment/web" in markdown and "secret value(s) redacted" in markdown
    assert json.loads(report.to_json())["root_cause"] == ANSWER["root_cause"]


def test_azure_request_shape():
    with FakeOpenAI(reply=json.dumps(ANSWER)) as server:
        endpoint = server.url.removesuffix("/v1")
        model = Model(
            api_key="azure-key-123",
            provider="azure",
            azure_endpoint=endpoint,
            azure_deployment="gpt4o",
            api_version="2024-06-01",
        )
        diagnose(from_text("a log line", "log"), model, Redactor())
    request = server.requests[0]
    assert request["path"] == "/openai/deployments/gpt4o/chat/completions?api-version=2024-06-01"
    assert request["headers"]["api-key"] == "azure-key-123" and "authorization" not in request["headers"]
    assert "model" not in request["body"]


def test_retries_on_429_and_5xx_then_succeeds():
    with FakeOpenAI(reply=json.dumps(ANSWER)) as server:
        server.failures = [429, 503]
        model = Model(api_key="k", provider="compatible", base_url=server.url, backoff=0.01)
        report = diagnose(from_text("x", "x"), model, Redactor())
    assert len(server.requests) == 3 and report.summary == ANSWER["summary"]


def test_refusal_is_not_retried_and_says_what_to_check():
    with FakeOpenAI(reply=json.dumps(ANSWER)) as server:
        server.failures = [401]
        with pytest.raises(llmstep.DiagnosisError, match="HTTP 401.*check the API key"):
            diagnose(from_text("x", "x"), Model(api_key="bad", provider="compatible", base_url=server.url), Redactor())
    assert len(server.requests) == 1


def test_unreachable_model_is_a_clear_error():
    model = Model(api_key="k", provider="compatible", base_url="http://127.0.0.1:9/v1", retries=1, backoff=0.01)
    with pytest.raises(llmstep.DiagnosisError, match="cannot reach the model at http://127.0.0.1:9/v1"):
        diagnose(from_text("x", "x"), model, Redactor())
