"""Secrets never travel by pickle: compile refuses a pickled step whose closure, globals, defaults,
code literals, attributes or class hold one, naming the place."""

from __future__ import annotations

from chains import qa_prompt
from langchain_core.runnables import Runnable, RunnableLambda
from leak_cases import KEY, model, refused
from pydantic import SecretStr

import llmstep

API_TOKEN = "tok-test-module-global-123456"  # a module global a pickled function refers to


def _closure_runnable():
    headers = {"Authorization": f"Bearer {KEY}", "Accept": "application/json"}

    def call(x):
        return {"sent": headers, "x": x}

    return RunnableLambda(call)


def test_secret_in_a_closure_dict_never_pickled():
    message = refused(qa_prompt() | _closure_runnable(), allow_pickle=True)
    assert "chain.steps[1].func.<closure headers>['Authorization']" in message
    assert "A pickled step cannot carry a secret" in message


def test_secret_in_a_module_global_never_pickled():
    message = refused(RunnableLambda(lambda x: (API_TOKEN, x)), allow_pickle=True)
    assert "chain.func.__globals__['API_TOKEN']: a value named like a credential" in message


def test_secret_in_a_default_argument_never_pickled():
    def call(x, password="pw-test-123456"):
        return x

    assert "chain.func.<default password>" in refused(RunnableLambda(call), allow_pickle=True)


def _post(*args, **kwargs):
    return args, kwargs


class _Client:
    api_key = ""


def test_secret_written_as_a_literal_in_pickled_code_never_pickled():
    def call(x):
        headers = {"Accept": "application/json", "Authorization": f"Bearer {x}"}  # not a literal: fine
        client = _Client()
        client.api_key = "sk-test-attribute-0123456789"
        return _post(x, headers=headers, api_key="sk-test-keyword-0123456789", token="tok-test-0123456789")

    message = refused(RunnableLambda(call), allow_pickle=True)
    assert "chain.func.<code call>['api_key']: a literal given to a name like a credential" in message
    assert "chain.func.<code call>['token']" in message
    assert message.count("a literal given to a name like a credential") == 3  # the attribute too
    assert "['Authorization']" not in message


def test_authorization_literal_in_pickled_code_never_pickled():
    def call(x):
        return _post(x, headers={"X-Gateway": "Bearer sk-test-literal-0123456789"})

    assert "chain.func.<code call><literal>: an authorization header value" in refused(
        RunnableLambda(call), allow_pickle=True
    )


def test_ordinary_literals_in_pickled_code_are_not_secrets():
    def call(x):
        counts = {"max_tokens": 5, "token": x, "model": "gpt-test"}
        label = "token usage: {n}, Bearer of news"
        return _post(x, password=x, url="http://127.0.0.1:9/v1", label=label, counts=counts)

    llmstep.compile(RunnableLambda(call), allow_pickle=True)


class _Holder(Runnable):
    """A custom Runnable (pickled) holding a SecretStr in a field not named api_key."""

    def __init__(self, credential: SecretStr) -> None:
        self.config_map = {"nested": [credential]}

    def invoke(self, input, config=None, **kwargs):  # Runnable's signature
        return input


def test_secretstr_in_any_field_never_pickled():
    message = refused(_Holder(SecretStr(KEY)), allow_pickle=True)
    assert "chain.config_map['nested'][0]: a pydantic SecretStr" in message


def test_model_with_its_key_inside_a_pickled_step_is_refused_with_its_path(env_key):
    llm = model()
    message = refused(RunnableLambda(lambda x: llm.invoke(x)), allow_pickle=True)
    assert "chain.func.<closure llm>: a ChatOpenAI holding its API key" in message


def test_value_of_a_secret_named_environment_variable_never_pickled(monkeypatch):
    monkeypatch.setenv("ACME_TOKEN", "acme-test-0123456789")
    values = ["plain", ("acme-test-0123456789",)]  # no name says it is secret: only its value does
    message = refused(RunnableLambda(lambda x: (values, x)), allow_pickle=True)
    assert "chain.func.<closure values>[1][0]: the value of the environment variable ACME_TOKEN" in message


class _Configured(Runnable):
    """A class of the user's (pickled by value) with a credential as a class attribute."""

    API_TOKEN = "tok-test-class-0123456789"

    def invoke(self, input, config=None, **kwargs):  # Runnable's signature
        return input


def test_secret_in_a_class_attribute_never_pickled():
    assert "chain.__class__.API_TOKEN: a value named like a credential" in refused(_Configured(), allow_pickle=True)


def test_a_deep_object_graph_is_searched_without_recursion_errors():
    deep: list = []
    node = deep
    for _ in range(400):  # deeper than the walk goes, as deep as cloudpickle can
        node.append([])
        node = node[0]
    llmstep.compile(RunnableLambda(lambda x: (deep, x)), allow_pickle=True)
