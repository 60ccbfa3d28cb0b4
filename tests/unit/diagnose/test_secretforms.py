"""llmstep/diagnose/secretforms.py: which names hold secrets, and the forms that write a name and
its value; the whole pipeline over every form is tested in test_redact.py (tests/secret_shapes.py)."""

from __future__ import annotations

import pytest

from llmstep.diagnose.secretforms import FORMS, SECRET_NAME


def _mask(text: str) -> str:
    for pattern, keep in FORMS:
        text = pattern.sub(lambda m, keep=keep: (m.group(keep) if keep else "") + "[REDACTED]", text)
    return text


@pytest.mark.parametrize(
    "name",
    [
        "SECRET_KEY_BASE",
        "DB_SECRET_B64",
        "client-key-data",
        "API_KEY_V2",
        "passwordHash",
        "clientSecretJson",
        "srcstorepass",
        "keypass",
        "session_cookie",
        "TOKEN_ENC",
    ],
)
def test_a_secret_word_with_an_encoding_or_version_suffix_names_a_secret(name):
    assert SECRET_NAME.match(name)


@pytest.mark.parametrize(
    "name",
    [
        "TOKEN_TTL",
        "PASSWORD_FILE",
        "secretName",
        "secretKeyRef",
        "max_tokens",
        "token_type",
        "AWS_ACCESS_KEY_ID",
        "keyring",
        "password_url",
        "client-certificate",
        "existingSecret",
        "valueFrom.secretKeyRef.key",
        "configMapKeyRef.key",
    ],
)
def test_names_about_a_secret_are_not_secret_names(name):
    assert not SECRET_NAME.match(name)


@pytest.mark.parametrize(
    "text",
    [
        'FATAL: password authentication failed for user "app"',
        "the password is incorrect; reset it",
        'MountVolume.SetUp failed for volume "tls" : secret "checkout-tls" not found',
        "mysql -h db -p shop < dump.sql",  # -p alone prompts; shop is the database
        "docker pull library/nginx@sha256:4b825dc642cb6eb9a060e54bf8d69288fbee4904a1b2c3d4e5f60718293a4b5c",
        "go: downloading golang.org/x/net@v0.30.0",
        "token_type=Bearer expires_in=3600",
        "exit code 1: see https://docs.example.com/errors?code=E42",
    ],
)
def test_what_only_speaks_of_a_secret_stays(text):
    expected = text.replace("code=E42", "code=[REDACTED]")  # a query's code= is an OAuth code to the rule
    assert _mask(text) == expected


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("the password is hunter22 (rotate it)", "the password is [REDACTED] (rotate it)"),
        ("WITH PASSWORD 'sql-pw'", "WITH PASSWORD [REDACTED]"),
        ("machine h login u password p4ss", "machine h login u password [REDACTED]"),
        ("h:5432:db:u:pg-pass", "h:5432:db:u:[REDACTED]"),
        ("sshpass -p secret1 ssh h", "sshpass -p [REDACTED] ssh h"),
        ("sqlplus u/oracle-pw@ORCL", "sqlplus u/[REDACTED]@ORCL"),
        ("Cookie: a=1; b=2", "Cookie: [REDACTED]"),
        ("GET /cb?code=abc123&state=s", "GET /cb?code=[REDACTED]&state=s"),
        (
            "kubectl create secret generic x --from-literal=config=lit-value",
            "kubectl create secret generic x --from-literal=config=[REDACTED]",
        ),
    ],
)
def test_each_form_keeps_its_name_and_masks_its_value(text, kept):
    assert _mask(text) == kept
