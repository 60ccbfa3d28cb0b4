"""What llmstep keeps between processes in the user's cache directory (``$XDG_CACHE_HOME/llmstep``,
default ``~/.cache/llmstep``): the fork server's lessons, and rendered Argo Workflows.

A rendered Workflow is kept so that a run in a new process (``llmstep run``, a script) need not
import Hera, about 0.4 s, to render a chain it has rendered before. An entry's key covers
everything the rendering depends on: the plan's repr (every field the renderer reads), the batch
width, the Python version, and the modification times of llmstep's own modules and of the Hera
and pydantic packages (an edit or an upgrade makes a new key). The cache is read and written only
while this process has not imported Hera: a process that has may have set Hera's global
defaults, and renders afresh. Nothing secret is in a Workflow; entries are JSON, and the newest
``KEEP`` are kept.
"""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llmstep.plan import Plan

KEEP = 200


def user_dir() -> str:
    """``$XDG_CACHE_HOME/llmstep`` (default ``~/.cache/llmstep``); "" without a usable home."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "llmstep") if os.path.isabs(base) else ""


def argo_dict(plan: Plan, batch: int | None = None) -> dict[str, Any]:
    """``render.argo.render_dict(plan, batch)``, from the cache when it holds this rendering."""
    path = _entry(plan, batch)
    if path:
        try:
            with open(path, encoding="utf-8") as f:  # noqa: PTH123
                return json.load(f)
        except (OSError, ValueError):
            pass
    from llmstep.render.argo import render_dict

    doc = render_dict(plan, batch)
    if path:
        _keep(path, doc)
    return doc


def _entry(plan: Plan, batch: int | None) -> str:
    """The cache file for this rendering; "" when the cache is not to be used."""
    import hashlib
    from importlib.util import find_spec

    folder = user_dir()
    if not folder or "hera" in sys.modules:
        return ""
    stamps = []
    try:
        for package in ("hera", "pydantic", "pydantic_core"):
            spec = find_spec(package)
            if spec is None or not spec.origin:
                return ""
            stamps.append((spec.origin, os.stat(spec.origin).st_mtime_ns))
        here = os.path.dirname(os.path.abspath(__file__))
        for root, _, names in os.walk(here):
            stamps += [(os.path.join(root, n), os.stat(os.path.join(root, n)).st_mtime_ns) for n in names if n.endswith(".py")]
    except OSError:
        return ""
    digest = hashlib.sha256(repr((plan, batch, sys.version, sorted(stamps))).encode()).hexdigest()
    return os.path.join(folder, "render", f"argo-{digest[:32]}.json")


def _keep(path: str, doc: dict[str, Any]) -> None:
    """Write an entry (whole, atomically) and drop the oldest beyond ``KEEP``; a failure only costs speed."""
    folder = os.path.dirname(path)
    try:
        os.makedirs(folder, exist_ok=True)
        tmp = f"{path}.{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:  # noqa: PTH123
            json.dump(doc, f, separators=(",", ":"))
        os.replace(tmp, path)
        entries = sorted(os.scandir(folder), key=lambda e: e.stat().st_mtime_ns)
        for old in entries[:-KEEP]:
            os.unlink(old.path)
    except OSError:
        pass
