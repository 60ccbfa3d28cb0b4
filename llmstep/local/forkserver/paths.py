"""Where a user's persistent fork servers keep their sockets, and where their lessons persist."""

from __future__ import annotations

import os
import sys
import tempfile


def runtime_dir(base: str | None = None) -> str | None:
    """The directory for persistent servers' sockets: ``llmstep-<uid>`` under ``base`` (the
    caller's ``$XDG_RUNTIME_DIR``; else the temporary directory), mode 0700. None when it is not
    this user's alone; then each process starts its own server."""
    import stat

    base = base or tempfile.gettempdir()
    path = os.path.join(base, f"llmstep-{os.getuid()}")
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return None
    try:
        info = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        return None
    return path


def lessons_file(key: str, folder: str | None) -> str:
    """Where learned module names persist for runs whose payloads use the same classes (``key``):
    in ``folder``, the user's cache directory (:func:`llmstep.render.cache.user_dir`); empty
    (nothing kept) without one."""
    import hashlib

    from llmstep import __version__

    if not folder:
        return ""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return os.path.join(folder, f"forkserver-imports-py{version}-{__version__}-{digest}.txt")
