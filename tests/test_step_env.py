"""Environment for steps: Step(env=...) and compile(env=...) on every engine, and what a local step
gets from this machine (proxies, CA bundles, the model's endpoint)."""

from __future__ import annotations

import pytest
import yaml
from chains import openai_chain
from conftest import run_cli
from langchain_core.runnables import RunnableLambda
from openai_server import FakeOpenAI

import llmstep
from llmstep.errors import CompileError

NAMES = ("REGION", "MODE", "TOKEN", "HTTPS_PROXY", "NO_PROXY", "SSL_CERT_FILE", "OPENAI_BASE_URL", "UNRELATED")


def _show_env(_x):
    import os

    return {k: os.environ.get(k) for k in NAMES}


def _env_chain():
    step = llmstep.Step(
        RunnableLambda(_show_env),
        env={"REGION": llmstep.ConfigMapKeyRef("settings", "region"), "TOKEN": llmstep.SecretKeyRef("acme", "token")},
    )
    return step | RunnableLambda(lambda d: d)


def test_step_env_renders_as_container_env_on_argo_and_tekton():
    compiled = llmstep.compile(_env_chain(), allow_pickle=True, env={"MODE": "fast", "REGION": "overridden"})
    [first] = [t for t in compiled.to_dict()["spec"]["templates"] if t["name"] == compiled.plan.steps[0].name]
    assert first["container"]["env"] == [
        {"name": "MODE", "value": "fast"},
        {"name": "REGION", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "region"}}},
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "acme", "key": "token"}}},
    ]
    [second] = [t for t in compiled.to_dict()["spec"]["templates"] if t["name"] == compiled.plan.steps[1].name]
    assert second["container"].get("env") == [
        {"name": "MODE", "value": "fast"},
        {"name": "REGION", "value": "overridden"},
    ]
    pipeline = next(d for d in compiled.to_tekton() if d["kind"] == "Pipeline")
    task = pipeline["spec"]["tasks"][0]
    assert "taskRef" not in task  # a shared Task takes no env per use: the step embeds the Task's spec
    env = task["taskSpec"]["steps"][0]["env"]
    assert {"name": "REGION", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "region"}}} in env
    assert {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "acme", "key": "token"}}} in env
    assert {"name": "MODE", "value": "fast"} in env
    for doc in compiled.to_tekton():
        from llmstep.render.tekton_checks import check_documents

        check_documents(compiled.to_tekton())
        assert "tok-" not in yaml.safe_dump(doc)


@pytest.mark.parametrize("engine", ["argo", "tekton"])
def test_local_steps_get_their_env_and_this_machines_proxies(engine, tmp_path, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")
    monkeypatch.setenv("UNRELATED", "never passed")
    compiled = llmstep.compile(_env_chain(), allow_pickle=True, env={"MODE": "fast"})
    got = compiled.run_local(
        0, engine=engine, runs_dir=tmp_path / "runs", secrets={"REGION": "eu-west", "TOKEN": "tok-123"}
    )
    assert got == {
        "REGION": "eu-west",
        "MODE": "fast",
        "TOKEN": "tok-123",
        "HTTPS_PROXY": "http://127.0.0.1:3128",
        "NO_PROXY": "127.0.0.1,localhost",
        "SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt",
        "OPENAI_BASE_URL": None,
        "UNRELATED": None,
    }


def test_a_configmap_value_missing_locally_is_named(tmp_path):
    compiled = llmstep.compile(_env_chain(), allow_pickle=True)
    with pytest.raises(
        llmstep.LlmstepError,
        match=r"env REGION comes from key 'region' of ConfigMap 'settings'; "
        r"locally, set REGION",
    ):
        compiled.run_local(0, runs_dir=tmp_path / "runs", secrets={})


def test_a_local_model_step_sends_its_key_only_to_the_endpoint_this_machine_names(tmp_path):
    """The OpenAI-compatible server on loopback stands in for the endpoint OPENAI_BASE_URL names (a
    gateway, a local model). Without the variable, the step would send the key to api.openai.com."""
    key = "sk-local-endpoint-key-0123456789"
    (tmp_path / "qa.yaml").write_text(llmstep.compile(openai_chain()).to_yaml())  # no endpoint in the payload
    with FakeOpenAI(reply="from the configured endpoint") as server:
        ran = run_cli(
            "run",
            "qa.yaml",
            "-p",
            'input={"question": "q"}',
            cwd=tmp_path,
            env={"OPENAI_API_KEY": key, "OPENAI_BASE_URL": server.url},
        )
        assert ran.returncode == 0, ran.stderr
        assert ran.stdout.strip() == "from the configured endpoint"
        assert [r["headers"]["authorization"] for r in server.requests] == [f"Bearer {key}"]


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"9BAD": "x"}, "not a valid environment variable name"),
        ({"LLMSTEP_PAYLOAD": "x"}, "reserved for llmstep"),
        ({"RETRIES": 3}, "must be a string, a ConfigMapKeyRef or a SecretKeyRef"),
        ({"ACME_API_KEY": "abc-plain-text"}, "looks like a credential"),
        ({"X": llmstep.SecretKeyRef("", "k")}, "non-empty name and key"),
        ("MODE=fast", "must be a dict"),
    ],
)
def test_bad_env_is_refused_naming_the_variable(env, fragment):
    with pytest.raises(CompileError, match=fragment):
        llmstep.Step(RunnableLambda(str), env=env)
    with pytest.raises(CompileError, match=fragment):
        llmstep.compile(RunnableLambda(str), env=env)


def test_a_literal_env_value_equal_to_a_secret_of_this_machine_is_refused(monkeypatch):
    monkeypatch.setenv("ACME_TOKEN", "tok-live-0123456789")
    with pytest.raises(CompileError, match=r"holds the value of the environment variable ACME_TOKEN.*SecretKeyRef"):
        llmstep.compile(RunnableLambda(str), env={"HEADER": "tok-live-0123456789"})


def test_env_survives_the_cli_and_is_in_the_readme(tmp_path):
    (tmp_path / "e.py").write_text(
        "import llmstep\nfrom langchain_core.prompts import PromptTemplate\n"
        "chain = llmstep.Step(PromptTemplate.from_template('{x}'), env={'MODE': 'fast'})\n"
    )
    out = run_cli("compile", "e.py:chain", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    doc = yaml.safe_load(out.stdout)
    [template] = [t for t in doc["spec"]["templates"] if "container" in t]
    assert {"name": "MODE", "value": "fast"} in template["container"]["env"]
    readme = (__import__("pathlib").Path(__file__).parents[1] / "README.md").read_text()
    assert "llmstep.ConfigMapKeyRef" in readme and "HTTPS_PROXY" in readme
