"""The classes a value between steps may name, and who vouches for them (:mod:`llmstep.values`
writes and reads the values).

A node that names a class (``enum``, ``model``, ``model_v1``, ``dataclass``) is revived only when
the compiled workflow vouches for that class (:class:`Classes`): the classes the chain's own
Runnables reference, and those declared with ``compile(..., value_types=[...])``. Decoding never
imports a module because a value names it; the step imports one only for a class its payload lists
(:func:`import_class`). LangChain nodes are revived only for the fixed list of value classes here
(:data:`LC_VALUE_CLASSES`).

This module is on the step executor's start-up path: at the top it imports only what the executor
has loaded anyway.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from llmstep.errors import PayloadError, SerializationError

LC_VALUE_CLASSES = {
    "langchain_core.messages": (
        "AIMessage",
        "AIMessageChunk",
        "HumanMessage",
        "HumanMessageChunk",
        "SystemMessage",
        "SystemMessageChunk",
        "ToolMessage",
        "ToolMessageChunk",
        "ChatMessage",
        "ChatMessageChunk",
        "FunctionMessage",
        "FunctionMessageChunk",
        "RemoveMessage",
    ),
    "langchain_core.prompt_values": ("ChatPromptValue", "ChatPromptValueConcrete", "StringPromptValue"),
    "langchain_core.documents": ("Document",),
    "langchain_core.outputs": ("Generation", "GenerationChunk", "ChatGeneration", "ChatGenerationChunk"),
}
"""LangChain's value objects: always loadable, by their LangChain id."""


def class_path(cls: type) -> str:
    """``module:QualName``, how a value names its class."""
    return f"{cls.__module__}:{cls.__qualname__}"


class Classes:
    """The classes values may name, by :func:`class_path`.

    ``known`` maps a path to its class, or to ``None`` for one that ``load`` supplies (the step
    side: a class imported from the image, or one that travels by value in the payload).
    ``lenient`` decodes a node naming a class that cannot be had as its plain data (a reader that
    only prints, such as the CLI), instead of raising; None: as the caller's entry point says
    (:func:`reading_leniently`).
    """

    def __init__(
        self,
        known: Mapping[str, type | None] | None = None,
        *,
        load: Callable[[str], type] | None = None,
        modules: bool = False,
        lenient: bool | None = False,
    ) -> None:
        self.known: dict[str, type | None] = dict(known or {})
        self.load = load
        self.modules = modules
        self.lenient = lenient

    @classmethod
    def of(cls, classes: Iterable[type], **kwargs: Any) -> Classes:
        return cls({class_path(c): c for c in classes}, **kwargs)

    def allows(self, path: str) -> bool:
        return path in self.known or (self.modules and _from_modules(path) is not None)

    def resolve(self, path: str, where: str) -> type | None:
        """The class ``path`` names, or ``None`` (lenient) when it cannot be had."""
        found = self.known.get(path)
        if found is None and path in self.known and self.load is not None:
            found = self.known[path] = self.load(path)
        if found is None and self.modules:
            found = _from_modules(path)
        if found is None and not (_LENIENT.get() if self.lenient is None else self.lenient):
            raise SerializationError(
                f"{where} holds a value of class {path}, which the compiled workflow does not declare, so "
                f"it is not loaded. If the class is yours, declare it: {declare_hint(path)}"
                + (" (or import its module before reading the result)" if self.modules else "")
            )
        return found


REGISTERED: dict[str, type] = {}
"""The value classes of every chain compiled in this process (:func:`register`)."""

CLIENT = Classes(REGISTERED, modules=True, lenient=None)
"""How a client (the user's process reading a run's values) loads classes: those of the chains it
compiled, and others only if their module is already imported; it never imports one. Inside
:func:`reading_leniently` (the CLI's commands and a step), a class it does not have reads as its data."""

_LENIENT: contextvars.ContextVar[bool] = contextvars.ContextVar("llmstep_lenient_reading", default=False)


def register(classes: Iterable[type]) -> None:
    """Let the client read values of ``classes`` (``compile`` registers its chain's value classes)."""
    REGISTERED.update({class_path(c): c for c in classes})


@contextlib.contextmanager
def reading_leniently() -> Iterator[None]:
    """Within it, :data:`CLIENT` reads a value naming a class it cannot have as its plain data
    instead of refusing it: the CLI prints values, and a step reads others' as data. An entry
    point's choice for its own call, not a setting of the process: it ends with the block."""
    token = _LENIENT.set(True)
    try:
        yield
    finally:
        _LENIENT.reset(token)


FILE_MODULE_PREFIX = "llmstep_user_"
"""How the command line names a module it loads from a file (``path/to/file.py:attr``): the
file's stem and a digest of the path follow."""


def declare_hint(path: str) -> str:
    """The ways to declare the value class at ``path`` (``module:QualName``), for an error that asks
    for one: in Python, on the command line (by the module's name, or by the file's path for a
    class of a file the command line loaded, or of a script), or by a return annotation."""
    module_name, _, qualname = path.partition(":")
    name = _short(path)
    from_file = module_name.startswith(FILE_MODULE_PREFIX) or module_name in ("__main__", "__mp_main__")
    cli = f"--value-type path/to/file.py:{qualname}" if from_file else f"--value-type {path}"
    return (
        f"compile(chain, value_types=[{name}]), on the command line {cli}, or annotate the return type "
        f"of the function that returns it (def f(...) -> {name}), which declares it too"
    )


def _short(path: str) -> str:
    return path.rsplit(":", 1)[-1]


def _from_modules(path: str) -> type | None:
    """The class at ``path`` if its module is already imported (never imports one)."""
    module_name, _, qualname = path.partition(":")
    obj: Any = sys.modules.get(module_name)
    for part in qualname.split("."):
        if obj is None or part == "<locals>":
            return None
        obj = getattr(obj, part, None)
    return obj if isinstance(obj, type) else None


def import_class(path: str) -> type:
    """Import the class at ``path``: only for a class a payload vouches for."""
    import importlib

    module_name, _, qualname = path.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise PayloadError(
            f"the payload declares value class {path}, which the step cannot import ({exc}); "
            "install its package in the step image"
        ) from exc
    if not isinstance(obj, type):
        raise PayloadError(f"the payload declares value class {path}, which is not a class")
    return obj


_LC: dict[tuple[str, ...], type] = {}


def lc_value_classes() -> dict[tuple[str, ...], type]:
    """LangChain's value classes by their LangChain id (``("langchain", "schema", "messages", ...)``)."""
    if not _LC:
        import importlib

        for module_name, names in LC_VALUE_CLASSES.items():
            module = importlib.import_module(module_name)
            for name in names:
                cls = getattr(module, name)
                _LC[tuple(cls.lc_id())] = cls
    return _LC
