"""A forked step process: set up as its pod's process would be, then ``llmstep exec``."""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from llmstep.local.forkserver import tls
from llmstep.local.forkserver.lessons import _teach


def _become_step(request: dict[str, Any], main: Any, teach: int, libraries: tuple[str, ...]) -> None:
    code = 70
    before = set(sys.modules)
    try:
        os.setsid()
        null = os.open(os.devnull, os.O_RDONLY)
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        tls.for_step(request["env"])
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        import random

        random.seed()  # forked children must not share a random sequence
        code = main(request["argv"])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # report, then exit like a crashed process
        import traceback

        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
            _teach(teach, before, libraries)
        finally:
            os._exit(code)
