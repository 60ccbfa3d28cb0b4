"""What `llmstep diagnose` sends never holds a secret, and still holds the evidence.

A corpus of secret shapes in the four kinds of evidence (manifests, `kubectl describe` text, logs,
events): each case plants secret values beside evidence that must survive, and the check reads
the messages that would be sent and the body a loopback model server received. The token-shaped
values are assembled from parts so that no complete token is written in the repository.
"""

from __future__ import annotations

import base64
import json

import pytest
from conftest import run_cli
from diagnose_cases import MANIFEST, SECRETS
from openai_server import FakeOpenAI
from secret_shapes import FACTS, SHAPES, corpus_count

import llmstep
from llmstep.diagnose import Evidence, Model, Redactor, diagnose, prepared
from llmstep.diagnose.evidence import from_text
from llmstep.diagnose.redact import secret_name

ANSWER = json.dumps({"summary": "s", "root_cause": "r", "evidence": [], "fix_steps": [], "confidence": 0.5})


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def pem(kind: str, body: str, dashes: str = "-----") -> str:
    return f"{dashes}BEGIN {kind}{dashes}\n{body}\nAAAAB3NzaC1yc2EAAAADAQABAAABAQ\n{dashes}END {kind}{dashes}"


GH = "gh" + "p_" + "R7xQ2mK9vL4nT8wZ1cB6yH3jF5dS0aE2uI9o"
GHO = "gh" + "o_" + "Q1w2E3r4T5y6U7i8O9p0A1s2D3f4G5h6J7k8"
GHPAT = "github" + "_pat_" + "11ABCDEFG0" + "x" * 22 + "_" + "Yz09" * 14
GLPAT = "gl" + "pat-" + "Zx9Yw8Vu7Ts6Rq5Po4Nm"
SLACK_TOKEN = "xo" + "xb-" + "1234567890-0987654321-AbCdEfGhIjKlMnOpQrStUvWx"
SLACK_HOOK = "https://hooks.slack" + ".com/services/T0ABC1DEF/B0GHI2JKL/" + "mNoPqRsTuVwXyZ012345abcd"
GOOGLE = "AI" + "za" + "SyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY"
STRIPE = "sk" + "_live_" + "51HqLyjWDarjtT1zdp7dcXYZ"
STRIPE_R = "rk" + "_live_" + "51HqLyjWDarjtT1zdp7dcQRS"
OPENAI = "sk-" + "proj-" + "Xk4rT9mQ2vL8nB5wZ1cY7hJ3fD6sA0eU"
AWS_ID = "AK" + "IA" + "Z7QW4XK2RT9LM3NB"
AWS_SECRET = "Hq9/" + "wJalrXUtnFEMIK7MDENGbPxRfiCY" + "Rk2vT5zL"
AWS_SECRET_PLAIN = "Zt8Q" + "m2LwKx7RfN4pBv9cYh3JdG6sA1eU" + "0iOo5Xk2"
JWT = (
    "eyJhbGciOiJSUzI1NiIsImtpZCI6IiJ9"
    + "."
    + "eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6ZGVmYXVsdCJ9"
    + "."
    + "Sig0abcDEF123ghiJKL456mnoPQR"
)

# (medium, text, secrets that must not go out, evidence that must stay)
CORPUS: list[tuple[str, str, list[str], list[str]]] = [
    (
        "manifest",
        f"""apiVersion: v1
kind: Secret
metadata: {{name: db-creds, namespace: shop}}
type: Opaque
data: {{password: {b64("hunter2-base64-secret")}, username: {b64("app-user-b64")}}}
""",
        [b64("hunter2-base64-secret"), b64("app-user-b64")],
        ["db-creds", "password", "username"],
    ),
    (
        "manifest",
        """apiVersion: v1
kind: Secret
metadata: {name: api}
stringData: {OPENAI_API_KEY: plain-string-data-secret-1}
""",
        ["plain-string-data-secret-1"],
        ["OPENAI_API_KEY", "name: api"],
    ),
    (
        "manifest",
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "SecretList",
                "items": [
                    {"metadata": {"name": "listed"}, "data": {"token": b64("secret-list-item-value")}, "type": "Opaque"}
                ],
            }
        ),
        [b64("secret-list-item-value")],
        ["listed", "token"],
    ),
    (
        "manifest",
        f"""apiVersion: v1
kind: Secret
metadata: {{name: regcred}}
type: kubernetes.io/dockerconfigjson
data:
  .dockerconfigjson: {b64(json.dumps({"auths": {"registry.example.com": {"auth": b64("robot:docker-registry-pw")}}}))}
""",
        [b64(json.dumps({"auths": {"registry.example.com": {"auth": b64("robot:docker-registry-pw")}}}))[:40]],
        ["regcred", "kubernetes.io/dockerconfigjson"],
    ),
    (
        "manifest",
        """apiVersion: v1
kind: ConfigMap
metadata: {name: app-config}
data:
  DB_HOST: postgres.shop.svc
  DB_PASSWORD: configmap-db-password-1
""",
        ["configmap-db-password-1"],
        ["postgres.shop.svc", "DB_PASSWORD"],
    ),
    (
        "manifest",
        """apiVersion: v1
kind: ConfigMap
metadata: {name: oauth-ini}
data:
  oauth.ini: |
    [oauth]
    client_id = shop-frontend
    client_secret = ini-client-secret-value
    token_url = https://auth.example.com/token
""",
        ["ini-client-secret-value"],
        ["client_id = shop-frontend", "token_url = https://auth.example.com/token"],
    ),
    (
        "manifest",
        """apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  template:
    spec:
      containers:
      - name: web
        image: registry.example.com/web:1.4.2
        env:
        - {name: DB_PASSWORD, value: env-db-password-1}
        - {name: GITHUB_TOKEN, value: env-github-token-1}
        - {name: MYSQL_PWD, value: env-mysql-pwd-1}
        - {name: DATABASE_URL, value: "mysql://root:p@ss@db:3306/shop"}
        - {name: LOG_LEVEL, value: debug}
        args: ["--password", "args-password-value", "--api-key=args-api-key-value", "--port", "8080"]
        command: ["sh", "-c", "curl -fsS -u admin:curl-user-password https://status.example.com/ping"]
""",
        [
            "env-db-password-1",
            "env-github-token-1",
            "env-mysql-pwd-1",
            "p@ss",
            "args-password-value",
            "args-api-key-value",
            "curl-user-password",
        ],
        [
            "registry.example.com/web:1.4.2",
            "LOG_LEVEL",
            "debug",
            "mysql://root:",
            "@db:3306/shop",
            "--port",
            "8080",
            "-u admin:",
        ],
    ),
    (
        "manifest",
        """apiVersion: tekton.dev/v1
kind: PipelineRun
metadata: {name: build-1}
spec:
  pipelineRef: {name: build}
  params:
  - {name: registry-password, value: tekton-registry-password}
  - {name: image, value: registry.example.com/app}
  - {name: token, value: "$(params.upstream-token)"}
""",
        ["tekton-registry-password"],
        ["registry-password", "registry.example.com/app", "$(params.upstream-token)"],
    ),
    (
        "manifest",
        """apiVersion: tekton.dev/v1
kind: Task
metadata: {name: push}
spec:
  params:
  - {name: token, type: string, default: tekton-default-token}
  steps:
  - {name: push, image: alpine, script: echo pushing}
""",
        ["tekton-default-token"],
        ["echo pushing"],
    ),
    (
        "manifest",
        """apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: deploy-}
spec:
  arguments:
    parameters:
    - {name: token, value: argo-parameter-token}
    - {name: environment, value: staging}
    - {name: api-token, value: "{{workflow.parameters.token}}"}
""",
        ["argo-parameter-token"],
        ["environment", "staging", "{{workflow.parameters.token}}"],
    ),
    (
        "manifest",
        f"""apiVersion: v1
kind: Secret
metadata:
  name: applied
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: '{{"data":{{"key":"{b64("last-applied-secret")}"}}}}'
""",
        [b64("last-applied-secret")],
        ["applied"],
    ),
    (
        "manifest",
        f"""apiVersion: v1
kind: ConfigMap
metadata: {{name: notify}}
data:
  SLACK_URL: {SLACK_HOOK}
""",
        [SLACK_HOOK.rsplit("/", 3)[1], SLACK_HOOK.rsplit("/", 1)[1]],
        ["https://hooks.slack.com/services/", "SLACK_URL"],
    ),
    *[
        (
            "manifest",
            f"""apiVersion: v1
kind: ConfigMap
metadata: {{name: key-{i}}}
data:
  key.pem: |
{chr(10).join("    " + line for line in pem(kind, body).splitlines())}
""",
            [body],
            [f"BEGIN {kind}", f"key-{i}"],
        )
        for i, (kind, body) in enumerate(
            [
                ("RSA PRIVATE KEY", "MIIEpAIBAAKCAQEA7rsaPrivateKeyBody"),
                ("PRIVATE KEY", "MIIEvQIBADANBgkqhkiG9w0pkcs8Body"),
                ("EC PRIVATE KEY", "MHcCAQEEIECprivateKeyBodyxyz"),
                ("DSA PRIVATE KEY", "MIIBuwIBAAKBgQDdsaKeyBody"),
                ("OPENSSH PRIVATE KEY", "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUopenssh"),
                ("ENCRYPTED PRIVATE KEY", "MIIFHDBOBgkqhkiG9w0BBQ0wQTApencrypted"),
                ("PGP PRIVATE KEY BLOCK", "lQOYBGVpgpPrivateKeyBlockBody"),
            ]
        )
    ],
    (
        "manifest",
        """apiVersion: apps/v1
kind: Deployment
metadata:
  name: applied-web
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: |
      {"apiVersion":"apps/v1","kind":"Deployment","spec":{"template":{"spec":{"containers":[{"name":"web","image":"web:1","env":[{"name":"DB_PASSWORD","value":"last-applied-env-password"}]}]}}}}
""",
        ["last-applied-env-password"],
        ['"image": "web:1"', "DB_PASSWORD"],
    ),
    (
        "manifest",
        """apiVersion: apps/v1
kind: Deployment
metadata: {name: tabbed-web}
spec:
  template:
    spec:
      containers:
      - name: web
        env:
        - name: REDIS_PASSWORD
          value: broken-doc-env-password
\t  image: web:2
""",
        ["broken-doc-env-password"],
        ["name: REDIS_PASSWORD", "image: web:2"],
    ),
    (
        "log",
        'patch: {"env": [{"name": "API_TOKEN", "value": "json-env-token-value"}, {"name": "MODE", "value": "dev"}]}',
        ["json-env-token-value"],
        ['{"name": "MODE", "value": "dev"}'],
    ),
    (
        "describe",
        f"""Name:         needs-key
Namespace:    shop
Containers:
  app:
    Image:      registry.example.com/app:2.0
    Args:
      --password
      describe-args-password
      --verbose
    Environment:
      API_TOKEN:              describe-api-token-value
      AWS_SECRET_ACCESS_KEY:  {AWS_SECRET_PLAIN}
      STRIPE_KEY:             {STRIPE}
      FROM_SECRET:            <set to the key 'API_KEY' in secret 'app'>  Optional: false
Annotations:  token: {JWT}
""",
        ["describe-args-password", "describe-api-token-value", AWS_SECRET_PLAIN, STRIPE, JWT],
        ["--verbose", "<set to the key 'API_KEY' in secret 'app'>", "registry.example.com/app:2.0", "Optional: false"],
    ),
    (
        "log",
        f"openai.AuthenticationError: Error code: 401 - Incorrect API key provided: {OPENAI}. You can find your key",
        [OPENAI],
        ["AuthenticationError: Error code: 401", "Incorrect API key provided"],
    ),
    (
        "log",
        f"fatal: could not read from https://x-access-token:{GHO}@github.com/org/repo.git: 403 Forbidden",
        [GHO],
        ["github.com/org/repo.git: 403 Forbidden"],
    ),
    ("log", f"using GH_PAT {GHPAT} for the release", [GHPAT], ["for the release"]),
    ("log", f"gitlab clone failed with {GLPAT}: 401 Unauthorized", [GLPAT], ["401 Unauthorized"]),
    ("log", f"slack: posting with {SLACK_TOKEN} -> invalid_auth", [SLACK_TOKEN], ["invalid_auth"]),
    ("log", f"googleapi: Error 403: API key not valid key={GOOGLE}, keyInvalid", [GOOGLE], ["keyInvalid", "Error 403"]),
    ("log", f"stripe: restricted key {STRIPE_R} lacks permission", [STRIPE_R], ["lacks permission"]),
    (
        "log",
        f"[default]\naws_access_key_id = {AWS_ID}\naws_secret_access_key = {AWS_SECRET}\nregion = eu-west-1",
        [AWS_ID, AWS_SECRET],
        ["region = eu-west-1"],
    ),
    ("log", f"refreshing with token={JWT} failed: expired", [JWT], ["failed: expired"]),
    (
        "log",
        f"GET /api -H 'Authorization: Basic {b64('admin:basic-auth-pw')}' -> 401",
        [b64("admin:basic-auth-pw")],
        ["-> 401"],
    ),
    (
        "log",
        "upstream said 401 to Authorization: Bearer bearer-token-value-0001 at /v1/models",
        ["bearer-token-value-0001"],
        ["at /v1/models"],
    ),
    (
        "log",
        "+ curl -u deploy:curl-log-password https://api.example.com/hook",
        ["curl-log-password"],
        ["curl -u deploy:"],
    ),
    (
        "log",
        "connecting to postgres://app:pg-url-password@db.shop.svc:5432/shop: timeout",
        ["pg-url-password"],
        ["@db.shop.svc:5432/shop: timeout"],
    ),
    ("log", "+ export DB_PASSWORD=exported-db-password\n+ ./migrate", ["exported-db-password"], ["./migrate"]),
    ("log", "+ MYSQL_PWD=inline-mysql-pwd mysql -h db -e 'select 1'", ["inline-mysql-pwd"], ["mysql -h db"]),
    (
        "log",
        'config: {"client_secret": "json log secret", "client_id": "shop"}',
        ["json log secret"],
        ['"client_id": "shop"'],
    ),
    (
        "log",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEtruncatedByTheLogTail",
        ["MIIEtruncatedByTheLogTail"],
        ["BEGIN RSA PRIVATE KEY"],
    ),
    (
        "log",
        pem("SSH2 ENCRYPTED PRIVATE KEY", "ssh2EncryptedBodyLine", "---- ").replace("KEY---- ", "KEY ----"),
        ["ssh2EncryptedBodyLine"],
        [],
    ),
    (
        "event",
        'Warning Failed: Failed to pull image "registry.example.com/app": pulling from https://robot:event-registry-pw@registry.example.com/v2/: 401',
        ["event-registry-pw"],
        ["Failed to pull image", "401"],
    ),
    (
        "event",
        "Warning BackOff: Back-off restarting failed container app (--token=event-token-flag-value)",
        ["event-token-flag-value"],
        ["Back-off restarting failed container app"],
    ),
    ("event", f"Normal Notify: webhook {SLACK_HOOK} answered 404", [SLACK_HOOK.rsplit("/", 1)[1]], ["answered 404"]),
    ("event", f"Warning Unauthorized: service account token {JWT} rejected", [JWT], ["rejected"]),
]


def evidence_of(medium: str, text: str) -> Evidence:
    if medium == "manifest":
        return from_text(text, "manifests.yaml")
    title = {
        "describe": "kubectl describe pod needs-key",
        "log": "log of web-1/app, last 50 lines",
        "event": "events of pod web-1 (newest first)",
    }[medium]
    return Evidence("pod/web-1", [(title, text.splitlines())])


def test_corpus_covers_at_least_40_secret_shapes():
    assert sum(len(secrets) for _, _, secrets, _ in CORPUS) >= 40
    assert {medium for medium, *_ in CORPUS} == {"manifest", "describe", "log", "event"}


@pytest.mark.parametrize(
    ("medium", "text", "secrets", "kept"), CORPUS, ids=[f"{c[0]}-{i}" for i, c in enumerate(CORPUS)]
)
def test_secret_never_sent_and_the_evidence_stays(medium, text, secrets, kept):
    redactor = Redactor()
    sent = "\n".join(m["content"] for m in prepared(evidence_of(medium, text), redactor, "diagnose", None, None))
    for secret in secrets:
        assert secret not in sent, f"{secret!r} went out:\n{sent}"
    for fragment in kept:
        assert fragment in sent, f"{fragment!r} was lost:\n{sent}"
    assert redactor.count >= 1


def _sent_to_the_model(corpus):
    """Diagnose the evidence of every case of ``corpus`` against a loopback stand-in for an
    OpenAI-compatible server: the report, the user message it received, and its whole request body."""
    evidence = Evidence("corpus")
    for medium, text, _, _ in corpus:
        evidence.merge(evidence_of(medium, text))
    with FakeOpenAI(reply=ANSWER) as server:
        report = diagnose(evidence, Model(api_key="k", provider="compatible", base_url=server.url), Redactor())
    body = json.dumps(server.requests[0]["body"], ensure_ascii=False)
    return report, server.requests[0]["body"]["messages"][1]["content"], body


def test_secret_never_reaches_the_model_server():
    report, received, body = _sent_to_the_model(CORPUS)
    for _, _, secrets, kept in CORPUS:
        for secret in secrets:
            assert secret not in received and json.dumps(secret)[1:-1] not in body
        for fragment in kept:
            assert fragment in received
    assert report.redactions >= 40


def test_a_broken_document_never_disables_redaction_of_the_others():
    text = f"""apiVersion: v1
kind: ConfigMap
metadata: {{name: tabbed}}
data:
\tbroken: indentation
---
apiVersion: v1
kind: Secret
metadata: {{name: neighbour}}
data: {{password: {b64("neighbour-secret")}}}
---
apiVersion: v1
kind: Secret
metadata: {{name: broken-secret}}
data:
  password: {b64("broken-doc-secret")}
\tnote: tab
"""
    evidence = from_text(text, "mixed.yaml")
    sent = evidence.render(Redactor())
    assert b64("neighbour-secret") not in sent and b64("broken-doc-secret") not in sent
    assert [title for title, _ in evidence.objects] == ["manifest Secret/neighbour"]
    assert "document 1 (not valid YAML)" in sent and "broken: indentation" in sent and "password: [REDACTED]" in sent


def test_secret_list_items_without_kind_are_secrets():
    raw = {
        "kind": "SecretList",
        "apiVersion": "v1",
        "items": [{"metadata": {"name": "a"}, "data": {"k": b64("item-secret")}}],
    }
    out = Redactor().obj(raw)
    assert out["items"][0]["data"] == {"k": "[REDACTED]"} and out["items"][0]["metadata"] == {"name": "a"}


@pytest.mark.parametrize(
    "name",
    [
        "DB_PASSWORD",
        "GITHUB_TOKEN",
        "MYSQL_PWD",
        "client_secret",
        "registry-password",
        "token",
        "--api-key",
        "AWS_SECRET_ACCESS_KEY",
        "STRIPE_KEY",
        ".dockerconfigjson",
        "PGPASSWORD",
    ],
)
def test_secret_names_are_recognised(name):
    assert secret_name(name)


@pytest.mark.parametrize(
    "name", ["secretKeyRef", "secretName", "max_tokens", "PASSWORD_FILE", "key", "author", "imagePullSecrets"]
)
def test_names_that_only_mention_secrets_are_evidence(name):
    assert not secret_name(name)


def test_references_to_secrets_stay_visible():
    env = [
        {"name": "API_KEY", "valueFrom": {"secretKeyRef": {"name": "app", "key": "API_KEY"}}},
        {"name": "TOKEN", "value": "$(params.token)"},
    ]
    assert Redactor().obj({"env": env}) == {"env": env}


def test_generated_documents_lose_nothing_to_redaction():
    from conftest import ROOT

    for path in sorted((ROOT / "workflows").glob("*.yaml")) + sorted((ROOT / "tekton").glob("*.yaml")):
        redactor = Redactor()
        from_text(path.read_text(), path.name).render(redactor)
        assert redactor.count == 0, path.name


def test_no_secret_reaches_the_model_and_redactions_are_counted():
    redactor = Redactor(patterns=[r"corp-token-\d+"])
    sent = json.dumps(prepared(from_text(MANIFEST, "bad.yaml"), redactor, "diagnose", None, None))
    for secret in SECRETS:
        assert secret not in sent
    assert "abcdefghijklmnop" not in sent
    assert "production" in sent and "invalid" in sent  # the evidence itself survives
    assert redactor.count >= 8


def test_invalid_redact_pattern_is_a_usage_error():
    with pytest.raises(llmstep.LlmstepError, match=r"--redact '\(' is not a valid regular expression") as caught:
        Redactor(patterns=["("])
    assert caught.value.exit_code == 2
    with pytest.raises(llmstep.LlmstepError, match="Diagnose"):
        llmstep.Diagnose(redact=("[unclosed",))
    result = run_cli("diagnose", "-f", "-", "--redact", "(", "--dry-run")
    assert result.returncode == 2 and "--redact '(' is not a valid regular expression" in result.stderr


@pytest.mark.parametrize("flag", ["--redact", "--redact-each"])
def test_an_empty_redact_pattern_is_refused_not_masked_between_every_character(flag):
    result = run_cli("diagnose", "-f", "-", flag, "", "--dry-run")
    assert result.returncode == 2, result.stderr
    assert "--redact '' matches the empty string" in result.stderr and "Traceback" not in result.stderr


def test_an_empty_match_of_a_pattern_masks_nothing():
    # a lookahead that the check at parse time cannot see matching the empty string
    assert Redactor(patterns=["(?=corp)"]).text("corp-token-1 failed") == "corp-token-1 failed"


# -- the corpus of secret shapes (tests/secret_shapes.py): by structure, then by detectors


def test_the_shapes_corpus_plants_more_than_60_secrets_in_every_structure():
    assert len(SHAPES) >= 60 and corpus_count() >= 60
    assert {medium for medium, *_ in SHAPES} == {"manifest", "log", "event"}


@pytest.mark.parametrize(("medium", "text", "secrets", "kept"), SHAPES, ids=[f"shape-{i}" for i in range(len(SHAPES))])
def test_no_shape_of_secret_is_sent_and_its_facts_stay(medium, text, secrets, kept):
    redactor = Redactor()
    sent = "\n".join(m["content"] for m in prepared(evidence_of(medium, text), redactor, "diagnose", None, None))
    leaked = [secret for secret in secrets if secret in sent]
    lost = [fragment for fragment in kept if fragment not in sent]
    assert (leaked, lost) == ([], []), sent
    assert redactor.count >= len(secrets) or redactor.count >= 1


def test_no_shape_of_secret_reaches_the_model_server_and_the_facts_do():
    report, received, body = _sent_to_the_model(SHAPES)
    leaked = [s for _, _, secrets, _ in SHAPES for s in secrets if s in received or json.dumps(s)[1:-1] in body]
    lost = [k for _, _, _, kept in SHAPES for k in kept if k not in received]
    assert (leaked, lost) == ([], [])
    assert report.redactions >= corpus_count()


def test_the_dry_run_of_the_cli_shows_no_shape_of_secret(tmp_path):
    logs = tmp_path / "build.log"
    logs.write_text("\n".join(text for medium, text, _, _ in SHAPES if medium != "manifest"))
    manifests = tmp_path / "manifests.yaml"
    manifests.write_text("\n---\n".join(text for medium, text, _, _ in SHAPES if medium == "manifest"))
    for path, media in ((logs, ("log", "event")), (manifests, ("manifest",))):
        result = run_cli("diagnose", "-f", str(path), "--dry-run")
        assert result.returncode == 0, result.stderr
        cases = [case for case in SHAPES if case[0] in media]
        assert [s for _, _, secrets, _ in cases for s in secrets if s in result.stdout] == []
        assert [k for _, _, _, kept in cases for k in kept if k not in result.stdout] == []


def test_the_facts_of_real_failures_are_not_taken_for_secrets():
    """Digests, uids, versions, timestamps, ids, references to Secrets and non-secret base64:
    the false-positive rate on them is 0."""
    changed = [(fact, out) for fact in FACTS if (out := Redactor().text(fact)) != fact]
    assert changed == []


def test_upstream_example_documents_lose_nothing_to_redaction():
    from conftest import ROOT

    paths = sorted((ROOT / "tests" / "data").glob("*-examples/*.yaml"))
    assert len(paths) >= 15
    for path in paths:
        redactor = Redactor()
        from_text(path.read_text(), path.name).render(redactor)
        assert redactor.count == 0, path.name


def test_json_in_a_log_line_is_redacted_as_the_object_it_is_and_left_alone_otherwise():
    secret = b64("non-secret-named-key")
    line = f'applied {{"kind": "Secret", "data": {{"config": "{secret}"}}}} and {{"kind": "ConfigMap", "data": {{"a": "b"}}}}'
    out = Redactor().text(line)
    assert secret not in out and '"config": "[REDACTED]"' in out
    assert out.endswith('and {"kind": "ConfigMap", "data": {"a": "b"}}')
    untouched = '{"level":"error","msg":"pull failed","image":"app:1"} then {broken json'
    assert Redactor().text(untouched) == untouched


HOSTILE_TEXTS = {
    "dotted": "a." * 50_000,
    "braces": "{" * 100_000,
    "open json": '{"a":' * 20_000,
    "lists": "[[" * 50_000,
    "logins": "login " * 16_000,
    "machines": "machine login " * 7_000,
    "schemes": "a://" * 25_000,
    "flags": "--password " * 9_000,
    "pem": "-----BEGIN PRIVATE KEY-----" + "A" * 100_000,
    "names": "DB_PASSWORD " * 9_000,
    "blocks": "password: |\n" * 8_000,
    "echoes": "echo x " * 14_000,
    "name words": "a_b" * 33_000,
}


@pytest.mark.parametrize("name", HOSTILE_TEXTS)
def test_redaction_reads_a_budget_of_hostile_text_in_linear_time(name):
    """Each shape made the text pass quadratic before (minutes for 100 kB: an unbounded URL
    scheme, a JSON decode at every nested brace, a scan to the line's end at each repeated word);
    the bound is generous so that a loaded machine passes, and a quadratic pass does not."""
    import time

    started = time.monotonic()
    out = Redactor().text(HOSTILE_TEXTS[name])
    assert time.monotonic() - started < 30 and isinstance(out, str)


def test_json_nested_too_deep_to_read_stays_text():
    line = "payload " + '{"a": ' * 5000 + '"x"' + "}" * 5000 + " password=deep-json-password"
    out = Redactor().text(line)
    assert "deep-json-password" not in out and out.startswith('payload {"a": {"a":')
