"""llmstep/local/forkserver/protocol.py: one JSON request per connection, answers one line each."""

from __future__ import annotations

import json
import socket
import threading

from llmstep.local.forkserver.protocol import Step, _connect, _send


def test_a_request_is_one_json_line_and_answers_are_read_line_by_line(tmp_path):
    path = str(tmp_path / "s.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    got = {}

    def serve():
        conn, _ = server.accept()
        got["request"] = conn.makefile().readline()
        conn.sendall(b"4242\n")  # the step's pid, then, later, its exit code in two pieces
        conn.sendall(b"3")
        conn.sendall(b"\n")
        conn.close()

    thread = threading.Thread(target=serve)
    thread.start()
    conn = _send(_connect(path), {"argv": ["--data-dir", "/d"], "env": {"A": "1"}})
    step = Step(conn)
    assert step.read_line(timeout=10) == "4242"
    assert step.wait(timeout=10) == 3
    thread.join()
    assert json.loads(got["request"]) == {"argv": ["--data-dir", "/d"], "env": {"A": "1"}}
    server.close()


def test_no_server_no_connection_and_a_silent_one_times_out(tmp_path):
    assert _connect(str(tmp_path / "nobody.sock")) is None
    a, b = socket.socketpair()
    step = Step(a)
    assert step.read_line(timeout=0.05) is None  # nothing yet
    assert step.wait(timeout=0.05) is None
    b.close()
    assert step.read_line(timeout=1) == ""  # the other side left: an empty answer, not a hang
    a.close()


def test_a_closed_connection_cannot_be_sent_to():
    a, b = socket.socketpair()
    b.close()
    a.close()
    assert _send(a, {"check": True}) is None
