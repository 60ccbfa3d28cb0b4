"""TLS contexts made once in the server, handed out one each to the first callers in a step."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any

OWN_CAS = [False]
"""Whether this step's environment names its own CAs (``SSL_CERT_FILE``, ``SSL_CERT_DIR``): set by
:func:`for_step` from the step's request, before the step runs; then no prepared context is used."""


def for_step(env: dict[str, str]) -> None:
    """Tell the prepared contexts about the step that runs in this process (its requested env)."""
    OWN_CAS[0] = bool(env.get("SSL_CERT_FILE") or env.get("SSL_CERT_DIR"))


TLS_CONTEXTS = 2  # what one ChatOpenAI (or AzureChatOpenAI, OpenAIEmbeddings) builds: its sync and async clients


def _prepare_tls() -> None:
    """Make the TLS contexts of a step's HTTP clients here, once, if the server has imported the
    HTTP library that openai uses (``httpcore2``; steps teach it when they first need it).

    Each context loads the system's CA bundle, about 20 ms of CPU, and a ChatOpenAI step builds
    two before it sends anything, even to a plain-HTTP endpoint: together more than the rest of
    the step's own work. The contexts made here are handed out one each to the first callers in a
    step that ask for the default context: a caller may change what it gets (a client
    certificate), so no context is ever shared. A caller gets a new context as before when the
    step's environment names its own CAs (``SSL_CERT_FILE``, ``SSL_CERT_DIR``), when it passes
    other arguments, when the prepared ones are used up, or when a CA file has changed since.
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


def _handing_out(make: Any, count: int, files: list[str]) -> Any:
    """``make`` (``httpcore2.default_ssl_context``) with ``count`` of its contexts made now, each
    returned once, to a caller that asks for exactly what was made."""
    try:
        ready = [make(_trust_env=False) for _ in range(count)]  # the default when no SSL_CERT_* names other CAs
    except Exception:  # no prepared contexts only costs speed
        return make
    made = _stamps(files)

    def default_ssl_context(*args: Any, **kwargs: Any) -> Any:
        own = kwargs.get("_trust_env", True) and OWN_CAS[0]
        if ready and not args and set(kwargs) <= {"_trust_env"} and not own and _stamps(files) == made:
            with contextlib.suppress(IndexError):  # another thread took the last one
                return ready.pop()
        return make(*args, **kwargs)

    default_ssl_context.prepared = ready  # type: ignore[attr-defined]
    default_ssl_context.__wrapped__ = make  # type: ignore[attr-defined]
    return default_ssl_context
