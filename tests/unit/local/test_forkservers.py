"""The user's fork servers as `llmstep fork-servers` sees them: a server describes itself beside its
socket, and what no server stands behind any more (a socket nobody listens on, a description
without a socket) is removed when they are listed."""

from __future__ import annotations

import json
import os
import socket

from llmstep.local import forkservers


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
