"""llmstep.settings: the environment an entry point read, once, as a snapshot passed down: a copy
(later changes do not reach a call under way), ``current()`` reading this process's environment
when called, and the cache directory and local isolation taken from the snapshot, never os.environ."""

from __future__ import annotations

import dataclasses
import os

import pytest

from llmstep.errors import UsageError
from llmstep.settings import Settings


def test_from_environ_copies_and_cannot_be_changed():
    environ = {"XDG_CACHE_HOME": "/cache", "OPENAI_BASE_URL": "http://model"}
    settings = Settings.from_environ(environ)
    environ["XDG_CACHE_HOME"] = "/changed"
    environ["NEW"] = "1"
    assert dict(settings.environ) == {"XDG_CACHE_HOME": "/cache", "OPENAI_BASE_URL": "http://model"}
    with pytest.raises(TypeError):
        settings.environ["X"] = "y"  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.environ = {}  # type: ignore[misc]
    assert dict(Settings().environ) == {}


def test_current_reads_the_environment_when_called(monkeypatch):
    monkeypatch.setenv("LLMSTEP_TEST_SETTING", "before")
    before = Settings.current()
    monkeypatch.setenv("LLMSTEP_TEST_SETTING", "after")
    assert before.environ["LLMSTEP_TEST_SETTING"] == "before"  # a snapshot
    assert Settings.current().environ["LLMSTEP_TEST_SETTING"] == "after"  # read now, not at import
    assert dict(Settings.current().environ) == dict(os.environ)


def test_cache_dir_from_the_snapshot(monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", "/from/os/environ")
    assert Settings.from_environ({"XDG_CACHE_HOME": "/xdg", "HOME": "/home/u"}).cache_dir == "/xdg/llmstep"
    assert Settings.from_environ({"HOME": "/home/u"}).cache_dir == "/home/u/.cache/llmstep"
    assert Settings.from_environ({"XDG_CACHE_HOME": "relative", "HOME": "/home/u"}).cache_dir == ""  # no usable home


def test_isolation_from_the_snapshot_with_the_given_settings(monkeypatch):
    monkeypatch.setenv("LLMSTEP_FORKSERVER_IDLE", "999")
    settings = Settings.from_environ(
        {"LLMSTEP_FORKSERVER_IDLE": "7", "XDG_RUNTIME_DIR": "/run/u", "XDG_CACHE_HOME": "/xdg"}
    )
    isolation = settings.isolation(kind="container", fork=False)
    assert isolation.kind == "container" and isolation.fork is False
    assert isolation.fork_idle == 7 and isolation.runtime_dir == "/run/u" and isolation.cache_dir == "/xdg/llmstep"
    assert settings.isolation(fork_idle=1.5).fork_idle == 1.5  # what the caller gives wins
    with pytest.raises(UsageError, match="LLMSTEP_FORKSERVER_IDLE='soon' is not a number of seconds"):
        Settings.from_environ({"LLMSTEP_FORKSERVER_IDLE": "soon"}).isolation()
