"""Opt-in pickling of Runnables that LangChain cannot serialize (``allow_pickle=True``).

Functions and classes from the user's own code (a script, or a module outside site-packages and
the standard library) travel *by value*, so the step image does not need the user's source.
Objects that hold a secret (``SecretStr``, hence every model client) are refused: they must
travel as LangChain JSON, where secrets are recorded by id.
"""

from __future__ import annotations

import copy
import io
import os
import sys
import sysconfig
import types
from typing import Any

from llmstep.errors import CompileError

# Most specific first: in a virtualenv, site-packages lies inside platstdlib.
_INSTALLED = tuple(
    sorted(
        {os.path.realpath(sysconfig.get_paths()[k]) for k in ("stdlib", "platstdlib", "purelib", "platlib")},
        key=len,
        reverse=True,
    )
)


def is_user_module(name: str) -> bool:
    """True for modules that live in the user's tree, not in an installed distribution."""
    if name in ("__main__", "__mp_main__") or name.split(".")[0] in ("llmstep", "builtins"):
        return False
    module = sys.modules.get(name)
    path = getattr(module, "__file__", None)
    if module is None or not path:
        return False
    real = os.path.realpath(path)
    return not real.startswith(_INSTALLED)


def pickled_by_value(obj: Any) -> bool:
    """True for a function or class that ``dumps`` sends by value (its globals and closure travel)."""
    from cloudpickle import cloudpickle as cp

    module = getattr(obj, "__module__", None)
    if module and is_user_module(module):
        return True
    try:
        return not cp._should_pickle_by_reference(obj)
    except Exception:  # cloudpickle's own rule failed: assume it travels
        return True


def holds_secret(obj: Any) -> bool:
    """True for a LangChain object (a model) with a secret field set, such as an API key."""
    from langchain_core.load.serializable import Serializable

    if not isinstance(obj, Serializable):
        return False
    try:
        fields = obj.lc_secrets
    except Exception:  # a broken property means we cannot tell
        return False
    return any(getattr(obj, name, None) is not None for name in fields)


def portable_filename(path: str) -> str:
    """A code object's file name without this machine's layout: ``pydantic/main.py`` for an
    installed module, the path relative to the working directory for the user's own code."""
    real = os.path.realpath(path)
    for root in _INSTALLED:
        if real.startswith(root + os.sep):
            return os.path.relpath(real, root)
    cwd = os.path.realpath(os.getcwd())
    if real.startswith(cwd + os.sep):
        return os.path.relpath(real, cwd)
    return os.path.basename(real)


def dumps(obj: Any, *, where: str) -> bytes:
    """Cloudpickle ``obj``, pickling user modules by value; CompileError on a secret."""
    import cloudpickle
    from pydantic import SecretBytes, SecretStr

    found: set[str] = set()

    class _Pickler(cloudpickle.Pickler):
        def reducer_override(self, o: Any) -> Any:
            if isinstance(o, (SecretStr, SecretBytes)) or holds_secret(o):
                raise CompileError(
                    f"{where} holds a secret (an API key) and cannot be pickled; make the "
                    "object that holds it (the model) its own step, so it travels as "
                    "LangChain JSON with the secret recorded by id"
                )
            if isinstance(o, types.CodeType) and os.path.isabs(o.co_filename):
                # Pickle a copy with a portable file name instead (copy.copy returns a code
                # object unchanged on load, so this adds no runtime dependency).
                return copy.copy, (o.replace(co_filename=portable_filename(o.co_filename)),)
            if isinstance(o, (types.FunctionType, type)):
                module = getattr(o, "__module__", None)
                if module and module not in found and is_user_module(module):
                    found.add(module)
            return super().reducer_override(o)

        def _function_getnewargs(self, func: Any) -> Any:
            # A function pickled by value carries its module's __file__ (and __path__): make
            # them portable like code file names, so no path of this machine travels.
            args = super()._function_getnewargs(func)
            base_globals = args[1]
            if isinstance(base_globals.get("__file__"), str) and os.path.isabs(base_globals["__file__"]):
                base_globals["__file__"] = portable_filename(base_globals["__file__"])
            if isinstance(base_globals.get("__path__"), list):
                base_globals["__path__"] = [portable_filename(p) for p in base_globals["__path__"]]
            return args

    registered: set[str] = set()
    try:
        while True:
            buf = io.BytesIO()
            _Pickler(buf, protocol=5).dump(obj)
            new = found - registered
            if not new:
                return buf.getvalue()
            for name in new:
                cloudpickle.register_pickle_by_value(sys.modules[name])
            registered |= new
    except CompileError:
        raise
    except Exception as exc:  # cloudpickle raises many types
        raise CompileError(f"{where} cannot be pickled: {type(exc).__name__}: {exc}") from exc
    finally:
        for name in registered:
            cloudpickle.unregister_pickle_by_value(sys.modules[name])
