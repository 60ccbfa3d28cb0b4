"""Shared helpers of the fork server's tests (tests/unit/local/forkserver/): chains whose steps report
what their process is, runs in new processes, and process checks."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import llmstep


def _imports_minidom(x):
    import xml.dom.minidom  # noqa: F401 - a module no preload list names

    return x


def _report():
    def report(x):
        import os as _os
        import sys as _sys

        with open(f"/proc/{_os.getppid()}/cmdline", "rb") as f:
            parent = f.read().split(b"\0")
        return {
            "learned": "xml.dom.minidom" in _sys.modules,  # before this step imported anything itself
            "own_session": _os.getsid(0) == _os.getpid(),
            "forked_by_the_server": parent[1:3]
            == [b"-m", b"llmstep.local.forkserver"],  # server -> step: no waiter between
            "server": _os.getppid(),
            "env": sorted(k for k in _os.environ if k.startswith("LLMSTEP_TEST")),
        }

    return report


def _run(chain, tmp_path):
    return llmstep.compile(chain, allow_pickle=True).run_local({"q": 1}, runs_dir=tmp_path / "r")


def _what_the_server_did_before_the_fork(x):
    import platform
    import sys

    import llmstep.executor.main

    # platform.platform() runs `uname -p` in a subprocess the first time; the parser is built once;
    # the server runs steps through llmstep exec's own entry point, never the command line
    return {
        "platform_known": bool(platform._platform_cache),
        "parser_reused": llmstep.executor.main.parser.cache_info().hits > 0,
        "cli_imported": "llmstep.cli.main" in sys.modules,
    }


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
        "same_trust": all(
            c.verify_mode == ssl.CERT_REQUIRED and c.check_hostname and c.cert_store_stats() == fresh.cert_store_stats()
            for c in contexts
        ),
    }


def _tls_contexts_for_own_cas(x):
    """In a step whose environment names its CA file: what the first caller that trusts the
    environment gets, against the contexts the server prepared for that file."""
    import os
    import ssl

    import httpcore2

    fn = httpcore2.default_ssl_context
    cas = ("cafile", os.environ["SSL_CERT_FILE"])
    pool = getattr(fn, "pools", {}).get(cas, ([],))[0]
    before = len(pool)
    context = httpcore2.default_ssl_context()
    own = ssl.create_default_context(cafile=cas[1])
    return {
        "prepared": before,
        "taken": before - len(pool),
        "trusts_own": context.cert_store_stats() == own.cert_store_stats() and context.verify_mode == ssl.CERT_REQUIRED,
    }


class _Contexts:
    """Stands in for ``httpcore2.default_ssl_context``: counts what it makes, and with which flag."""

    def __init__(self):
        self.made = []

    def __call__(self, *args, _trust_env=True, **kwargs):
        self.made.append((args, _trust_env, kwargs))
        return object()


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
    result = subprocess.run(
        [sys.executable, "-c", RUN_IN_A_NEW_PROCESS, str(tmp_path / "runs"), *filter(None, [python])],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    server, forked, imported = json.loads(result.stdout.strip().splitlines()[-1])
    assert forked, "the step was started cold, not forked by a server"
    assert runs is None or imported == runs, imported
    return server


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not _alive(pid)


CLIENT_DIES_DURING_START_UP = r"""
import os
from llmstep.local import forkserver
server = forkserver.ForkServer(forkserver.preload_for([["langchain_openai", "chat_models", "ChatOpenAI"]]), idle=0)
pid = server._started.pid
server._listened()  # it listens, and now imports LangChain
print(pid, flush=True)
os._exit(0)  # while the server still imports
"""


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
    return subprocess.run(
        [sys.executable, "-m", "llmstep", "fork-servers", *args], env=env, capture_output=True, text=True, timeout=60
    )
