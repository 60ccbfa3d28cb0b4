"""llmstep/diagnose/detectors.py: secrets recognised by their shape, with no name beside them; the
facts of a failure (digests, UUIDs, names, paths, timestamps) are not taken for secrets."""

from __future__ import annotations

import pytest
import secret_shapes as shapes
from secret_shapes import ENTROPIC, FACTS

from llmstep.diagnose.detectors import TOKEN_FORMATS, entropy, high_entropy, looks_random


def _mask(text: str) -> str:
    for pattern in TOKEN_FORMATS:
        text = pattern.sub("[REDACTED]", text)
    return text


@pytest.mark.parametrize(
    "token",
    [
        getattr(shapes, name)
        for name in (
            "GOOGLE",
            "GOOGLE_REFRESH",
            "GOOGLE_OAUTH_SECRET",
            "AZURE_AD_SECRET",
            "TELEGRAM",
            "DOCKER_PAT",
            "VAULT",
            "DATABRICKS",
            "GRAFANA",
            "ANTHROPIC",
            "NPM",
            "SENDGRID",
            "AWS_SESSION",
            "AGE",
        )
    ],
)
def test_each_providers_format_is_found_in_running_text(token):
    out = _mask(f"request failed (credential {token}): 401 Unauthorized")
    assert token not in out and out.endswith("): 401 Unauthorized") and "[REDACTED]" in out


@pytest.mark.parametrize("fact", FACTS)
def test_no_format_matches_the_facts_of_a_failure(fact):
    assert _mask(fact) == fact and high_entropy(fact, lambda _: "[REDACTED]") == fact


def test_a_random_string_beside_a_credential_word_is_masked_and_not_elsewhere():
    assert high_entropy(f"session {ENTROPIC} refused", lambda _: "[X]") == "session [X] refused"
    assert high_entropy(f"object {ENTROPIC} refused", lambda _: "[X]") == f"object {ENTROPIC} refused"


@pytest.mark.parametrize(
    "value",
    [
        "3f9a1c2b7e4d5f60718293a4b5c6d7e8f9012345",
        "5f1c6a0e-8d2b-4c1e-9a7f-3b2d1e0c9f8a",
        "deploy-x7k2q-2837465019",
        "2026-12-07T03:12:44Z-extra-text",
        "/var/run/secrets/token/x1y2z3",
        "registry.example.com/app1",
        "AuthenticationFailedError",
        "9f86d081884c7d659a2feaa0c55ad015",
    ],
)
def test_names_digests_paths_and_words_do_not_look_random(value):
    assert not looks_random(value)


def test_entropy_orders_words_below_generated_strings():
    assert entropy("passwordpassword") < 3.0 < entropy(ENTROPIC)
