"""Fixtures of the compiler's tests."""

import pytest
from leak_cases import ENV_KEY


@pytest.fixture
def env_key(monkeypatch):
    """OPENAI_API_KEY set at compile time, as for a user who exported it."""
    monkeypatch.setenv("OPENAI_API_KEY", ENV_KEY)
