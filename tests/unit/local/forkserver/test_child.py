"""llmstep/local/forkserver/child.py: a forked step is set up as its pod's process would be (its
own session, stdin from /dev/null, stdout and stderr to its log, its working directory, only its
requested environment), runs the entry point, and exits with its code."""

from __future__ import annotations

import json
import os
import sys

from llmstep.local.forkserver.child import _become_step


def _fork_step(tmp_path, main, env):
    request = {"log": str(tmp_path / "step.log"), "cwd": str(tmp_path), "env": env, "argv": ["--data-dir", "/d"]}
    learned, teach = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child never returns: _become_step ends it with os._exit
        os.close(learned)
        # as in the server, the standard streams are the process's own descriptors (not pytest's capture)
        sys.stdin, sys.stdout, sys.stderr = (
            open(fd, mode, closefd=False) for fd, mode in ((0, "r"), (1, "w"), (2, "w"))
        )
        _become_step(request, main, teach, ())
    os.close(teach)
    _, status = os.waitpid(pid, 0)
    os.close(learned)
    return os.waitstatus_to_exitcode(status)


def _report(argv):
    import sys

    print(
        json.dumps(
            {
                "argv": argv,
                "env": dict(os.environ),
                "cwd": os.getcwd(),
                "own_session": os.getsid(0) == os.getpid(),
                "stdin": sys.stdin.read(),
            }
        )
    )
    return 7


def test_a_step_gets_only_its_request_and_exits_with_its_code(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMSTEP_TEST_NOT_FOR_THE_STEP", "x")
    assert _fork_step(tmp_path, _report, {"PATH": "/bin", "LLMSTEP_TEST_STEP": "1"}) == 7
    seen = json.loads((tmp_path / "step.log").read_text().strip().splitlines()[-1])
    assert seen["argv"] == ["--data-dir", "/d"]
    assert seen["env"] == {"PATH": "/bin", "LLMSTEP_TEST_STEP": "1"}  # nothing of the server's own environment
    assert seen["cwd"] == str(tmp_path) and seen["own_session"] and seen["stdin"] == ""


def test_a_step_that_crashes_reports_it_in_its_log_and_exits_70(tmp_path):
    def crash(argv):
        raise RuntimeError("boom in the step")

    assert _fork_step(tmp_path, crash, {}) == 70
    assert "RuntimeError: boom in the step" in (tmp_path / "step.log").read_text()


def test_a_step_that_exits_keeps_its_code(tmp_path):
    def leave(argv):
        raise SystemExit(2)

    assert _fork_step(tmp_path, leave, {}) == 2
