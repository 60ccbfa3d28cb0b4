"""Secrets never travel in a payload: compile refuses a chain holding one outside what LangChain
records by id, naming the place, and says when a key given in code is not sent."""

from __future__ import annotations

import json
import warnings

import pytest
from chains import qa_chain, qa_prompt
from conftest import chain_module, run_cli
from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import RunnableSerializable
from leak_cases import ENV_KEY, KEY, model, refused
from openai_server import FakeOpenAI
from pydantic import SecretStr

import llmstep
from llmstep.compiler import leaks

# ---------------------------------------------------------------- by place, LangChain JSON


def test_secret_in_default_headers_never_in_yaml(env_key):
    message = refused(qa_prompt() | model(default_headers={"X-Api-Key": KEY}) | StrOutputParser())
    assert "chain.steps[1].default_headers['X-Api-Key']: a header named like a credential" in message
    assert "llmstep.Step(runnable, secrets=" in message and "kubectl create secret generic llm-credentials" in message
    assert KEY not in message  # the error names the place, never the value


def test_authorization_value_in_any_header_never_in_yaml(env_key):
    message = refused(model(default_headers={"X-Gateway": f"Bearer {KEY}"}))
    assert "chain.default_headers['X-Gateway']: a header holding credentials" in message


def test_secret_in_default_query_never_in_yaml(env_key):
    message = refused(qa_prompt() | model(default_query={"api-version": "2024-06-01", "key": KEY}))
    assert "chain.steps[1].default_query['key']: a query parameter named like a credential" in message
    assert "api-version" not in message


def test_secret_in_model_kwargs_never_in_yaml(env_key):
    message = refused(qa_prompt() | model(model_kwargs={"user": "someone", "vendor": {"client_secret": KEY}}))
    assert "chain.steps[1].model_kwargs['vendor']['client_secret']: a value named like a credential" in message


def test_password_in_a_url_never_in_yaml(env_key):
    message = refused(model(base_url="http://gateway:hunter2-test@127.0.0.1:9/v1"))
    assert "chain.openai_api_base: a URL with a password" in message


def test_secret_in_a_step_wrapping_a_chain_is_named_by_its_path(env_key):
    chain = qa_prompt() | llmstep.Step(model(default_headers={"Authorization": KEY}) | StrOutputParser())
    assert "chain.steps[1].first.default_headers['Authorization']" in refused(chain)


# ---------------------------------------------------------------- by place: a SecretStr LangChain cannot record


class _Gateway(RunnableSerializable):
    """A LangChain object with a SecretStr field it does not declare in lc_secrets."""

    gateway_token: SecretStr

    def invoke(self, input, config=None, **kwargs):  # Runnable's signature
        return input


@pytest.mark.parametrize("allow_pickle", [False, True])
def test_secretstr_that_langchain_cannot_record_is_refused_by_its_path(allow_pickle):
    message = refused(qa_prompt() | _Gateway(gateway_token=SecretStr(KEY)), allow_pickle=allow_pickle)
    assert "chain.steps[1].gateway_token: a SecretStr that LangChain does not record by id" in message
    assert "lc_secrets" in message


# ---------------------------------------------------------------- by value: the environment


@pytest.mark.parametrize(
    "name", ["OPENAI_API_KEY", "GITHUB_TOKEN", "DB_PASSWORD", "OAUTH_CLIENT_SECRET", "STRIPE_KEY", "MYSQL_PWD"]
)
def test_value_of_a_secret_named_environment_variable_never_in_yaml(monkeypatch, name):
    monkeypatch.setenv(name, "value-test-0123456789")
    chain = qa_prompt().partial(question="ask with value-test-0123456789 inside") | qa_chain()
    message = refused(chain)
    assert f"chain.steps[0].partial_variables['question']: the value of the environment variable {name}" in message
    assert f"secrets=[{name!r}]" in message


def test_environment_value_anywhere_in_the_payload_bytes_is_refused(monkeypatch):
    # a dict key is no place a name rule looks: the last net over the payload text finds it
    monkeypatch.setenv("ACME_API_KEY", "acme-test-key-0123456789")
    monkeypatch.setenv("OPENAI_API_KEY", ENV_KEY)
    message = refused(model(default_headers={"acme-test-key-0123456789": "x"}))
    assert "its serialized payload contains the value of the environment variable ACME_API_KEY" in message


def test_key_given_in_code_elsewhere_in_the_payload_is_refused():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", llmstep.CredentialsWarning)
        message = refused(model(api_key=KEY, default_headers={"X-Trace": KEY}))
    assert "its serialized payload contains the key given in code at chain.openai_api_key" in message


def test_short_or_ordinary_environment_values_are_not_secrets(monkeypatch):
    monkeypatch.setenv("SOME_KEY", "1")
    monkeypatch.setenv("PWD", "/srv/project-dir-0123")  # the shell's working directory
    assert leaks.secret_env({"SOME_KEY": "1", "PWD": "/srv/project-dir-0123", "HOME": "/srv/home-0123456"}) == {}
    llmstep.compile(qa_prompt().partial(question="/srv/project-dir-0123 is where 1 lives") | qa_chain())


def test_ordinary_fields_are_not_mistaken_for_secrets(env_key):
    chain = qa_prompt() | model(
        max_tokens=10,
        tiktoken_model_name="gpt-4o",
        default_headers={"X-Request-Source": "llmstep", "X-Title": "token counter app"},
        default_query={"api-version": "2024-06-01"},
        model_kwargs={"user": "someone"},
    )
    llmstep.compile(chain)
    for name in [
        "max_tokens",
        "bos_token",
        "input_key",
        "memory_key",
        "secret_name",
        "token_url",
        "api_key_env",
        "tiktoken_model_name",
    ]:
        assert not leaks.secret_name(name), name
    for name in [
        "api_key",
        "X-Api-Key",
        "Authorization",
        "client_secret",
        "DB_PASSWORD",
        "accessToken",
        "Ocp-Apim-Subscription-Key",
        "aws_secret_access_key",
        "x-goog-api-key",
    ]:
        assert leaks.secret_name(name), name


# ---------------------------------------------------------------- the way through the Secret


@pytest.mark.parametrize("engine", ["argo", "tekton"])
def test_step_secrets_record_a_header_by_id_and_the_step_reads_it_from_the_secret(
    tmp_path, monkeypatch, env_key, engine
):
    monkeypatch.setenv("ACME_API_KEY", "acme-test-compile-0123456789")
    with FakeOpenAI() as server:
        llm = model(
            base_url=server.url, max_retries=0, default_headers={"X-Api-Key": "acme-test-compile-0123456789"}
        )  # os.environ["ACME_API_KEY"]
        compiled = llmstep.compile(qa_prompt() | llmstep.Step(llm, secrets=["ACME_API_KEY"]) | StrOutputParser())
        step = compiled.plan.steps[1]
        assert step.secrets == ("ACME_API_KEY", "OPENAI_API_KEY")
        assert step.payload["data"]["kwargs"]["default_headers"] == {
            "X-Api-Key": {"lc": 1, "type": "secret", "id": ["ACME_API_KEY"]}
        }
        text = compiled.to_yaml() if engine == "argo" else compiled.to_tekton_yaml()
        assert "acme-test-compile-0123456789" not in text and "ACME_API_KEY" in text
        out = compiled.run_local(
            {"question": "hi"},
            runs_dir=tmp_path / "r",
            engine=engine,
            secrets={"OPENAI_API_KEY": "sk-test-from-secret", "ACME_API_KEY": "acme-test-from-secret"},
        )
    assert out == "echo: hi"
    assert server.requests[0]["headers"]["x-api-key"] == "acme-test-from-secret"
    everything = "".join(p.read_text(errors="ignore") for p in (tmp_path / "r").rglob("*") if p.is_file())
    assert "acme-test" not in everything


# ---------------------------------------------------------------- a key given in code


def test_key_given_in_code_is_a_credentials_warning_naming_the_secret():
    with pytest.warns(llmstep.CredentialsWarning) as caught:
        plan = llmstep.compile(qa_prompt() | model(api_key=KEY), secret="team-llm").plan
    [warning] = caught.list
    text = str(warning.message)
    assert "chain.steps[1].openai_api_key (ChatOpenAI) is not sent" in text
    assert "kubectl create secret generic team-llm --from-literal=OPENAI_API_KEY=..." in text
    assert "exit 3" in text  # nothing in this environment: a local run would stop
    assert warning.filename == __file__  # points at the user's compile() call
    assert KEY not in text and KEY not in json.dumps([s.payload for s in plan.steps])


def test_key_given_in_code_over_another_environment_key_says_which_is_used(env_key):
    with pytest.warns(llmstep.CredentialsWarning, match="uses the OPENAI_API_KEY of your environment"):
        llmstep.compile(model(api_key=KEY))


def test_key_from_the_environment_is_no_warning(env_key):
    with warnings.catch_warnings():
        warnings.simplefilter("error", llmstep.CredentialsWarning)
        llmstep.compile(qa_prompt() | model() | StrOutputParser())
        llmstep.compile(model(api_key=ENV_KEY))  # the same key as the environment's


def test_kubernetes_runnable_refuses_a_secret_in_headers_too(env_key):
    with pytest.raises(llmstep.SecretError, match=r"runnable.default_headers\['X-Api-Key'\]"):
        llmstep.KubernetesRunnable(model(default_headers={"X-Api-Key": KEY}))


def test_cli_compile_refuses_a_secret_in_headers_and_writes_nothing(tmp_path):
    ref = chain_module(
        tmp_path,
        f"""
from langchain_openai import ChatOpenAI
from chains import qa_prompt
chain = qa_prompt() | ChatOpenAI(model="m", base_url="http://127.0.0.1:9/v1", default_headers={{"X-Api-Key": {KEY!r}}})
""",
    )
    out = tmp_path / "wf.yaml"
    result = run_cli("compile", f"{ref}:chain", "-o", str(out), cwd=tmp_path, env={"OPENAI_API_KEY": ENV_KEY})
    assert result.returncode == 2, result.stderr
    assert "chain.steps[1].default_headers['X-Api-Key']" in result.stderr and KEY not in result.stderr
    assert not out.exists()


def test_secret_in_diagnose_settings_never_in_yaml():
    message = refused(
        qa_chain(), on_failure=llmstep.Diagnose(provider="compatible", base_url="http://u:pw-test-123@127.0.0.1:9/v1")
    )
    assert "on_failure.base_url: a URL with a password" in message


def test_cli_compile_says_a_key_given_in_code_is_not_sent(tmp_path):
    ref = chain_module(
        tmp_path,
        f"""
from langchain_openai import ChatOpenAI
from chains import qa_prompt
chain = qa_prompt() | ChatOpenAI(model="m", base_url="http://127.0.0.1:9/v1", api_key={KEY!r})
""",
    )
    result = run_cli("compile", f"{ref}:chain", "-o", str(tmp_path / "wf.yaml"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "CredentialsWarning" in result.stderr and "--from-literal=OPENAI_API_KEY=" in result.stderr
    assert KEY not in result.stderr and KEY not in (tmp_path / "wf.yaml").read_text()
