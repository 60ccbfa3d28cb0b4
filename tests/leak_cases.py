"""Shared pieces of the secret-leak tests (tests/unit/compiler/test_leaks*.py): placeholder keys, a
model that would carry one, and the refusal a chain that holds one gets."""

from __future__ import annotations

import pytest

import llmstep

KEY = "sk-test-leak-0123456789abcdef"
ENV_KEY = "sk-test-env-9876543210fedcba"


def model(**kwargs):
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(**{"model": "gpt-test", "base_url": "http://127.0.0.1:9/v1", **kwargs})


def refused(chain, **compile_kwargs) -> str:
    with pytest.raises(llmstep.SecretError) as err:
        llmstep.compile(chain, **compile_kwargs)
    assert isinstance(err.value, llmstep.CompileError)
    return str(err.value)
