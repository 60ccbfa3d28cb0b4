"""What the server learns from its steps: the library modules a step had to import itself, taught
over a pipe, imported by the server, and kept for the next server."""

from __future__ import annotations

import gc
import importlib
import os
import sys

from llmstep.local.forkserver.tls import _prepare_tls


def _read_lessons(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as f:
            return [line.strip() for line in f if line.strip()]
    except OSError:
        return []


def _keep_lessons(path: str, names: set[str]) -> None:
    """Add ``names`` to the lessons file (written whole, atomically; a failure only costs speed)."""
    if not path or not names:
        return
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("\n".join(sorted(names | set(_read_lessons(path)))) + "\n")
        os.replace(tmp, path)
    except OSError:
        pass


def _learn(fd: int) -> set[str]:
    """Import what finished steps had to import themselves, then freeze it with the rest;
    return the names that imported."""
    data = b""
    try:
        while chunk := os.read(fd, 65536):
            data += chunk
    except BlockingIOError:
        pass
    names = {n for line in data.decode(errors="ignore").splitlines() for n in line.split(",") if n}
    imported = set()
    for name in sorted(names - set(sys.modules)):
        try:
            importlib.import_module(name)
            imported.add(name)
        except Exception:  # a module that will not import here only costs speed
            continue
    if imported:  # a full collection of the server's heap is not free: only when there is news
        _prepare_tls()
        gc.collect()
        gc.freeze()
    return imported


def _library_paths() -> tuple[str, ...]:
    """Where installed libraries live. Only their modules are learned: a project's own modules
    are imported afresh by every step, so an edit between runs is never hidden by a server that
    imported the old version."""
    import sysconfig

    return tuple({p for k, p in sysconfig.get_paths().items() if k in ("stdlib", "platstdlib", "purelib", "platlib")})


def _teach(fd: int, before: set[str], libraries: tuple[str, ...]) -> None:
    """Tell the server which library modules this step imported (lines under PIPE_BUF, so
    each write is atomic; a full pipe drops the lesson, which only costs speed)."""
    names = sorted(
        n
        for n in set(sys.modules) - before
        if str(getattr(getattr(sys.modules.get(n), "__spec__", None), "origin", None) or "").startswith(libraries)
    )
    line = ""
    try:
        os.set_blocking(fd, False)
        for name in names:
            if len(line) + len(name) + 2 > 4000:
                os.write(fd, (line + "\n").encode())
                line = ""
            line += name + ","
        if line:
            os.write(fd, (line + "\n").encode())
    except OSError:
        pass
