"""Failure diagnosis without a cluster: redaction, prompts, the model's request shapes and
retries (against a local OpenAI-compatible server that records requests), the report, the CLI,
and the Argo exit handler in the local runner."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from chains import qa_chain, qa_prompt
from conftest import run_cli
from langchain_core.runnables import RunnableLambda
from openai_server import FakeOpenAI
from schemas import ARGO_VERSIONS, argo_errors

import llmstep
from llmstep.diagnose import Evidence, Model, Redactor, diagnose, prepared
from llmstep.diagnose.evidence import from_text, from_workflow_failures, parse_target
from llmstep.diagnose.report import parse

ANSWER = {
    "summary": "The image 'invalid' cannot be pulled.",
    "root_cause": "Deployment web uses image invalid, which does not exist.",
    "evidence": ["Failed to pull image \"invalid\""],
    "fix_steps": [{"description": "Use a real image", "command": "kubectl set image deployment/web web=nginx:1.27"}],
    "confidence": 0.9,
}
SECRETS = ["sk-live-planted0123456789abcdef", "hunter2-db-password", "s3cretUrlPass", "ghp_abcdefghijklmnopqrstuvwxyz012345",
           "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", "corp-token-998877"]
MANIFEST = f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  template:
    spec:
      containers:
      - name: web
        image: invalid
        env:
        - {{name: DB_PASSWORD, value: {SECRETS[1]}}}
        - {{name: DATABASE_URL, value: "postgres://app:{SECRETS[2]}@db:5432/app"}}
        - {{name: MODE, value: production}}
        args: ["--token={SECRETS[0]}", "--gh={SECRETS[3]}", "--extra=corp-token-998877"]
---
apiVersion: v1
kind: Secret
metadata: {{name: creds}}
stringData: {{OPENAI_API_KEY: {SECRETS[0]}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: keys}}
data:
  key.pem: |
    -----BEGIN PRIVATE KEY-----
    {SECRETS[4]}
    -----END PRIVATE KEY-----
  auth: "Authorization: Bearer abcdefghijklmnop"
"""


def test_targets_parse_like_kubectl():
    assert parse_target("deploy/web") == ("deployment", "web")
    assert parse_target("workflows/wf-1") == ("workflow", "wf-1")
    with pytest.raises(llmstep.LlmstepError, match="KIND/NAME"):
        parse_target("frobnicator")
    with pytest.raises(llmstep.LlmstepError, match="kind 'service' .* is not one that llmstep diagnose reads") as caught:
        parse_target("service/web")
    assert "kubectl get service web -o yaml | llmstep diagnose -f -" in str(caught.value) and caught.value.exit_code == 2


def test_no_secret_reaches_the_model_and_redactions_are_counted():
    redactor = Redactor(patterns=[r"corp-token-\d+"])
    sent = json.dumps(prepared(from_text(MANIFEST, "bad.yaml"), redactor, "diagnose", None, None))
    for secret in SECRETS:
        assert secret not in sent
    assert "abcdefghijklmnop" not in sent
    assert "production" in sent and "invalid" in sent  # the evidence itself survives
    assert redactor.count >= 8


def test_anonymized_names_are_masked_and_unmasked(tmp_path):
    with FakeOpenAI(reply=json.dumps(ANSWER).replace("web", "deployment-1")) as server:
        report = diagnose(from_text(MANIFEST, "bad.yaml"), Model(api_key="k", provider="compatible", base_url=server.url),
                          Redactor(anonymize=True))  # fmt: skip
    sent = json.dumps(server.requests[0]["body"])
    assert "deployment-1" in sent and '"name": "web"' not in sent and "name: web" not in sent
    assert "Deployment web" in report.root_cause and "deployment/web" in report.fix_steps[0]["command"]


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
        model = Model(api_key="azure-key-123", provider="azure", azure_endpoint=endpoint, azure_deployment="gpt4o",
                      api_version="2024-06-01")  # fmt: skip
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


@pytest.mark.parametrize(("answer", "fragment"), [
    (json.dumps({"summary": "x"}), "lacks summary/root_cause"),
    (json.dumps({**ANSWER, "fix_steps": "do things"}), "fix_steps is not a list"),
])  # fmt: skip
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


def test_quality_gate_needs_a_score_and_custom_prompt_inserts_evidence():
    with pytest.raises(llmstep.DiagnosisError, match="score"):
        parse(json.dumps(ANSWER), target="t", prompt="quality-gate", redactions=0, model="m")
    report = parse(json.dumps({**ANSWER, "score": 72}), target="t", prompt="quality-gate", redactions=0, model="m")
    assert report.score == 72 and report.short().startswith("score 72/100")
    sent = prepared(Evidence("t", [("s", ["EVIDENCE-LINE"])]), Redactor(), "custom", None, "Check this: {evidence} now")
    assert "Check this: ## s\nEVIDENCE-LINE now" in sent[1]["content"]


def test_cli_dry_run_prints_what_would_be_sent_and_calls_nothing(tmp_path):
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(MANIFEST)
    result = run_cli("diagnose", "-f", str(manifest), "--dry-run", "--redact", r"corp-token-\d+")
    assert result.returncode == 0
    assert "invalid" in result.stdout and all(s not in result.stdout for s in SECRETS)
    assert "redacted; no model was called" in result.stderr


def test_cli_report_files_json_and_webhook(tmp_path):
    received = []

    class Hook(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):  # noqa: N802
            received.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
            self.send_response(200)
            self.end_headers()

    hook = ThreadingHTTPServer(("127.0.0.1", 0), Hook)  # stands in for a Slack incoming webhook
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(MANIFEST)
    with FakeOpenAI(reply=json.dumps(ANSWER)) as server:
        env = {"OPENAI_API_KEY": "sk-cli-key-0000000000000000", "HOOK": f"http://127.0.0.1:{hook.server_address[1]}/"}
        result = run_cli("diagnose", "-f", str(manifest), "--provider", "compatible", "--base-url", server.url,
                         "--format", "json", "--output", str(tmp_path / "report.json"),
                         "--summary-file", str(tmp_path / "summary.txt"), "--webhook-env", "HOOK", env=env)  # fmt: skip
    hook.shutdown()
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["summary"] == ANSWER["summary"]
    assert json.loads((tmp_path / "report.json").read_text())["fix_steps"][0]["command"].startswith("kubectl")
    assert "Root cause" in (tmp_path / "summary.txt").read_text() and len((tmp_path / "summary.txt").read_text()) < 4096
    assert "kubectl set image" in received[0]["text"]


def test_cli_errors(tmp_path):
    missing = run_cli("diagnose", "-f", "-", env={"OPENAI_API_KEY": ""}).stderr
    assert "no API key: set OPENAI_API_KEY" in missing and "--api-key-file FILE" in missing
    bad = run_cli("diagnose", "bogus/x")
    assert bad.returncode == 2 and "kind 'bogus' (bogus/x) is not one" in bad.stderr
    with FakeOpenAI(reply="not json at all: the pod lacks its ConfigMap") as server:
        manifest = tmp_path / "m.yaml"
        manifest.write_text("kind: Pod\nmetadata: {name: p}\n")
        result = run_cli("diagnose", "-f", str(manifest), "--provider", "compatible", "--base-url", server.url,
                         env={"OPENAI_API_KEY": "k"})  # fmt: skip
        gate = run_cli("diagnose", "-f", str(manifest), "--provider", "compatible", "--base-url", server.url,
                       "--prompt", "quality-gate", env={"OPENAI_API_KEY": "k"})  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "the pod lacks its ConfigMap" in result.stdout  # the plain answer is the report, not lost
    assert gate.returncode == 1 and "answer is not JSON" in gate.stderr and "Traceback" not in gate.stderr


def test_workflow_failures_become_evidence():
    failures = json.dumps([{"displayName": "ChatOpenAI", "templateName": "chatopenai", "phase": "Failed",
                            "message": "AuthenticationError (exit code 1)", "podName": "qa-1", "finishedAt": "t"}])  # fmt: skip
    text = from_workflow_failures(failures, "qa-x").render(Redactor())
    assert "node ChatOpenAI (template chatopenai): phase Failed, message: AuthenticationError" in text


def test_exit_handler_renders_validly():
    doc = llmstep.compile(qa_chain(), on_failure=llmstep.Diagnose(lang="Japanese")).to_dict()
    for version in ARGO_VERSIONS:
        assert argo_errors(doc, version) == []
    assert doc["spec"]["onExit"] == "exit-handler"
    handler = next(t for t in doc["spec"]["templates"] if t["name"] == "exit-handler")
    assert handler["dag"]["tasks"][0]["when"] == "{{workflow.status}} != Succeeded"
    with pytest.raises(llmstep.CompileError, match="on_failure"):
        llmstep.compile(qa_chain(), on_failure="yes please")


def test_exit_handler_runs_locally_only_when_a_step_fails(tmp_path):
    def fails(x):
        raise RuntimeError("upstream API returned 500")

    answer = {**ANSWER, "summary": "The step 'fails' raised.", "root_cause": "The upstream API failed."}
    with FakeOpenAI(reply=json.dumps(answer)) as server:
        settings = llmstep.Diagnose(provider="compatible", base_url=server.url, model="m")
        ok = llmstep.compile(qa_chain(), on_failure=settings).to_dict()
        from llmstep.local.entry import run_document

        secrets = {"OPENAI_API_KEY": "sk-diagnose-secret-value"}
        good = run_document(ok, {"question": "fine"}, secrets=secrets, runs_dir=tmp_path / "r", quiet=True)
        assert good.phase == "Succeeded" and good.nodes["diagnose"]["phase"] == "Skipped"
        assert server.requests == []
        bad_doc = llmstep.compile(qa_prompt() | RunnableLambda(fails), allow_pickle=True, on_failure=settings).to_dict()
        bad = run_document(bad_doc, {"question": "x"}, secrets=secrets, runs_dir=tmp_path / "r", quiet=True)
    assert bad.phase == "Failed"
    node = bad.nodes["diagnose"]
    assert node["phase"] == "Succeeded", node
    summary = next(p["value"] for p in node["outputs"]["parameters"] if p["name"] == "summary")
    assert summary.startswith("The step 'fails' raised.")
    sent = json.dumps(server.requests[0]["body"])
    assert "upstream API returned 500" in sent and "sk-diagnose-secret-value" not in sent
    assert server.requests[0]["headers"]["authorization"] == "Bearer sk-diagnose-secret-value"


def test_tekton_finally_diagnoses_only_on_failure(tmp_path):
    from schemas import tekton_errors

    from llmstep.local.entry import run_tekton
    from llmstep.render.tekton_checks import check_documents

    def fails(x):
        raise RuntimeError("tekton task exploded")

    with FakeOpenAI(reply=json.dumps(ANSWER)) as server:
        settings = llmstep.Diagnose(provider="compatible", base_url=server.url)
        good_docs = llmstep.compile(qa_chain(), on_failure=settings).to_tekton()
        for doc in good_docs:
            assert tekton_errors(doc) == []
        check_documents(good_docs)
        secrets = {"OPENAI_API_KEY": "sk-tekton-diagnose-key"}
        good = run_tekton(good_docs, {"question": "ok"}, secrets=secrets, runs_dir=tmp_path / "r", quiet=True)
        assert good.phase == "Succeeded" and good.nodes["diagnose"]["phase"] == "Skipped" and server.requests == []
        bad_docs = llmstep.compile(qa_prompt() | RunnableLambda(fails), allow_pickle=True, on_failure=settings).to_tekton()
        bad = run_tekton(bad_docs, {"question": "x"}, secrets=secrets, runs_dir=tmp_path / "r", quiet=True)
    assert bad.phase == "Failed" and bad.nodes["diagnose"]["phase"] == "Succeeded", bad.nodes["diagnose"]
    summary = next(p["value"] for p in bad.nodes["diagnose"]["outputs"]["parameters"] if p["name"] == "summary")
    assert summary.startswith(ANSWER["summary"])
    sent = json.dumps(server.requests[0]["body"])
    assert "task fails: Failed" in sent and "task chatprompttemplate: Succeeded" in sent
    assert server.requests[0]["headers"]["authorization"] == "Bearer sk-tekton-diagnose-key"


def test_diagnose_redact_reaches_the_handler_on_both_engines(tmp_path):
    """Diagnose(redact=...) removes its patterns from what the failure handler sends, on Argo (the
    exit handler's --redact) and on Tekton (the finally task's redact array param)."""
    from llmstep.local.entry import run_document, run_tekton

    def fails(x):
        raise RuntimeError("boom")

    with FakeOpenAI(reply=json.dumps(ANSWER)) as server:
        settings = llmstep.Diagnose(provider="compatible", base_url=server.url, redact=(r"\bfails\b",))
        chain = qa_prompt() | RunnableLambda(fails)
        secrets = {"OPENAI_API_KEY": "k"}
        compiled = llmstep.compile(chain, allow_pickle=True, on_failure=settings)
        pipe = next(d for d in compiled.to_tekton() if d["kind"] == "Pipeline")
        assert {"name": "redact", "value": [r"\bfails\b"]} in pipe["spec"]["finally"][0]["params"]
        run_document(compiled.to_dict(), {"question": "x"}, secrets=secrets, runs_dir=tmp_path / "a", quiet=True)
        run_tekton(compiled.to_tekton(), {"question": "x"}, secrets=secrets, runs_dir=tmp_path / "t", quiet=True)
        sent = [json.dumps(r["body"]) for r in server.requests]
    assert len(sent) == 2
    for text in sent:
        assert "chatprompttemplate" in text.lower() and not re.search(r"\bfails\b", text), text[:2000]


def test_full_report_lands_in_the_workspace_and_as_an_artifact(tmp_path):
    from llmstep.local.entry import run_document, run_tekton

    def fails(x):
        raise RuntimeError("boom")

    with FakeOpenAI(reply=json.dumps(ANSWER)) as server:
        settings = llmstep.Diagnose(provider="compatible", base_url=server.url)
        chain = qa_prompt() | RunnableLambda(fails)
        secrets = {"OPENAI_API_KEY": "k"}
        argo = run_document(llmstep.compile(chain, allow_pickle=True, on_failure=settings).to_dict(), {"question": "x"},
                            secrets=secrets, runs_dir=tmp_path / "a", quiet=True)  # fmt: skip
        tekton = run_tekton(llmstep.compile(chain, allow_pickle=True, on_failure=settings).to_tekton(), {"question": "x"},
                            secrets=secrets, runs_dir=tmp_path / "t", quiet=True)  # fmt: skip
    report = next(a for a in argo.nodes["diagnose"]["outputs"]["artifacts"] if a["name"] == "report")
    assert "## Fix" in open(report["localPath"]).read()
    written = tekton.root / "workspaces" / "data" / tekton.run_id / "diagnosis.md"
    assert "## Fix" in written.read_text()


# ---------------------------------------------------------------- evidence from a cluster (in-memory)

PLANTED = "sk-planted-literal-0123456789abcdef"


def needs_key_cluster(namespace="default", node="worker-1"):
    """pod/needs-key: its container reads API_KEY from Secret app-secrets, which lacks the key."""
    from kube_fake import FakeCluster
    from kubernetes import client as k

    cluster = FakeCluster(namespace)
    container = k.V1Container(
        name="checkout-api", image="registry.example.com/checkout:2.0", command=["/app/serve"], args=["--port", "8080"],
        env=[k.V1EnvVar(name="API_KEY", value_from=k.V1EnvVarSource(secret_key_ref=k.V1SecretKeySelector(name="app-secrets", key="API_KEY"))),
             k.V1EnvVar(name="API_TOKEN", value=PLANTED), k.V1EnvVar(name="MODE", value="production")],
        resources=k.V1ResourceRequirements(limits={"memory": "256Mi"}),
        readiness_probe=k.V1Probe(http_get=k.V1HTTPGetAction(path="/healthz", port=8080)),
        volume_mounts=[k.V1VolumeMount(name="tls", mount_path="/tls")],
    )  # fmt: skip
    cluster.pods["needs-key"] = k.V1Pod(
        metadata=k.V1ObjectMeta(name="needs-key", namespace=namespace),
        spec=k.V1PodSpec(containers=[container], node_name=node,
                         volumes=[k.V1Volume(name="tls", secret=k.V1SecretVolumeSource(secret_name="checkout-tls"))]),
        status=k.V1PodStatus(phase="Pending", pod_ip="10.42.0.17", host_ip="192.168.7.21", container_statuses=[
            k.V1ContainerStatus(name="checkout-api", image="registry.example.com/checkout:2.0", image_id="", ready=False,
                                restart_count=0, state=k.V1ContainerState(waiting=k.V1ContainerStateWaiting(
                                    reason="CreateContainerConfigError",
                                    message=f"couldn't find key API_KEY in Secret {namespace}/app-secrets")))]),
    )  # fmt: skip
    cluster.events.append(k.CoreV1Event(
        metadata=k.V1ObjectMeta(name="e1"), involved_object=k.V1ObjectReference(kind="Pod", name="needs-key"),
        type="Warning", reason="Failed", count=3,
        message=f"Error: couldn't find key API_KEY in Secret {namespace}/app-secrets; db at 10.43.12.5:5432 "
                f"and postgres.{namespace}.svc.cluster.local:5432 on node {node}"))  # fmt: skip
    return cluster


def test_evidence_shows_which_secret_and_key_a_failing_container_references():
    from llmstep.diagnose.evidence import Collector

    evidence = Collector(needs_key_cluster().client(), "default").collect("pod/needs-key")
    sent = prepared(evidence, Redactor(), "diagnose", None, None)[1]["content"]
    assert "waiting (CreateContainerConfigError: couldn't find key API_KEY in Secret default/app-secrets)" in sent
    assert "## spec of pod needs-key (trimmed)" in sent
    spec = sent.split("## spec of pod needs-key (trimmed)\n", 1)[1].split("\n\n## ", 1)[0]
    import yaml

    container = yaml.safe_load(spec)["containers"][0]
    assert container["image"] == "registry.example.com/checkout:2.0" and container["command"] == ["/app/serve"]
    assert container["env"][0] == {"name": "API_KEY", "valueFrom": {"secretKeyRef": {"name": "app-secrets", "key": "API_KEY"}}}
    assert container["env"][1] == {"name": "API_TOKEN", "value": "[REDACTED]"} and container["env"][2]["value"] == "production"
    assert container["resources"] == {"limits": {"memory": "256Mi"}} and container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert yaml.safe_load(spec)["volumes"] == [{"name": "tls", "secret": {"secretName": "checkout-tls"}}]
    assert PLANTED not in sent


def test_unreachable_api_server_is_named_not_an_internal_error():
    from llmstep.diagnose.evidence import Collector

    cluster = needs_key_cluster()
    cluster.unreachable = True
    with pytest.raises(llmstep.DiagnosisError, match=r"cannot reach the Kubernetes API server at https://127.0.0.1:6443: "
                       r"Failed to establish a new connection: \[Errno 111\] Connection refused"):  # fmt: skip
        Collector(cluster.client(), "default").collect("pod/needs-key")


def test_anonymize_masks_namespaces_containers_hosts_and_ips_and_maps_them_back():
    from llmstep.diagnose.evidence import Collector

    real = ["needs-key", "shop-prod", "checkout-api", "worker-7.corp.example.net", "10.42.0.17", "192.168.7.21",
            "10.43.12.5", "postgres.shop-prod.svc.cluster.local"]  # fmt: skip
    evidence = Collector(needs_key_cluster("shop-prod", "worker-7.corp.example.net").client(), "shop-prod").collect("pod/needs-key")
    redactor = Redactor(anonymize=True)
    first = prepared(evidence, redactor, "diagnose", None, None)[1]["content"]
    names = dict(redactor.names)
    assert {names[r] for r in real} == {"pod-1", "namespace-1", "container-1", "host-1", "host-2", "ip-1", "ip-2", "ip-3"}
    answer = {**ANSWER, "root_cause": f"{names['checkout-api']} in {names['needs-key']} ({names['shop-prod']}) lacks a key; "
              f"node {names['worker-7.corp.example.net']} at {names['192.168.7.21']}, db {names['10.43.12.5']}"}  # fmt: skip
    with FakeOpenAI(reply=json.dumps(answer)) as server:
        report = diagnose(evidence, Model(api_key="k", provider="compatible", base_url=server.url), redactor)
    sent = json.dumps(server.requests[0]["body"])
    for value in real:
        assert value not in sent and value not in first
    assert "CreateContainerConfigError" in sent and "secretKeyRef" in sent  # the evidence itself survives
    assert report.root_cause == ("checkout-api in needs-key (shop-prod) lacks a key; node worker-7.corp.example.net at "
                                 "192.168.7.21, db 10.43.12.5")  # fmt: skip


def test_anonymize_masks_namespaces_and_containers_of_manifests():
    text = "kind: Pod\nmetadata: {name: web-0, namespace: payments}\nspec:\n  containers:\n  - {name: ledger, image: x}\n"
    redactor = Redactor(anonymize=True)
    sent = prepared(from_text(text, "pod.yaml"), redactor, "diagnose", None, None)[1]["content"]
    assert "payments" not in sent and "ledger" not in sent and "web-0" not in sent
    assert "namespace: namespace-1" in sent and "name: container-1" in sent
    assert redactor.unmask("container-1 of pod-1 in namespace-1") == "ledger of web-0 in payments"


def test_invalid_redact_pattern_is_a_usage_error():
    with pytest.raises(llmstep.LlmstepError, match=r"--redact '\(' is not a valid regular expression") as caught:
        Redactor(patterns=["("])
    assert caught.value.exit_code == 2
    with pytest.raises(llmstep.LlmstepError, match="Diagnose"):
        llmstep.Diagnose(redact=("[unclosed",))
    result = run_cli("diagnose", "-f", "-", "--redact", "(", "--dry-run")
    assert result.returncode == 2 and "--redact '(' is not a valid regular expression" in result.stderr


def test_anonymize_masks_exit_handler_evidence():
    failures = json.dumps([{"displayName": "ChatOpenAI", "templateName": "chatopenai", "phase": "Failed",
                            "message": "boom", "podName": "qa-x7k2p-chatopenai-123", "finishedAt": "t"}])  # fmt: skip
    redactor = Redactor(anonymize=True)
    sent = prepared(from_workflow_failures(failures, "qa-x7k2p"), redactor, "diagnose", None, None)[1]["content"]
    assert "qa-x7k2p" not in sent and "workflow-1" in sent and "pod-1" in sent
    from llmstep.diagnose.evidence import from_task_statuses

    redactor = Redactor(anonymize=True)
    sent = prepared(from_task_statuses('{"fails": "Failed"}', "pipelinerun/qa-run-abc"), redactor, "diagnose", None, None)
    assert "qa-run-abc" not in sent[1]["content"] and redactor.unmask("pipelinerun-1") == "qa-run-abc"
