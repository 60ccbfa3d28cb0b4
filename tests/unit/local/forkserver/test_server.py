"""The fork server's loop (llmstep/local/forkserver/server.py): work done once before the fork, staleness,
letting go of its socket, idling out, and ending when its client dies."""

from __future__ import annotations

import functools
import os
import shlex
import subprocess
import sys

from conftest import copy_of_llmstep
from forkserver_cases import (
    CLIENT_DIES_DURING_START_UP,
    _gone_within,
    _run,
    _server_of_a_new_process,
    _what_the_server_did_before_the_fork,
)
from langchain_core.runnables import RunnableLambda

from llmstep.local import forkserver
from llmstep.local.isolation import IDLE_ENV


def test_steps_inherit_work_the_server_did_once(tmp_path, fresh_servers):
    assert _run(RunnableLambda(_what_the_server_did_before_the_fork), tmp_path) == {
        "platform_known": True,
        "parser_reused": True,
        "cli_imported": False,
    }


def test_a_changed_module_file_retires_the_server(tmp_path, persistent):
    env, servers = persistent
    # This test's processes, their fork servers and steps run a copy of llmstep, whose file it edits:
    # the repository's files (which every other session's servers go by) stay as they are.
    source = copy_of_llmstep(tmp_path / "src")
    python = tmp_path / "python"  # the interpreter the runs hand on, with the copy first on its path
    python.write_text(f'#!/bin/sh\nPYTHONPATH={shlex.quote(str(source))} exec {shlex.quote(sys.executable)} "$@"\n')
    python.chmod(0o755)
    env = {**env, "PYTHONPATH": str(source)}
    run = functools.partial(
        _server_of_a_new_process, tmp_path, env, str(python), str(source / "llmstep" / "__init__.py")
    )
    first = run()
    servers.append(first)
    module = source / "llmstep" / "executor" / "step.py"  # imported by every server: an edit to llmstep, or an upgrade
    before = os.stat(module)
    os.utime(module, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))
    second = run()
    servers.append(second)
    assert second != first
    assert _gone_within(first, 10)  # it answered "stale", let go of the socket and ended
    assert run() == second  # ending, it left the new server's socket alone


def test_a_server_that_lets_go_never_removes_a_newer_servers_socket(tmp_path):
    import socket

    path = str(tmp_path / "s.sock")
    old = socket.socket(socket.AF_UNIX)
    old.bind(path)
    info = os.stat(path)
    bound = (info.st_ino, info.st_ctime_ns)
    forkserver._let_go(path, bound)
    assert not os.path.exists(path)
    new = socket.socket(socket.AF_UNIX)
    new.bind(path)  # the file system may give it the old one's inode number
    forkserver._let_go(path, bound)
    assert os.path.exists(path)
    old.close()
    new.close()


def test_an_idle_server_ends_and_removes_its_socket(tmp_path, persistent):
    env, servers = persistent
    pid = _server_of_a_new_process(tmp_path, {**env, IDLE_ENV: "1"})
    servers.append(pid)
    assert _gone_within(pid, 15)
    assert not list((tmp_path / "runtime" / f"llmstep-{os.getuid()}").glob("*.sock"))


def test_a_server_whose_client_dies_during_its_start_up_ends(tmp_path, persistent):
    env, servers = persistent
    result = subprocess.run(
        [sys.executable, "-c", CLIENT_DIES_DURING_START_UP], env=env, capture_output=True, text=True, timeout=60
    )
    pid = int(result.stdout.strip())
    servers.append(pid)
    assert _gone_within(pid, 30)  # not adopted by init for good
