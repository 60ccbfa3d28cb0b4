"""The fork server's client (llmstep/local/forkserver/client.py): a persistent server found by the next
processes, one that ends with its process, and the idle time it is given."""

from __future__ import annotations

import os

import pytest
from forkserver_cases import _alive, _gone_within, _server_of_a_new_process
from langchain_core.runnables import RunnableLambda

import llmstep
from llmstep.local.isolation import IDLE_ENV


def test_a_server_outlives_its_process_and_serves_the_next_ones(tmp_path, persistent):
    env, servers = persistent
    first = _server_of_a_new_process(tmp_path, env)
    servers.append(first)
    assert _alive(first)  # the process that started it has exited
    assert _server_of_a_new_process(tmp_path, env) == first == _server_of_a_new_process(tmp_path, env)
    [socket_file] = (tmp_path / "runtime" / f"llmstep-{os.getuid()}").glob("*.sock")
    assert oct(socket_file.parent.stat().st_mode & 0o777) == "0o700"


def test_without_an_idle_time_the_server_ends_with_its_process(tmp_path, persistent):
    env, servers = persistent
    pid = _server_of_a_new_process(tmp_path, {**env, IDLE_ENV: "0"})
    servers.append(pid)
    assert _gone_within(pid, 10)


@pytest.mark.parametrize("value", ["soon", "-1", "nan", "inf"])
def test_a_bad_idle_time_is_refused_naming_the_variable(tmp_path, monkeypatch, value):
    monkeypatch.setenv(IDLE_ENV, value)
    with pytest.raises(llmstep.UsageError, match=f"LLMSTEP_FORKSERVER_IDLE='{value}' is not a number of seconds"):
        llmstep.compile(RunnableLambda(lambda x: x), allow_pickle=True).run_local(1, runs_dir=tmp_path / "r")
