"""Resolve a chain reference: ``path/to/file.py:attr`` or ``package.module:attr``.

The attribute is a Runnable, or a function (taking no arguments) that returns one.
"""

from __future__ import annotations

import hashlib
import importlib
import re
import sys
import types
from pathlib import Path
from typing import Any

from llmstep.errors import ReferenceError_
from llmstep.valueclasses import FILE_MODULE_PREFIX


def is_reference(text: str) -> bool:
    """True when ``text`` looks like ``file.py:attr`` or ``pkg.mod:attr`` rather than a file."""
    left, sep, right = text.rpartition(":")
    return bool(sep and left and right and right.replace(".", "").replace("_", "").isalnum())


def reference_name(ref: str) -> str | None:
    """A workflow name from a reference: ``examples/qa.py:chain`` -> ``qa``; None if unusable."""
    module_part, _, attr = ref.rpartition(":")
    stem = Path(module_part).stem if module_part.endswith(".py") else module_part.rsplit(".", 1)[-1]
    if attr not in ("chain", "main", "build", "make_chain"):
        stem = f"{stem}-{attr.rsplit('.', 1)[-1]}"
    name = re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-")[:50].strip("-")
    return name or None


def load_reference(ref: str) -> Any:
    """The Runnable that ``ref`` names; ReferenceError_ saying what is wrong otherwise."""
    from langchain_core.runnables import Runnable

    module_part, sep, attr = ref.rpartition(":")
    if not sep or not module_part or not attr:
        raise ReferenceError_(f"{ref!r} is not a chain reference; use path/to/file.py:attr or package.module:attr")
    module = _load_module(module_part)
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ReferenceError_(f"{module_part} has no attribute {attr!r}") from None
    if not isinstance(obj, (Runnable, dict)) and callable(obj):
        try:
            obj = obj()
        except (Exception, SystemExit) as exc:
            raise ReferenceError_(
                f"{ref}: calling {attr}() raised {type(exc).__name__}: {exc} (it must take no arguments "
                "and return a Runnable)"
            ) from exc
    if not isinstance(obj, (Runnable, dict)):
        raise ReferenceError_(f"{ref} is a {type(obj).__name__}, not a Runnable (or a function returning one)")
    return obj


def load_classes(refs: list[str], option: str) -> list[type]:
    """The classes ``refs`` name (``package.module:Class`` or ``path/to/file.py:Class``), for
    ``compile(value_types=...)``; ReferenceError_ naming ``option`` and the reference otherwise."""
    classes = []
    for ref in refs:
        module_part, sep, attr = ref.rpartition(":")
        if not sep or not module_part or not attr:
            raise ReferenceError_(f"{option} {ref!r}: name a class as package.module:Class or path/to/file.py:Class")
        obj: Any = _load_module(module_part)
        for part in attr.split("."):
            try:
                obj = getattr(obj, part)
            except AttributeError:
                raise ReferenceError_(f"{option} {ref!r}: {module_part} has no attribute {attr!r}") from None
        if not isinstance(obj, type):
            raise ReferenceError_(
                f"{option} {ref!r} is a {type(obj).__name__}, not a class (a pydantic model, "
                "dataclass or Enum whose instances pass between steps)"
            )
        classes.append(obj)
    return classes


_FILES: dict[Path, Any] = {}
"""Modules loaded from files, by resolved path: ``chain.py:chain`` and ``./chain.py:Verdict`` are
one module, so the class a value type names is the class the chain uses."""


def _load_module(spec: str) -> Any:
    path = Path(spec)
    if spec.endswith(".py") or path.is_file():
        if not path.is_file():
            raise ReferenceError_(f"no such file: {spec}")
        resolved = path.resolve()
        known = _FILES.get(resolved)
        if known is not None and sys.modules.get(known.__name__) is known:
            return known
        # Like `python file.py`: the script's folder is importable, so sibling modules work.
        folder = str(resolved.parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)
        # The module name and code filenames come from the path as given (usually relative),
        # so functions pickled by value carry no machine-specific path.
        digest = hashlib.sha256(spec.encode()).hexdigest()[:8]
        name = f"{FILE_MODULE_PREFIX}{resolved.stem}_{digest}"
        if name in sys.modules:
            return sys.modules[name]
        module = types.ModuleType(name)
        module.__file__ = spec
        sys.modules[name] = module
        try:
            code = compile(resolved.read_text(encoding="utf-8"), spec, "exec")
            exec(code, module.__dict__)  # loading the user's own chain file
        except (Exception, SystemExit) as exc:
            del sys.modules[name]
            raise ReferenceError_(_raised(spec, exc)) from exc
        _FILES[resolved] = module
        return module
    try:
        return importlib.import_module(spec)
    except ImportError as exc:
        raise ReferenceError_(f"cannot import {spec}: {exc}") from exc
    except (Exception, SystemExit) as exc:  # the user's module raised: their error, as for a file, not an llmstep bug
        raise ReferenceError_(_raised(spec, exc)) from exc


def _raised(spec: str, exc: BaseException) -> str:
    if isinstance(exc, SystemExit):  # exit(0) would otherwise end llmstep as a success with no output
        return (
            f"{spec} called sys.exit({exc.code!r}) while loading, so it defines no chain; a module that is "
            "also a script keeps that under if __name__ == '__main__':"
        )
    return f"{spec} raised while loading: {type(exc).__name__}: {exc}"
