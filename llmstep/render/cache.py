"""What llmstep keeps between processes in the user's cache directory (``$XDG_CACHE_HOME/llmstep``,
default ``~/.cache/llmstep``): the fork server's lessons, and rendered Argo Workflows.

A rendered Workflow is kept so that a run in a new process (``llmstep run``, a script) need not
import Hera, about 0.4 s, to render a chain it has rendered before. An entry's key covers
everything the rendering depends on: the plan's repr (every field the renderer reads), the batch
width, the Python version, the modification times and sizes of every module of the llmstep
package (``source_stamps``: the rendering reads facts from the contract, the plan, serde, the
compiler and the diagnosis settings, not only from ``render/``) and the modification times of the
Hera and pydantic packages (an edit or an upgrade makes a new key). The cache is read and written only
while this process has not imported Hera: a process that has may have set Hera's global
defaults, and renders afresh. Entries are JSON, and the newest ``KEEP`` are kept.

Nothing secret is in a Workflow: compile refuses a chain that holds one (``llmstep.compiler.leaks``), and a
plan built by other means whose payload holds one is rendered but never kept. That check is the
caller's (``Compiled`` asks :func:`llmstep.compiler.leaks.plan_holds_secret`, with the environment it
read): it needs the compiler's rules and the environment, neither of which this layer reads. The
cache is private to the user: folders 0700, entries 0600, and an entry that is not (another
user's, or one written before entries were private) is neither read nor kept.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llmstep.plan import Plan

KEEP = 200


def user_dir(environ: Mapping[str, str]) -> str:
    """``$XDG_CACHE_HOME/llmstep`` (default ``~/.cache/llmstep``) in ``environ``, the environment an
    entry point read; "" without a usable home."""
    home = environ.get("HOME") or os.path.expanduser("~")
    base = environ.get("XDG_CACHE_HOME") or os.path.join(home, ".cache")
    return os.path.join(base, "llmstep") if os.path.isabs(base) else ""


def argo_dict(
    plan: Plan, batch: int | None = None, *, folder: str = "", holds_secret: Callable[[Plan], bool] | None = None
) -> dict[str, Any]:
    """``render.argo.render_dict(plan, batch)``, from the cache in ``folder`` (:func:`user_dir`; "":
    no cache) when it holds this rendering. A new rendering is kept only when ``holds_secret``, the
    caller's check, says the plan holds no secret (without a check, nothing is kept)."""
    path = _entry(plan, batch, folder)
    if path:
        doc = _read(path)
        if doc is not None:
            return doc
    from llmstep.render.argo import render_dict

    doc = render_dict(plan, batch)
    if path and holds_secret is not None and not holds_secret(plan):
        _keep(path, doc)
    return doc


def _read(path: str) -> Any:
    """An entry's document, or None when it is missing, unreadable or not private to this user."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    with os.fdopen(fd, encoding="utf-8") as f:
        try:
            if not _private(os.fstat(fd)):
                return None
            return json.load(f)
        except (OSError, ValueError):
            return None


def _private(st: os.stat_result) -> bool:
    return st.st_uid == os.getuid() and not st.st_mode & 0o077


def _entry(plan: Plan, batch: int | None, folder: str) -> str:
    """The cache file for this rendering in ``folder``; "" when the cache is not to be used."""
    import hashlib
    from importlib.util import find_spec

    if not folder or "hera" in sys.modules:
        return ""
    stamps: list[tuple[str, int] | tuple[str, int, int]] = []
    try:
        for package in ("hera", "pydantic", "pydantic_core"):
            spec = find_spec(package)
            if spec is None or not spec.origin:
                return ""
            stamps.append((spec.origin, os.stat(spec.origin).st_mtime_ns))
        stamps += source_stamps()
    except OSError:
        return ""
    digest = hashlib.sha256(repr((plan, batch, sys.version, sorted(stamps))).encode()).hexdigest()
    return os.path.join(folder, "render", f"argo-{digest[:32]}.json")


def source_stamps() -> list[tuple[str, int, int]]:
    """Path, modification time and size of every module of the llmstep package. The whole package,
    not only ``render/``: the rendering reads facts that live elsewhere (the contract's names, the
    plan's fields, serde's payload text, the compiler's names, the diagnosis settings), and a key
    that missed one of them served a stale Workflow after an edit. Stat calls only: about 100
    files, well under a millisecond each."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    stamps = []
    for root, dirs, names in os.walk(package):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in names:
            if name.endswith(".py"):
                st = os.stat(os.path.join(root, name))
                stamps.append((os.path.join(root, name), st.st_mtime_ns, st.st_size))
    return stamps


def _keep(path: str, doc: dict[str, Any]) -> None:
    """Write an entry (whole, atomically) and drop the oldest beyond ``KEEP``; a failure only costs speed."""
    folder = os.path.dirname(path)
    try:
        for d in (os.path.dirname(folder), folder):
            os.makedirs(d, mode=0o700, exist_ok=True)
            st = os.stat(d)
            if st.st_uid != os.getuid():
                return  # another user's folder: keep nothing there
            if st.st_mode & 0o077:
                os.chmod(d, 0o700)
        tmp = f"{path}.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            os.fchmod(fd, 0o600)  # a leftover tmp file of another mode
            json.dump(doc, f, separators=(",", ":"))
        os.replace(tmp, path)
        entries = sorted(os.scandir(folder), key=lambda e: e.stat().st_mtime_ns)
        for old in entries[:-KEEP] + [e for e in entries[-KEEP:] if e.stat().st_mode & 0o077]:
            os.unlink(old.path)
    except OSError:
        pass
