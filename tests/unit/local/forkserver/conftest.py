"""Fixtures of the fork server's tests: fresh shared servers, a CA bundle, persistent servers' environment."""

from __future__ import annotations

import os
import signal

import pytest
from forkserver_cases import _alive

from llmstep.local import forkserver
from llmstep.local.isolation import IDLE_ENV


@pytest.fixture
def fresh_servers(tmp_path, monkeypatch):
    """No shared server from earlier tests, and a lessons cache of this test's own."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    forkserver._close_shared()
    yield tmp_path / "cache"
    forkserver._close_shared(stop=True)


@pytest.fixture
def bundle(tmp_path, monkeypatch):
    """A CA file, and a step whose environment names no CAs of its own."""
    from llmstep.local.forkserver import tls

    tls.for_step({})
    path = tmp_path / "ca.pem"
    path.write_text("CAs\n")
    yield path
    tls.for_step({})


@pytest.fixture
def persistent(tmp_path):
    """The environment of processes whose fork server outlives them (its own runtime directory
    and lessons), and the cleanup: every server started under it is stopped."""
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "XDG_CACHE_HOME": str(tmp_path / "cache"), IDLE_ENV: "60"}
    servers: list[int] = []
    yield env, servers
    for pid in servers:
        if _alive(pid):
            os.kill(pid, signal.SIGTERM)
