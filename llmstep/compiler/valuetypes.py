"""Compile side of the values between steps: which classes a chain vouches for, and which step
outputs cannot travel at all.

The classes a compiled workflow vouches for are those its own Runnables reference (a parser's
``pydantic_object``, a tool schema in ``tools``, a step's ``OutputType``, and the models, dataclasses
and enums their fields name, recursively) plus those declared with ``compile(value_types=[...])``.
A step loads a class a value names only when it is one of them (:mod:`llmstep.valueclasses`).
"""

from __future__ import annotations

import collections.abc as abc
import dataclasses
import datetime as dt
import decimal
import enum
import sys
import types
import typing
import uuid
from typing import Any

from llmstep.errors import CompileError

_TRAVELS = (
    str,
    int,
    float,
    bool,
    type(None),
    list,
    dict,
    tuple,
    set,
    frozenset,
    bytes,
    bytearray,
    dt.datetime,
    dt.date,
    dt.time,
    dt.timedelta,
    uuid.UUID,
    decimal.Decimal,
)
_NEVER = (abc.Iterator, abc.AsyncIterator, abc.Generator, abc.AsyncGenerator, abc.Coroutine, types.ModuleType)


def is_value_class(cls: Any) -> bool:
    """A class whose instances travel by naming it: a pydantic model, a dataclass or an Enum."""
    if not isinstance(cls, type) or cls.__module__.split(".")[0] in (
        "langchain_core",
        "langchain",
        "pydantic",
        "builtins",
    ):
        return False
    if issubclass(cls, enum.Enum) or dataclasses.is_dataclass(cls):
        return True
    return _is_model(cls)


def _is_model(cls: type) -> bool:
    from pydantic import BaseModel

    if issubclass(cls, BaseModel):
        return True
    v1 = sys.modules.get("pydantic.v1")
    return v1 is not None and issubclass(cls, v1.BaseModel)


class Collector:
    """Gathers the value classes of a chain's Runnables."""

    def __init__(self, declared: Any = ()) -> None:
        self.classes: dict[type, None] = {}
        for cls in _declared(declared):
            self._add(cls)

    def runnable(self, runnable: Any) -> None:
        seen: set[int] = set()
        self._visit(runnable, seen, 0)

    def _visit(self, obj: Any, seen: set[int], depth: int) -> None:
        if depth > 12 or id(obj) in seen:
            return
        seen.add(id(obj))
        if isinstance(obj, type):
            self._add(obj)
            return
        if isinstance(obj, (list, tuple, set, frozenset)):
            for item in obj:
                self._visit(item, seen, depth + 1)
            return
        if isinstance(obj, dict):
            for item in obj.values():
                self._visit(item, seen, depth + 1)
            return
        from langchain_core.runnables import Runnable

        if not isinstance(obj, Runnable):
            return
        self.annotation(output_hint(obj))
        fields = getattr(type(obj), "model_fields", None)
        names = list(fields) if fields else list(vars(obj)) if hasattr(obj, "__dict__") else []
        for name in names:
            self._visit(getattr(obj, name, None), seen, depth + 1)

    def annotation(self, hint: Any) -> None:
        for cls in _classes_in(hint):
            self._add(cls)

    def _add(self, cls: type) -> None:
        if cls in self.classes or not is_value_class(cls):
            return
        self.classes[cls] = None
        for hint in _field_hints(cls):
            self.annotation(hint)


def _declared(declared: Any) -> list[type]:
    items = list(declared) if isinstance(declared, (list, tuple, set, frozenset)) else [declared]
    for item in items:
        if not isinstance(item, type):
            raise CompileError(
                f"value_types holds {item!r}, which is not a class; list the classes whose "
                "instances pass between steps, e.g. value_types=[Verdict]"
            )
        if not (
            isinstance(item, type)
            and (issubclass(item, enum.Enum) or dataclasses.is_dataclass(item) or _is_model(item))
        ):
            raise CompileError(
                f"value_types holds {item.__qualname__}, which is not a pydantic model, a dataclass "
                "or an Enum; only those travel by naming their class"
            )
    return items


def _classes_in(hint: Any, depth: int = 0) -> list[type]:
    if depth > 8:
        return []
    if isinstance(hint, type):
        return [hint]
    found: list[type] = []
    for arg in typing.get_args(hint):
        found += _classes_in(arg, depth + 1)
    return found


def _field_hints(cls: type) -> list[Any]:
    if dataclasses.is_dataclass(cls):
        try:
            hints = typing.get_type_hints(cls)
        except Exception:  # an unresolvable annotation: nothing to follow
            return []
        return [hints.get(f.name) for f in dataclasses.fields(cls)]
    fields = getattr(cls, "model_fields", None)
    if isinstance(fields, dict):
        return [f.annotation for f in fields.values()]
    fields = getattr(cls, "__fields__", None)  # pydantic.v1
    if isinstance(fields, dict):
        return [getattr(f, "outer_type_", None) for f in fields.values()]
    return []


def output_hint(runnable: Any) -> Any:
    """A Runnable's ``OutputType``; for a function's string annotation (``from __future__ import
    annotations``), the class it names. None when LangChain cannot tell."""
    try:
        hint = runnable.OutputType
    except Exception:  # LangChain's inference can fail; it is a hint
        return None
    func = getattr(runnable, "func", None)
    if isinstance(hint, str) and callable(func):
        try:
            hint = typing.get_type_hints(func).get("return", hint)
        except Exception:  # an unresolvable annotation
            return None
    return hint


def check_output(runnable: Any, where: str) -> None:
    """CompileError when a step's declared ``OutputType`` is known not to travel between steps."""
    hint = output_hint(runnable)
    if hint is None:
        return
    bad = _not_travelling(hint)
    if bad is not None:
        raise CompileError(
            f"{where} returns {bad} (its OutputType), which cannot travel between steps; return JSON data, a "
            "pydantic model, a dataclass, LangChain messages, prompt values or documents (a generator: collect it "
            "into a list)"
        )


def _not_travelling(hint: Any, depth: int = 0) -> str | None:
    if depth > 8:
        return None
    origin = typing.get_origin(hint)
    if origin is not None:
        if isinstance(origin, type) and issubclass(origin, _NEVER):
            return _name(hint)
        for arg in typing.get_args(hint):
            bad = _not_travelling(arg, depth + 1)
            if bad is not None:
                return bad
        return None
    if not isinstance(hint, type):
        return None  # Any, a TypeVar, a forward reference: not known
    if issubclass(hint, _NEVER):
        return _name(hint)
    if issubclass(hint, _TRAVELS) or issubclass(hint, enum.Enum) or dataclasses.is_dataclass(hint):
        return None
    if hint.__module__.split(".")[0] in (
        "langchain_core",
        "langchain",
        "pydantic",
        "typing",
        "builtins",
        "abc",
        "collections",
    ):
        return None  # LangChain's own (messages, prompt values, its generated models) or too general to tell
    if _is_model(hint):
        return None
    return _name(hint)


def _name(hint: Any) -> str:
    return getattr(hint, "__qualname__", None) or str(hint)
