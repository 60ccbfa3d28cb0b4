"""The user's fork servers as `llmstep fork-servers` sees them: a server describes itself beside its
socket, and what no server stands behind any more (a socket nobody listens on, a description
without a socket) is removed when they are listed."""

from __future__ import annotations

import glob
import json
import os
import signal
import socket
import subprocess
import sys
import time

from conftest import ROOT
from forkserver_cases import RUN_WITH_CLASSES, _alive, _fork_servers, _gone_within, _server_of_a_new_process

from llmstep.local.forkserver import registry as forkservers


def _dead_socket(path):
    """What a server killed with -9 leaves: a socket file that nobody listens on."""
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    s.close()


def test_a_server_describes_itself_and_forgets_only_its_own_description(tmp_path):
    sock = str(tmp_path / "fork-0123456789abcdef.sock")
    forkservers.describe(sock, ["langchain_core.prompts"], 10.0)
    described = tmp_path / "fork-0123456789abcdef.json"
    info = json.loads(described.read_text())
    assert info["pid"] == os.getpid() and info["preload"] == ["langchain_core.prompts"] and info["idle"] == 10.0
    os.utime(described, (1, 1))
    forkservers.used(sock)
    assert described.stat().st_mtime > 1  # last used now
    described.write_text(json.dumps({**info, "pid": info["pid"] + 1}))  # a newer server's, since
    forkservers.forget(sock)
    assert described.exists()
    described.write_text(json.dumps(info))
    forkservers.forget(sock)
    assert not described.exists()


def test_listing_removes_what_no_server_stands_behind(tmp_path):
    _dead_socket(tmp_path / "fork-aaaaaaaaaaaaaaaa.sock")
    (tmp_path / "fork-aaaaaaaaaaaaaaaa.json").write_text(json.dumps({"pid": os.getpid()}))  # a pid, but not a server's
    _dead_socket(tmp_path / "fork-bbbbbbbbbbbbbbbb.sock")  # an older llmstep's server: no description
    (tmp_path / "fork-cccccccccccccccc.json").write_text("{}")  # a description whose socket is gone
    (tmp_path / "other.sock").write_text("")  # not a fork server's name: left alone
    assert forkservers.list_servers(str(tmp_path)) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.sock"]
    assert forkservers.list_servers(None) == [] and forkservers.list_servers("") == []


def test_making_room_with_no_live_server_stops_nothing(tmp_path):
    _dead_socket(tmp_path / "fork-dddddddddddddddd.sock")
    forkservers.make_room(str(tmp_path), limit=1)
    assert list(tmp_path.iterdir()) == []  # the dead socket is cleaned, nothing else happens


def test_a_user_has_at_most_a_few_fork_servers(tmp_path, persistent):
    """Each set of payload classes has its own server; seven were once alive at once (500 MiB)."""
    from llmstep.local.forkserver import registry as forkservers

    env, servers = persistent
    home = str(tmp_path / "runtime" / f"llmstep-{os.getuid()}")
    tests = str(ROOT / "tests")
    for i in range(forkservers.MAX_SERVERS + 1):
        result = subprocess.run(
            [sys.executable, "-c", RUN_WITH_CLASSES, str(tmp_path / "runs"), tests, str(i)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        servers.extend(s.pid for s in forkservers.list_servers(home) if s.pid)
    deadline = time.monotonic() + 15
    while len([p for p in set(servers) if _alive(p)]) > forkservers.MAX_SERVERS and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(set(servers)) == forkservers.MAX_SERVERS + 1  # one per set of classes...
    assert len([p for p in set(servers) if _alive(p)]) <= forkservers.MAX_SERVERS  # ...but not all at once
    assert len(glob.glob(os.path.join(home, "*.sock"))) <= forkservers.MAX_SERVERS


def test_fork_servers_are_listed_and_stopped_from_the_cli_leaving_no_socket(tmp_path, persistent):
    env, servers = persistent
    pid = _server_of_a_new_process(tmp_path, env)
    servers.append(pid)
    listed = _fork_servers(env)
    assert listed.returncode == 0 and str(pid) in listed.stdout, listed.stderr
    stopped = _fork_servers(env, "--stop")
    assert stopped.returncode == 0 and "stopped 1 fork server" in stopped.stdout
    assert _gone_within(pid, 10)
    assert not list((tmp_path / "runtime" / f"llmstep-{os.getuid()}").glob("fork-*"))
    assert "no fork servers" in _fork_servers(env).stdout


def test_stale_fork_server_sockets_are_cleaned(tmp_path, persistent):
    import socket

    env, servers = persistent
    pid = _server_of_a_new_process(tmp_path, env)
    servers.append(pid)
    home = tmp_path / "runtime" / f"llmstep-{os.getuid()}"
    os.kill(pid, signal.SIGTERM)  # a stopped server lets go of its socket
    assert _gone_within(pid, 10)
    assert not list(home.glob("fork-*.sock"))
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(str(home / "fork-0123456789abcdef.sock"))  # what a server killed with -9 leaves
    dead.close()
    (home / "fork-0123456789abcdef.json").write_text(json.dumps({"pid": 2**22 + 1}))
    assert "no fork servers" in _fork_servers(env).stdout
    assert not list(home.glob("fork-*"))
