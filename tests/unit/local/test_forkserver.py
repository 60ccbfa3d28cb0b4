"""The fork server behind local runs: one fork per step, each step its own session with only its
pod's environment, and the server learns the imports steps had to make themselves."""

from __future__ import annotations

import functools
import glob
import json
import os
import shlex
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT, copy_of_llmstep
from langchain_core.runnables import RunnableLambda

import llmstep
from llmstep.local import forkserver


def _imports_minidom(x):
    import xml.dom.minidom  # noqa: F401 - a module no preload list names

    return x


def _report():
    def report(x):
        import os as _os
        import sys as _sys

        with open(f"/proc/{_os.getppid()}/cmdline", "rb") as f:  # noqa: PTH123
            parent = f.read().split(b"\0")
        return {
            "learned": "xml.dom.minidom" in _sys.modules,  # before this step imported anything itself
            "own_session": _os.getsid(0) == _os.getpid(),
            "forked_by_the_server": parent[1:3] == [b"-m", b"llmstep.local.forkserver"],  # server -> step: no waiter between
            "server": _os.getppid(),
            "env": sorted(k for k in _os.environ if k.startswith("LLMSTEP_TEST")),
        }

    return report


@pytest.fixture
def fresh_servers(tmp_path, monkeypatch):
    """No shared server from earlier tests, and a lessons cache of this test's own."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    forkserver._close_shared()
    yield tmp_path / "cache"
    forkserver._close_shared(stop=True)


def _run(chain, tmp_path):
    return llmstep.compile(chain, allow_pickle=True).run_local({"q": 1}, runs_dir=tmp_path / "r")


def test_a_step_without_a_lesson_imports_for_itself(tmp_path, fresh_servers):
    out = _run(RunnableLambda(_report()), tmp_path)  # the control: nothing imported minidom before
    assert out["learned"] is False and out["forked_by_the_server"] is True


def test_steps_fork_once_from_a_server_that_learns_and_remembers_their_imports(tmp_path, fresh_servers, monkeypatch):
    monkeypatch.setenv("LLMSTEP_TEST_NOT_FOR_STEPS", "caller-only")
    chain = RunnableLambda(_imports_minidom) | RunnableLambda(_report())
    first = _run(chain, tmp_path)
    assert {k: v for k, v in first.items() if k != "server"} == {
        "learned": True, "own_session": True, "forked_by_the_server": True, "env": []}  # fmt: skip
    [lessons] = fresh_servers.joinpath("llmstep").iterdir()
    assert "xml.dom.minidom" in lessons.read_text().split()
    again = _run(chain, tmp_path)
    assert again["server"] == first["server"]  # the next run in this process finds the server warm
    forkserver._close_shared(stop=True)  # a new server, taught by the lessons file
    fresh = _run(RunnableLambda(_report()), tmp_path)
    assert fresh["server"] != first["server"] and fresh["learned"] is True


def _what_the_server_did_before_the_fork(x):
    import platform

    import llmstep.cli.main

    # platform.platform() runs `uname -p` in a subprocess the first time; the parser is built once
    return {"platform_known": bool(platform._platform_cache), "parser_reused": llmstep.cli.main._parser.cache_info().hits > 0}


def test_steps_inherit_work_the_server_did_once(tmp_path, fresh_servers):
    assert _run(RunnableLambda(_what_the_server_did_before_the_fork), tmp_path) == {
        "platform_known": True, "parser_reused": True}  # fmt: skip


def _tls_contexts(x):
    import ssl

    import httpcore2  # openai's HTTP library; the first run teaches the server to import it

    fn = httpcore2.default_ssl_context
    prepared = len(getattr(fn, "prepared", []))
    contexts = [httpcore2.default_ssl_context() for _ in range(prepared + 1)]
    fresh = getattr(fn, "__wrapped__", fn)()
    return {
        "prepared": prepared,
        "distinct": len({id(c) for c in contexts}) == len(contexts),  # one caller each: a caller may change its context
        "same_trust": all(c.verify_mode == ssl.CERT_REQUIRED and c.check_hostname
                          and c.cert_store_stats() == fresh.cert_store_stats() for c in contexts),
    }


def test_model_steps_get_tls_contexts_the_server_made_before_the_fork(tmp_path, fresh_servers):
    pytest.importorskip("httpcore2", reason="the installed openai does not use httpcore2")
    first = _run(RunnableLambda(_tls_contexts), tmp_path)
    assert first == {"prepared": 0, "distinct": True, "same_trust": True}  # the control: nothing was prepared before the lesson
    learned = _run(RunnableLambda(_tls_contexts), tmp_path)  # the same server, which imported httpcore2 after step one
    assert learned == {**first, "prepared": forkserver.TLS_CONTEXTS}
    forkserver._close_shared(stop=True)
    assert _run(RunnableLambda(_tls_contexts), tmp_path) == learned  # a new server, taught by the lessons file


class _Contexts:
    """Stands in for ``httpcore2.default_ssl_context``: counts what it makes, and with which flag."""

    def __init__(self):
        self.made = []

    def __call__(self, *args, _trust_env=True, **kwargs):
        self.made.append((args, _trust_env, kwargs))
        return object()


@pytest.fixture
def bundle(tmp_path, monkeypatch):
    """A CA file, and an environment that names no CAs of its own."""
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    path = tmp_path / "ca.pem"
    path.write_text("CAs\n")
    return path


def test_a_prepared_tls_context_goes_to_one_caller_asking_for_the_default(tmp_path, bundle):
    make = _Contexts()
    handing = forkserver._handing_out(make, 2, [str(bundle), str(tmp_path / "absent")])
    assert make.made == [((), False, {}), ((), False, {})]  # made at once, ignoring this process's environment
    first, second = handing(), handing(_trust_env=True)
    assert first is not second and len(make.made) == 2
    handing()  # used up: made afresh, as without a server
    assert make.made[-1] == ((), True, {})


@pytest.mark.parametrize("case", ["own CA file", "own CA directory", "other arguments", "changed CA file"])
def test_a_caller_gets_a_new_tls_context_when_the_prepared_ones_may_differ(tmp_path, monkeypatch, bundle, case):
    make = _Contexts()
    handing = forkserver._handing_out(make, 2, [str(bundle)])
    args: tuple = ()
    if case == "own CA file":
        monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    elif case == "own CA directory":
        monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))
    elif case == "other arguments":
        args = ("verify",)
    else:
        bundle.write_text("CAs, one more\n")
        os.utime(bundle, ns=(1, 1))
    handing(*args)
    assert len(make.made) == 3 and len(handing.prepared) == 2
    if case.startswith("own"):  # a caller that ignores the environment asks for what was prepared
        handing(_trust_env=False)
        assert len(make.made) == 3 and len(handing.prepared) == 1


def test_a_tls_context_that_cannot_be_made_leaves_the_library_as_it_was():
    def broken(**kwargs):
        raise OSError("no CA bundle")

    assert forkserver._handing_out(broken, 2, []) is broken


def test_only_installed_libraries_are_learned(tmp_path, fresh_servers):
    (tmp_path / "myproject_helpers.py").write_text("VALUE = 1\n")

    def uses_project_module(x):
        import sys as _sys

        _sys.path.insert(0, str(tmp_path))
        import myproject_helpers  # noqa: F401 - a project module, found outside site-packages

        return x

    _run(RunnableLambda(uses_project_module) | RunnableLambda(_imports_minidom), tmp_path)
    [lessons] = fresh_servers.joinpath("llmstep").iterdir()
    learned = lessons.read_text().split()
    assert "xml.dom.minidom" in learned and "myproject_helpers" not in learned


# A run in a new process, as `llmstep run` or a script would do it: the step says which server forked
# it, and which llmstep it runs. An interpreter given after the runs directory is the one the process
# hands on (to its fork server, and so to its steps).
RUN_IN_A_NEW_PROCESS = r"""
import json, sys
if len(sys.argv) > 2:
    sys.executable = sys.argv[2]
import llmstep
from langchain_core.runnables import RunnableLambda
def report(x):
    import os
    import llmstep
    with open(f"/proc/{os.getppid()}/cmdline", "rb") as f:
        forked = f.read().split(b"\0")[1:3] == [b"-m", b"llmstep.local.forkserver"]
    return [os.getppid(), forked, llmstep.__file__]
print(json.dumps(llmstep.compile(RunnableLambda(report), allow_pickle=True).run_local(1, runs_dir=sys.argv[1])))
"""


def _server_of_a_new_process(tmp_path, env, python: str | None = None, runs: str | None = None) -> int:
    """The pid of the fork server that forked the step of a run in a new process; with ``python``,
    the interpreter that process hands on, and ``runs``, the llmstep file its step must run."""
    result = subprocess.run([sys.executable, "-c", RUN_IN_A_NEW_PROCESS, str(tmp_path / "runs"), *filter(None, [python])],
                            env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    server, forked, imported = json.loads(result.stdout.strip().splitlines()[-1])
    assert forked, "the step was started cold, not forked by a server"
    assert runs is None or imported == runs, imported
    return server


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:  # noqa: PTH123
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not _alive(pid)


@pytest.fixture
def persistent(tmp_path):
    """The environment of processes whose fork server outlives them (its own runtime directory
    and lessons), and the cleanup: every server started under it is stopped."""
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "XDG_CACHE_HOME": str(tmp_path / "cache"),
           forkserver.IDLE_ENV: "60"}  # fmt: skip
    servers: list[int] = []
    yield env, servers
    for pid in servers:
        if _alive(pid):
            os.kill(pid, signal.SIGTERM)


def test_a_server_outlives_its_process_and_serves_the_next_ones(tmp_path, persistent):
    env, servers = persistent
    first = _server_of_a_new_process(tmp_path, env)
    servers.append(first)
    assert _alive(first)  # the process that started it has exited
    assert _server_of_a_new_process(tmp_path, env) == first == _server_of_a_new_process(tmp_path, env)
    [socket_file] = (tmp_path / "runtime" / f"llmstep-{os.getuid()}").glob("*.sock")
    assert oct(socket_file.parent.stat().st_mode & 0o777) == "0o700"


def test_a_changed_module_file_retires_the_server(tmp_path, persistent):
    env, servers = persistent
    # This test's processes, their fork servers and steps run a copy of llmstep, whose file it edits:
    # the repository's files (which every other session's servers go by) stay as they are.
    source = copy_of_llmstep(tmp_path / "src")
    python = tmp_path / "python"  # the interpreter the runs hand on, with the copy first on its path
    python.write_text(f"#!/bin/sh\nPYTHONPATH={shlex.quote(str(source))} exec {shlex.quote(sys.executable)} \"$@\"\n")
    python.chmod(0o755)
    env = {**env, "PYTHONPATH": str(source)}
    run = functools.partial(_server_of_a_new_process, tmp_path, env, str(python), str(source / "llmstep" / "__init__.py"))
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
    pid = _server_of_a_new_process(tmp_path, {**env, forkserver.IDLE_ENV: "1"})
    servers.append(pid)
    assert _gone_within(pid, 15)
    assert not list((tmp_path / "runtime" / f"llmstep-{os.getuid()}").glob("*.sock"))


def test_without_an_idle_time_the_server_ends_with_its_process(tmp_path, persistent):
    env, servers = persistent
    pid = _server_of_a_new_process(tmp_path, {**env, forkserver.IDLE_ENV: "0"})
    servers.append(pid)
    assert _gone_within(pid, 10)


def test_a_runtime_directory_others_can_read_is_not_used(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    (tmp_path / f"llmstep-{os.getuid()}").mkdir(mode=0o755)
    os.chmod(tmp_path / f"llmstep-{os.getuid()}", 0o755)
    assert forkserver.runtime_dir() is None
    os.chmod(tmp_path / f"llmstep-{os.getuid()}", 0o700)
    assert forkserver.runtime_dir() == str(tmp_path / f"llmstep-{os.getuid()}")


@pytest.mark.parametrize("value", ["soon", "-1", "nan", "inf"])
def test_a_bad_idle_time_is_refused_naming_the_variable(tmp_path, monkeypatch, value):
    monkeypatch.setenv(forkserver.IDLE_ENV, value)
    with pytest.raises(llmstep.WorkflowError, match=f"LLMSTEP_FORKSERVER_IDLE='{value}' is not a number of seconds"):
        llmstep.compile(RunnableLambda(lambda x: x), allow_pickle=True).run_local(1, runs_dir=tmp_path / "r")


CLIENT_DIES_DURING_START_UP = r"""
import os
from llmstep.local import forkserver
server = forkserver.ForkServer(forkserver.preload_for([["langchain_openai", "chat_models", "ChatOpenAI"]]), idle=0)
pid = server._started.pid
server._listened()  # it listens, and now imports LangChain
print(pid, flush=True)
os._exit(0)  # while the server still imports
"""


def test_a_server_whose_client_dies_during_its_start_up_ends(tmp_path, persistent):
    env, servers = persistent
    result = subprocess.run([sys.executable, "-c", CLIENT_DIES_DURING_START_UP], env=env, capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    pid = int(result.stdout.strip())
    servers.append(pid)
    assert _gone_within(pid, 30)  # not adopted by init for good


RUN_WITH_CLASSES = r"""
import sys, llmstep
sys.path.insert(0, sys.argv[2])
from chains import qa_prompt
from langchain_core.output_parsers import StrOutputParser
from llmstep.offline import OfflineChatModel
chains = [qa_prompt(), OfflineChatModel(), StrOutputParser(), qa_prompt() | OfflineChatModel()]
chain = chains[int(sys.argv[3])]
print(llmstep.compile(chain).run_local({"question": "q"} if int(sys.argv[3]) in (0, 3) else "q", runs_dir=sys.argv[1]))
"""


def _fork_servers(env, *args):
    return subprocess.run([sys.executable, "-m", "llmstep", "fork-servers", *args], env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip


def test_a_user_has_at_most_a_few_fork_servers(tmp_path, persistent):
    """Each set of payload classes has its own server; seven were once alive at once (500 MiB)."""
    from llmstep.local import forkservers

    env, servers = persistent
    home = str(tmp_path / "runtime" / f"llmstep-{os.getuid()}")
    tests = str(ROOT / "tests")
    for i in range(forkservers.MAX_SERVERS + 1):
        result = subprocess.run([sys.executable, "-c", RUN_WITH_CLASSES, str(tmp_path / "runs"), tests, str(i)],
                                env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
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
