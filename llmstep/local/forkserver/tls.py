"""TLS contexts made once in the server, handed out one each to the first callers in a step."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any

CAs = tuple[str, str] | None
"""The CAs a default context trusts: None for the library's own choice, ``("cafile", path)`` or
``("capath", path)`` for what a step's environment names."""

STEP_CAS: list[CAs] = [None]
"""The CAs this step's environment names: set by :func:`for_step` from the step's request, before
the step runs; a caller that trusts the environment gets a context prepared for these CAs only."""


def step_cas(env: dict[str, str]) -> CAs:
    """The CAs a step's environment names, read as ``httpcore2.default_ssl_context`` reads them:
    ``SSL_CERT_FILE``, else ``SSL_CERT_DIR``."""
    if env.get("SSL_CERT_FILE"):
        return ("cafile", env["SSL_CERT_FILE"])
    if env.get("SSL_CERT_DIR"):
        return ("capath", env["SSL_CERT_DIR"])
    return None


def for_step(env: dict[str, str]) -> None:
    """Tell the prepared contexts about the step that runs in this process (its requested env)."""
    STEP_CAS[0] = step_cas(env)


def prepare_for(env: dict[str, str]) -> None:
    """In the server, before forking a step that asks with ``env``: make the contexts for the CAs
    it names, once per set of CAs, so the step need not. A machine whose environment names its CA
    bundle (``SSL_CERT_FILE``, passed on to every local step) would otherwise pay for two contexts
    in every model step, as if nothing were prepared."""
    make = getattr(sys.modules.get("httpcore2"), "default_ssl_context", None)
    prepare = getattr(make, "prepare", None)
    if prepare is not None:
        prepare(step_cas(env))


TLS_CONTEXTS = 2  # what one ChatOpenAI (or AzureChatOpenAI, OpenAIEmbeddings) builds: its sync and async clients


def _prepare_tls() -> None:
    """Make the TLS contexts of a step's HTTP clients here, once, if the server has imported the
    HTTP library that openai uses (``httpcore2``; steps teach it when they first need it).

    Each context loads the system's CA bundle, about 20 ms of CPU, and a ChatOpenAI step builds
    two before it sends anything, even to a plain-HTTP endpoint: together more than the rest of
    the step's own work. The contexts made here are handed out one each to the first callers in a
    step that ask for the default context: a caller may change what it gets (a client
    certificate), so no context is ever shared. A step whose environment names its own CAs
    (``SSL_CERT_FILE``, ``SSL_CERT_DIR``) gets contexts made for those (:func:`prepare_for`). A
    caller gets a new context as before when it passes other arguments, when the prepared ones are
    used up, or when a CA file has changed since.
    Linux only: OpenSSL's contexts are plain memory that a forked child may use.
    """
    if sys.platform != "linux":  # macOS and Windows: httpcore2 verifies with the system trust store (truststore)
        return
    httpcore2: Any = sys.modules.get("httpcore2")  # a module only when some library imported it
    make = getattr(httpcore2, "default_ssl_context", None)
    if make is None or hasattr(make, "prepared"):
        return
    httpcore2.default_ssl_context = _handing_out(make, TLS_CONTEXTS, _ca_files())


def _ca_files() -> list[str]:
    """The CA files and directories a default context may load: OpenSSL's compiled-in places and
    ``httpcore2``'s own candidates."""
    import ssl

    paths = ssl.get_default_verify_paths()
    candidates = getattr(sys.modules.get("httpcore2._ssl"), "CA_FILE_CANDIDATES", [])
    return [p for p in dict.fromkeys([paths.openssl_cafile, paths.openssl_capath, *candidates]) if p]


def _stamps(paths: list[str]) -> list[tuple[int, int] | None]:
    stamps: list[tuple[int, int] | None] = []
    for path in paths:
        try:
            info = os.stat(path)
            stamps.append((info.st_ino, info.st_mtime_ns))
        except OSError:
            stamps.append(None)
    return stamps


def _context_for(cas: tuple[str, str]) -> Any:
    """A context for the CAs an environment names, as ``httpcore2.default_ssl_context`` makes it
    when ``SSL_CERT_FILE`` (or ``SSL_CERT_DIR``) is set."""
    import ssl

    kind, path = cas
    return ssl.create_default_context(cafile=path) if kind == "cafile" else ssl.create_default_context(capath=path)


def _handing_out(make: Any, count: int, files: list[str], make_for: Any = _context_for) -> Any:
    """``make`` (``httpcore2.default_ssl_context``) with ``count`` of its contexts made now, each
    returned once, to a caller that asks for exactly what was made; ``prepare(cas)`` makes
    ``count`` more for the CAs a step's environment names (with ``make_for``), once per CAs."""
    try:
        ready = [make(_trust_env=False) for _ in range(count)]  # the default when no SSL_CERT_* names other CAs
    except Exception:  # no prepared contexts only costs speed
        return make
    pools: dict[CAs, tuple[list[Any], list[str], list[tuple[int, int] | None]]] = {None: (ready, files, _stamps(files))}

    def prepare(cas: CAs) -> None:
        if cas in pools:
            return
        try:
            made = [make_for(cas) for _ in range(count)]
        except Exception:  # an unusable CA file: the step says so itself
            made = []
        pools[cas] = (made, [cas[1]] if cas else [], _stamps([cas[1]] if cas else []))

    def default_ssl_context(*args: Any, **kwargs: Any) -> Any:
        cas = STEP_CAS[0] if kwargs.get("_trust_env", True) else None
        pool = pools.get(cas)
        if pool and pool[0] and not args and set(kwargs) <= {"_trust_env"} and _stamps(pool[1]) == pool[2]:
            with contextlib.suppress(IndexError):  # another thread took the last one
                return pool[0].pop()
        return make(*args, **kwargs)

    default_ssl_context.prepared = ready  # type: ignore[attr-defined]
    default_ssl_context.prepare = prepare  # type: ignore[attr-defined]
    default_ssl_context.pools = pools  # type: ignore[attr-defined]
    default_ssl_context.__wrapped__ = make  # type: ignore[attr-defined]
    return default_ssl_context
