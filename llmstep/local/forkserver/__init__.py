"""A fork server for local step processes: pay LangChain's import cost once, not once per step.

A cold ``llmstep exec`` spends most of its time importing LangChain. The server is started by
the first local run that needs it, with a minimal environment (never the caller's), imports what
the runs' payloads need, and then forks one process per step. It outlives that run (see
:class:`ForkServer`): later runs of any process of the user find it warm, until it has been idle
for its idle time (``LLMSTEP_FORKSERVER_IDLE``, read by the caller) or a module file it imported changes. Each step process is what the pod's process
would be: its own session, stdin from /dev/null, stdout and stderr to the step's log, its working
directory, *only* the step's environment (the inherited one is cleared), and it runs the very
same command, ``llmstep exec`` with the container's arguments, through its own entry point
(:func:`llmstep.executor.main.main`; the server never builds the rest of the command line).

Protocol (one Unix socket connection per request): a new client first sends ``{"check": true}``
and gets ``fresh`` or ``stale``; for a step it sends ``{"argv": [...], "env": {...}, "cwd": ...,
"log": ...}`` and gets the step's pid, then its exit code, one line each; ``{"stop": true}``
ends the server after its running steps. The server reaps its steps when SIGCHLD wakes its loop, so it
never starts a thread (forking a threaded process is unsafe) and forks once per step.

The server learns: a step that finishes tells it (over a pipe) which modules it had to import
itself, such as an API client's lazily loaded resources, and the server imports them too, so later
steps of the same kind start warm. Only module names cross; nothing of the step's environment.
The names are kept in the user's cache directory (one file per Python and llmstep version), so the
next run's server imports them before its first step.

Work every step would repeat after the fork is done once before it: ``llmstep exec``'s parser, the
machine facts HTTP clients send, and the TLS contexts of openai's HTTP clients (each loads the CA
bundle; see :func:`_prepare_tls`).

The package, by concern: :mod:`.client` (find or start a server, ask it for steps),
:mod:`.protocol` (what client and server say), :mod:`.paths` (where sockets and lessons go),
:mod:`.registry` (which servers are alive; ``llmstep fork-servers``), :mod:`.server` (the loop),
:mod:`.child` (a forked step's set-up), :mod:`.lessons` (what steps teach the server) and
:mod:`.tls` (contexts made before the fork). Nothing here reads the environment: the caller
gives the idle time, the runtime and cache directories (see :class:`llmstep.local.isolation.Isolation`).
"""

from llmstep.local.forkserver.client import ForkServer, _close_shared, preload_for, shared_server
from llmstep.local.forkserver.paths import lessons_file, runtime_dir
from llmstep.local.forkserver.protocol import FRESH, LISTENING, STALE, Step
from llmstep.local.forkserver.server import _let_go
from llmstep.local.forkserver.tls import TLS_CONTEXTS, _handing_out

__all__ = [
    "FRESH",
    "LISTENING",
    "STALE",
    "TLS_CONTEXTS",
    "ForkServer",
    "Step",
    "_close_shared",
    "_handing_out",
    "_let_go",
    "lessons_file",
    "preload_for",
    "runtime_dir",
    "shared_server",
]
