"""Values between steps: every value LangChain Runnables commonly pass, as JSON.

A value is written as a JSON tree. Plain JSON stays itself. Everything else is a tagged node, an
object whose ``__llmstep__`` key names what it holds:

========================  ==========================================================
``tuple`` ``set``         ``{"items": [...]}`` (``frozenset`` too); tuples stay tuples
``dict``                  ``{"items": [[key, value], ...]}``: a dict JSON cannot hold as an object
                          (keys that are not strings) or one that has a reserved key
``bytes``                 ``{"base64": "..."}``
``float``                 ``{"value": "nan" | "inf" | "-inf"}``
``datetime`` ``date``     ``{"iso": "..."}`` (``time`` too; a ``ZoneInfo`` keeps its ``zone``)
``timedelta``             ``{"days": D, "seconds": S, "microseconds": U}``
``uuid`` ``decimal``      ``{"text": "..."}``
``enum``                  ``{"class": "module:Name", "name": "MEMBER"}``
``model``                 ``{"class": ..., "fields": {...}, "set": [...]}``: a pydantic (v2) model
``model_v1``              the same for ``pydantic.v1`` models
``dataclass``             ``{"class": ..., "fields": {...}}``
========================  ==========================================================

LangChain's value objects (messages and their chunks, prompt values, documents, generations) are
written as LangChain writes them, ``{"lc": 1, "type": "constructor", "id": [...], "kwargs": {...}}``,
with their kwargs encoded by the same rules (so a message carrying a pydantic object keeps it).

Trust. A node that names a class (``enum``, ``model``, ``model_v1``, ``dataclass``) is revived only
when the compiled workflow vouches for that class (:class:`llmstep.valueclasses.Classes`): the classes
the chain's own Runnables reference, and those declared with ``compile(..., value_types=[...])``.
Decoding never imports a module because a value names it; the step imports one only for a class its
payload lists. LangChain nodes are revived only for the fixed list of value classes of
:mod:`llmstep.valueclasses`.

This module is on the step executor's start-up path: at the top it imports only what the executor
has loaded anyway. A value's own module (``datetime``, ``uuid``, ``decimal``, ``pydantic``) is
imported wherever the value exists, so the encoder finds it in ``sys.modules``; the decoder
imports it when a tree holds one.
"""

from __future__ import annotations

import base64
import enum
import math
import sys
from typing import Any

from llmstep.errors import PayloadError, SerializationError
from llmstep.valueclasses import Classes, class_path, declare_hint, lc_value_classes

TAG = "__llmstep__"
RESERVED = frozenset({TAG, "lc", "__lc_escaped__"})
"""Keys a user dict may not carry as an object: such a dict is written as a ``dict`` node."""

# ---------------------------------------------------------------- encode


def is_plain(value: Any) -> bool:
    """True for JSON data that is its own tree: nothing tagged, no reserved key."""
    kind = type(value)
    if value is None or kind in (bool, int, str):
        return True
    if kind is float:
        return math.isfinite(value)
    if kind is list:
        return all(is_plain(v) for v in value)
    if kind is dict:
        return all(type(k) is str and k not in RESERVED and is_plain(v) for k, v in value.items())
    return False


def encode(value: Any, classes: Classes | None = None, where: str = "the value") -> Any:
    """The JSON tree of ``value``. With ``classes``, a value of a class it does not vouch for is
    refused here, in the step that made it, rather than in the step that would read it."""
    return _Encoder(classes, where).encode(value)


class _Encoder:
    def __init__(self, classes: Classes | None, where: str) -> None:
        self.classes = classes
        self.where = where
        self.lc_ids: dict[type, tuple[str, ...]] | None = None

    def encode(self, value: Any) -> Any:
        kind = type(value)
        if value is None or kind in (bool, int, str):
            return value
        if kind is float:
            return value if math.isfinite(value) else {TAG: "float", "value": _float_word(value)}
        if kind is list:
            return [self.encode(v) for v in value]
        if kind is dict:
            if all(type(k) is str and k not in RESERVED for k in value):
                return {k: self.encode(v) for k, v in value.items()}
            return {TAG: "dict", "items": [[self.encode(k), self.encode(v)] for k, v in value.items()]}
        if isinstance(value, enum.Enum):
            return {TAG: "enum", "class": self._vouched(kind), "name": value.name}
        if isinstance(value, (bool, int, str)):  # a subclass that is not an Enum: its base value
            return self.encode(
                bool(value) if isinstance(value, bool) else (int if isinstance(value, int) else str)(value)
            )
        if isinstance(value, float):
            return self.encode(float(value))
        if isinstance(value, tuple) and not hasattr(value, "_fields"):
            return {TAG: "tuple", "items": [self.encode(v) for v in value]}
        if isinstance(value, (set, frozenset)):
            return {
                TAG: "frozenset" if isinstance(value, frozenset) else "set",
                "items": [self.encode(v) for v in value],
            }
        if isinstance(value, (bytes, bytearray, memoryview)):
            return {TAG: "bytes", "base64": base64.b64encode(bytes(value)).decode("ascii")}
        node = self._stdlib(value)
        if node is not None:
            return node
        if isinstance(value, list):  # a list subclass
            return [self.encode(v) for v in value]
        if isinstance(value, dict):
            return self.encode(dict(value))
        lc = self._lc_id(value)
        if lc is not None:
            kwargs = value.to_json().get("kwargs", {})
            return {"lc": 1, "type": "constructor", "id": lc, "kwargs": {k: self.encode(v) for k, v in kwargs.items()}}
        pydantic = sys.modules.get("pydantic")
        if pydantic is not None and isinstance(value, pydantic.BaseModel):
            fields = {name: self.encode(getattr(value, name)) for name in type(value).model_fields}
            fields.update({k: self.encode(v) for k, v in (value.model_extra or {}).items()})
            return {TAG: "model", "class": self._vouched(kind), "fields": fields, "set": sorted(value.model_fields_set)}
        v1 = sys.modules.get("pydantic.v1")
        if v1 is not None and isinstance(value, v1.BaseModel):
            fields = {name: self.encode(getattr(value, name)) for name in value.__fields__}
            return {
                TAG: "model_v1",
                "class": self._vouched(kind),
                "fields": fields,
                "set": sorted(value.__fields_set__),
            }
        if hasattr(kind, "__dataclass_fields__"):
            import dataclasses

            fields = {f.name: self.encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
            return {TAG: "dataclass", "class": self._vouched(kind), "fields": fields}
        if isinstance(value, tuple):  # a namedtuple: its items, as a tuple
            return {TAG: "tuple", "items": [self.encode(v) for v in value]}
        raise SerializationError(
            f"{self.where} holds a value of type {kind.__module__}.{kind.__qualname__}, which cannot travel "
            "between steps; return JSON data, a pydantic model, a dataclass, LangChain messages, prompt "
            "values or documents (see 'Values between steps' in the README)"
        )

    @staticmethod
    def _stdlib(value: Any) -> dict[str, Any] | None:
        """The node of a date, time, UUID or Decimal (their modules are loaded if such a value exists)."""
        dt, uuid, decimal = sys.modules.get("datetime"), sys.modules.get("uuid"), sys.modules.get("decimal")
        if dt is not None:
            if isinstance(value, (dt.datetime, dt.time)):
                node = {TAG: "datetime" if isinstance(value, dt.datetime) else "time", "iso": value.isoformat()}
                zone = getattr(value.tzinfo, "key", None)
                return {**node, "zone": zone} if isinstance(zone, str) else node
            if isinstance(value, dt.date):
                return {TAG: "date", "iso": value.isoformat()}
            if isinstance(value, dt.timedelta):
                return {
                    TAG: "timedelta",
                    "days": value.days,
                    "seconds": value.seconds,
                    "microseconds": value.microseconds,
                }
        if uuid is not None and isinstance(value, uuid.UUID):
            return {TAG: "uuid", "text": str(value)}
        if decimal is not None and isinstance(value, decimal.Decimal):
            return {TAG: "decimal", "text": str(value)}
        return None

    def _vouched(self, cls: type) -> str:
        path = class_path(cls)
        if self.classes is not None and not self.classes.allows(path):
            raise SerializationError(
                f"{self.where} is a {cls.__qualname__} ({path}), a class the compiled workflow does not declare, "
                f"so the next step could not load it; declare it: {declare_hint(path)}"
            )
        return path

    def _lc_id(self, value: Any) -> list[str] | None:
        if "langchain_core" not in sys.modules:
            return None
        if self.lc_ids is None:
            self.lc_ids = {cls: ident for ident, cls in lc_value_classes().items()}
        found = self.lc_ids.get(type(value))
        return list(found) if found is not None else None


def _float_word(value: float) -> str:
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


# ---------------------------------------------------------------- decode


def decode(tree: Any, classes: Classes, where: str = "the value") -> Any:
    """The value a tree holds (see the module docstring); classes only as ``classes`` allows."""
    return _Decoder(classes, where).decode(tree)


class _Decoder:
    def __init__(self, classes: Classes, where: str) -> None:
        self.classes = classes
        self.where = where

    def decode(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self.decode(v) for v in node]
        if not isinstance(node, dict):
            return node
        if TAG in node:
            try:
                return self.tagged(node)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                if isinstance(exc, SerializationError):
                    raise
                raise PayloadError(
                    f"{self.where}: a malformed {node.get(TAG)!r} value ({type(exc).__name__}: {exc})"
                ) from exc
        if node.get("lc") == 1 and node.get("type") == "constructor":
            return self.langchain(node)
        return {k: self.decode(v) for k, v in node.items()}

    def tagged(self, node: dict) -> Any:
        tag = node[TAG]
        if tag == "tuple":
            return tuple(self.decode(v) for v in node["items"])
        if tag in ("set", "frozenset"):
            return (set if tag == "set" else frozenset)(self.decode(v) for v in node["items"])
        if tag == "dict":
            return {_hashable(self.decode(k)): self.decode(v) for k, v in node["items"]}
        if tag == "bytes":
            return base64.b64decode(node["base64"], validate=True)
        if tag == "float":
            return {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}[node["value"]]
        if tag in ("datetime", "time", "date", "timedelta"):
            return _dates(tag, node)
        if tag == "uuid":
            import uuid

            return uuid.UUID(node["text"])
        if tag == "decimal":
            import decimal

            return decimal.Decimal(node["text"])
        if tag in ("enum", "model", "model_v1", "dataclass"):
            return self.instance(tag, node)
        raise PayloadError(
            f"{self.where}: unknown value tag {tag!r}; use the same llmstep version to compile and to run"
        )

    def instance(self, tag: str, node: dict) -> Any:
        cls = self.classes.resolve(node["class"], self.where)
        if tag == "enum":
            if cls is not None and not issubclass(cls, enum.Enum):
                raise PayloadError(f"{self.where}: {node['class']} is not an Enum")
            return cls[node["name"]] if cls is not None else node["name"]
        fields = {k: self.decode(v) for k, v in node["fields"].items()}
        if cls is None:
            return fields  # lenient: the class is not here, its data is
        if tag == "model":
            if not hasattr(cls, "model_construct"):
                raise PayloadError(f"{self.where}: {node['class']} is not a pydantic model")
            return cls.model_construct(_fields_set=set(node["set"]), **fields)
        if tag == "model_v1":
            v1_model: Any = cls  # a pydantic.v1 model: construct() is its classmethod, which ``type`` lacks
            return v1_model.construct(_fields_set=set(node["set"]), **fields)
        if not hasattr(cls, "__dataclass_fields__"):
            raise PayloadError(f"{self.where}: {node['class']} is not a dataclass")
        data_cls: type[object] = cls  # so that __new__ is the class's, not the metaclass's
        obj = data_cls.__new__(data_cls)  # as pickle does: the fields as they were, no __init__ or __post_init__ rerun
        for name, value in fields.items():
            object.__setattr__(obj, name, value)
        return obj

    def langchain(self, node: dict) -> Any:
        ident = node.get("id")
        cls = lc_value_classes().get(tuple(ident)) if isinstance(ident, list) else None
        if cls is None:
            raise PayloadError(
                f"{self.where}: LangChain class {'.'.join(map(str, ident or ['?']))} is not a value class "
                "llmstep loads (messages, prompt values, documents, generations)"
            )
        kwargs = {k: self.decode(v) for k, v in (node.get("kwargs") or {}).items()}
        try:
            return cls(**kwargs)
        except Exception as exc:  # pydantic validation
            raise PayloadError(f"{self.where}: cannot rebuild a {cls.__name__}: {exc}") from exc


def _dates(tag: str, node: dict) -> Any:
    import datetime as dt

    if tag == "date":
        return dt.date.fromisoformat(node["iso"])
    if tag == "timedelta":
        return dt.timedelta(days=node["days"], seconds=node["seconds"], microseconds=node["microseconds"])
    value = (dt.datetime if tag == "datetime" else dt.time).fromisoformat(node["iso"])
    if isinstance(node.get("zone"), str):
        from zoneinfo import ZoneInfo

        value = value.replace(tzinfo=ZoneInfo(node["zone"]))
    return value


def _hashable(key: Any) -> Any:
    if isinstance(key, list):
        return tuple(_hashable(k) for k in key)
    return key
