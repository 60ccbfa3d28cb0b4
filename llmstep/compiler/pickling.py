"""Opt-in pickling of Runnables that LangChain cannot serialize (``allow_pickle=True``).

Functions, classes and modules from the user's own code (a script, or a module outside
site-packages and the standard library) travel *by value*, so the step image does not need the
user's source: a function that uses ``helper.shout`` after ``import helper`` carries the module
``helper`` itself, as one that did ``from helper import shout`` carries ``shout``. After pickling,
every module the pickle still imports by name must be one the step can import (installed, or the
standard library); one of the user's is refused at compile time, naming it, instead of failing in
the step with ``No module named ...``. Objects that hold a secret (``SecretStr``, hence every
model client) are refused: they must travel as LangChain JSON, where secrets are recorded by id.

An object that means only its identity (a sentinel such as ``MISSING = object()``, compared with
``is``) and is a global of an installed module travels *by reference*, as the module's attribute:
pickled by value it would load as a new object, and the library's ``is MISSING`` would no longer
hold in the step (LangGraph's graphs fail so). See ``Identities``.
"""

from __future__ import annotations

import copy
import copyreg
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
    path = _module_path(sys.modules.get(name))
    return bool(path) and not os.path.realpath(path).startswith(_INSTALLED)


def _module_path(module: Any) -> str:
    """Where a module was loaded from: its file, or a namespace package's first folder; "" for a
    built-in or frozen module."""
    path = getattr(module, "__file__", None)
    if not path:
        folders = list(getattr(module, "__path__", None) or ())
        path = folders[0] if folders else None
    return path if isinstance(path, str) else ""


_NOT_STATE = ("__builtins__", "__spec__", "__loader__", "__cached__")
"""Module attributes that do not travel with a module pickled by value: the loader and spec hold
this machine's paths and mean nothing in the step (cloudpickle drops ``__builtins__`` too)."""


def _module_state(module: types.ModuleType) -> dict[str, Any]:
    state = {k: v for k, v in vars(module).items() if k not in _NOT_STATE}
    if isinstance(state.get("__file__"), str) and os.path.isabs(state["__file__"]):
        state["__file__"] = portable_filename(state["__file__"])
    if "__path__" in state:
        state["__path__"] = [portable_filename(p) for p in state["__path__"]]
    return state


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


_NOT_GLOBALS = (
    type,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.ModuleType,
    str,
    bytes,
    int,
    float,
    complex,
    bool,
    type(None),
    tuple,
    list,
    dict,
    set,
    frozenset,
)
"""Globals never looked up by identity: cloudpickle decides how functions, classes and modules
travel, and the pickler does not ask about built-in values and containers."""


_OBJECT: Any = object
_NEWOBJ = copyreg.__newobj__  # type: ignore[attr-defined]  # what object.__reduce_ex__ rebuilds with


def only_identity(obj: Any) -> bool:
    """True when pickling ``obj`` by value would carry nothing but its class (``object()``, an
    instance without state), a class that is not the user's: all it can mean is which object it is."""
    cls: Any = type(obj)
    if cls.__reduce_ex__ is not _OBJECT.__reduce_ex__ or cls.__reduce__ is not _OBJECT.__reduce__:
        return False  # it says how it travels (an enum member, a model, a compiled pattern)
    if getattr(obj, "__dict__", None) or is_user_module(getattr(cls, "__module__", "") or ""):
        return False
    try:
        reduced = obj.__reduce_ex__(5)
    except Exception:  # an object that refuses to be reduced is not a plain sentinel
        return False
    return (
        isinstance(reduced, tuple)
        and len(reduced) >= 2
        and reduced[0] is _NEWOBJ
        and reduced[1] == (cls,)
        and not any(part for part in reduced[2:])
    )


class Identities:
    """Where the objects that mean only their identity are globals of modules the step can import
    (installed, or the standard library; never the user's code), for one pickle."""

    def __init__(self) -> None:
        self._table: dict[int, list[tuple[Any, str, str]]] | None = None

    def reduce(self, obj: Any) -> tuple[Any, ...] | None:
        """The reduction that loads ``obj`` as the same global of the same module in the step, for an
        object that means only its identity and is such a global; None for any other object."""
        if isinstance(obj, _NOT_GLOBALS) or not only_identity(obj):
            return None
        for value, module, name in self._globals().get(id(obj), ()):
            if value is obj and getattr(sys.modules.get(module), name, None) is obj and not is_user_module(module):
                return getattr, (sys.modules[module], name)
        return None

    def _globals(self) -> dict[int, list[tuple[Any, str, str]]]:
        """``id(obj) -> [(obj, module, name)]`` over the globals of every loaded module, in module name
        order, built at the first sentinel seen (the entries hold the objects, so no id is reused)."""
        if self._table is None:
            self._table = {}
            for module_name in sorted(sys.modules):
                module = sys.modules.get(module_name)
                if module_name in ("__main__", "__mp_main__") or not isinstance(module, types.ModuleType):
                    continue
                for name, value in list(getattr(module, "__dict__", {}).items()):
                    if not isinstance(value, _NOT_GLOBALS) and not name.startswith("__"):
                        self._table.setdefault(id(value), []).append((value, module_name, name))
        return self._table


def dumps(obj: Any, *, where: str) -> bytes:
    """Cloudpickle ``obj``, pickling user modules by value; CompileError on a secret, or when the
    pickle would import a module of the user's by name in the step."""
    import cloudpickle
    from cloudpickle import cloudpickle as cp
    from pydantic import SecretBytes, SecretStr

    found: set[str] = set()
    identities = Identities()

    class _Pickler(cloudpickle.Pickler):
        def reducer_override(self, o: Any) -> Any:
            reference = identities.reduce(o)
            if reference is not None:
                return reference
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
            if isinstance(o, types.ModuleType) and is_user_module(o.__name__):
                # `import helper` in the user's code: the function refers to the module object,
                # which cloudpickle imports by name unless the module is registered by value
                found.add(o.__name__)
                if not cp._should_pickle_by_reference(o):
                    return cp.dynamic_subimport, (o.__name__, _module_state(o))
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
                break
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
    data = buf.getvalue()
    check_imports(data, where=where)
    return data


def check_imports(data: bytes, *, where: str) -> None:
    """CompileError when loading ``data`` would import a module the step cannot import: the user's
    own code (not installed, so not in the step image) or ``__main__``, referred to by name."""
    for module, what in sorted(names_by_reference(data).items()):
        if not _importable_in_step(module):
            path = _module_path(sys.modules.get(module))
            where_from = f" ({portable_filename(path)})" if path else ""
            raise CompileError(
                f"{where} cannot be pickled for the step: it refers to {what} of the module {module!r}"
                f"{where_from} by name, and the step cannot import that module: it is your project's code, "
                "not an installed package. Install your project in the step image (and pass image=...), or "
                "refer to the module's functions and classes instead of an object it names (an object whose "
                "__reduce__ returns a name cannot travel by value)"
            )


def _importable_in_step(name: str) -> bool:
    if name in ("__main__", "__mp_main__"):
        return False
    if name.split(".")[0] in ("llmstep", "builtins"):
        return True
    if name in sys.modules:
        return not is_user_module(name)
    from importlib.util import find_spec

    try:
        spec = find_spec(name)
    except (ImportError, ValueError):
        return False
    origin = spec.origin if spec is not None else None
    if spec is None or (origin and os.path.isabs(origin) and not os.path.realpath(origin).startswith(_INSTALLED)):
        return False
    return True


_STRINGS = frozenset(
    {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING", "STRING"}
)
_GETS = frozenset({"BINGET", "LONG_BINGET", "GET"})
_PUTS = frozenset({"BINPUT", "LONG_BINPUT", "PUT"})
_SUBIMPORTS = (("cloudpickle.cloudpickle", "subimport"), ("cloudpickle", "subimport"))
_SUBIMPORT = object()
"""What the memo holds for cloudpickle's ``subimport``, so that a second module it imports counts."""


def names_by_reference(data: bytes) -> dict[str, str]:
    """The modules loading the pickle ``data`` imports by name, each with what it looks up there:
    the module of every global (``GLOBAL``, ``STACK_GLOBAL``) and every module cloudpickle imports
    (``subimport``); a name looked up says more than the module alone. Follows the memo, where a
    repeated name, and ``subimport`` itself, is fetched from."""
    import pickletools

    memo: dict[int, Any] = {}
    top: list[Any] = [None, None]  # what the last two opcodes pushed (a string, or None)
    found: dict[str, str] = {}
    modules: dict[str, str] = {}
    subimport = False
    arg: Any
    for op, arg, _ in pickletools.genops(data):
        value: Any = None
        if op.name in _STRINGS:
            value = arg
        elif op.name in _GETS:
            value = memo.get(arg)
            if value is _SUBIMPORT:
                subimport, value = True, None
        elif op.name == "MEMOIZE":
            memo[len(memo)] = top[-1]
            continue
        elif op.name in _PUTS:
            memo[arg] = top[-1]
            continue
        elif op.name in ("GLOBAL", "STACK_GLOBAL"):
            module, name = arg.split(" ", 1) if op.name == "GLOBAL" else top
            if isinstance(module, str) and isinstance(name, str):
                found.setdefault(module, f"{name!r}")
                subimport = (module, name) in _SUBIMPORTS
                value = _SUBIMPORT if subimport else None  # memoized: a later GET calls it again
        elif op.name == "REDUCE":
            subimport = False
        if subimport and isinstance(value, str):
            modules.setdefault(value, "the module itself")
            subimport = False
        top = [top[-1], value]
    return {**modules, **found}
