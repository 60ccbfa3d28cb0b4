"""What a step starts ends with it, as the processes of a container end with its main process.

A Runnable may start processes of its own (a tool's server, a helper left in the background); one
that detaches (a double fork, ``setsid``) leaves the step's process group, so stopping the group
misses it, and on this machine it would outlive the run. The step's process makes itself the
*subreaper* of its descendants (Linux's ``PR_SET_CHILD_SUBREAPER``): an orphan among them is
re-parented to it rather than to init, so when the step ends it finds every process it left and
stops them (TERM, a grace period, KILL). Nothing here runs unless a process was left: the check
for one is a single ``waitpid``.
"""

from __future__ import annotations

import os
import signal
import sys
import time

PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h


def adopt_orphans() -> bool:
    """Make this process the subreaper of its descendants; False where the system has none."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def end_descendants(grace: float = 2.0) -> int:
    """Stop every process this one left running (its descendants, orphans re-parented to it
    included) and reap them; how many there were."""
    if not _reap():
        return 0  # no child at all: nothing was left
    found = 0
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = descendants(os.getpid())
        found = max(found, len(pids))
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while _reap() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not descendants(os.getpid()):
            break
    _reap()
    return found


def on_term(signum: int, frame: object) -> None:
    """SIGTERM's handler in a step's process: its descendants stop with it (a detached one would
    otherwise pass to init once the step is gone), then it ends as SIGTERM ends a process."""
    end_descendants(grace=0.5)
    os._exit(128 + signum)


def descendants(root: int) -> list[int]:
    """The live descendants of ``root``, read from /proc (children before their children)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue  # it ended while we looked
        fields = stat[stat.rfind(b")") + 2 :].split()  # the name, in parentheses, may hold spaces
        if fields[0] == b"Z":
            continue  # a zombie is dead already: reaping it is all it needs
        parents.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [root]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _reap() -> bool:
    """Reap the children that have ended; True while any child remains."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return False
        if pid == 0:
            return True
