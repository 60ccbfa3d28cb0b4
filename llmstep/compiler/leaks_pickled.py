"""Secrets in what cloudpickle would carry for a Runnable (``allow_pickle=True``), by the rules of
``llmstep.compiler.leaks``: attributes, containers, and, of every function pickled by value, its closure,
the globals it refers to, its defaults and the string literals of its code; of every module of the
user's that travels by value (``import helper``), everything it holds."""

from __future__ import annotations

import functools
import re
import types
from collections.abc import Mapping
from typing import Any

from llmstep.compiler.leaks import MAX_NODES, Finding, check_string, context_of, secret_name

MAX_DEPTH = 120
"""Far below Python's recursion limit (each level is two frames)."""


def scan_object(obj: Any, path: str, env: Mapping[str, str]) -> list[Finding]:
    """Secrets in the object graph cloudpickle would carry for ``obj``."""
    from langchain_core.load.serializable import Serializable
    from pydantic import SecretBytes, SecretStr

    from llmstep.compiler.pickling import holds_secret, is_user_module, pickled_by_value

    found: list[Finding] = []
    seen: set[int] = set()
    depth = 0

    def visit(o: Any, path: str, name: str | None, context: str) -> None:
        nonlocal depth
        if depth > MAX_DEPTH:
            return  # the byte scan of the pickle still runs
        depth += 1
        try:
            step(o, path, name, context)
        finally:
            depth -= 1

    def step(o: Any, path: str, name: str | None, context: str) -> None:
        if isinstance(o, str):
            found.extend(check_string(o, path, name, context, env))
            return
        if isinstance(o, (bytes, bytearray)):
            text = bytes(o).decode("utf-8", "replace")
            found.extend(f for f in check_string(text, path, None, "", env) if f.env)
            return
        if o is None or isinstance(o, (bool, int, float, complex)):
            return
        if isinstance(o, types.ModuleType) and not is_user_module(o.__name__):
            return  # imported by name in the step
        if id(o) in seen or len(seen) > MAX_NODES:
            return
        seen.add(id(o))
        if isinstance(o, types.ModuleType):  # the user's module travels by value, with all it holds
            for key, value in list(vars(o).items()):
                if not key.startswith("__"):
                    visit(value, f"{path}.{key}", key, "")
            return
        if isinstance(o, (SecretStr, SecretBytes)):
            found.append(Finding(path, "a pydantic SecretStr"))
        elif isinstance(o, Serializable) and holds_secret(o):
            found.append(
                Finding(
                    path,
                    f"a {type(o).__name__} holding its API key, which cannot be pickled; make "
                    "the model its own step, so the key is recorded by id",
                )
            )
        elif isinstance(o, dict):
            inner = context_of(name, context)
            for key, value in list(o.items()):
                key_name = key if isinstance(key, str) else None
                visit(value, f"{path}[{key!r}]", key_name, inner)
        elif isinstance(o, (list, tuple, set, frozenset)):
            for i, value in enumerate(list(o)):
                visit(value, f"{path}[{i}]", None, context)
        elif isinstance(o, types.FunctionType):
            if pickled_by_value(o):
                _visit_function(o, path, visit, found, env)
        elif isinstance(o, types.MethodType):
            visit(o.__self__, f"{path}.__self__", None, "")
            visit(o.__func__, f"{path}.__func__", None, "")
        elif isinstance(o, functools.partial):
            visit(o.func, f"{path}.func", None, "")
            visit(o.args, f"{path}.args", None, "")
            for key, value in o.keywords.items():
                visit(value, f"{path}.keywords[{key!r}]", key, "")
        elif isinstance(o, type):
            if pickled_by_value(o):
                for key, value in list(vars(o).items()):
                    if not key.startswith("__"):
                        visit(value, f"{path}.{key}", key, "")
        elif not isinstance(o, (types.BuiltinFunctionType, types.CodeType, types.FrameType)):
            _visit_state(o, path, visit)
            visit(type(o), f"{path}.__class__", None, "")  # a class of the user's travels by value

    visit(obj, path, None, "")
    return found


def _visit_function(
    func: types.FunctionType, path: str, visit: Any, found: list[Finding], env: Mapping[str, str]
) -> None:
    code = func.__code__
    found.extend(code_literals(code, path, env))
    for var, cell in zip(code.co_freevars, func.__closure__ or (), strict=False):
        try:
            contents = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        visit(contents, f"{path}.<closure {var}>", var, "")
    for global_name in sorted(_global_names(code)):
        if global_name in func.__globals__:
            visit(func.__globals__[global_name], f"{path}.__globals__[{global_name!r}]", global_name, "")
    if func.__defaults__:
        names = code.co_varnames[: code.co_argcount][-len(func.__defaults__) :]
        for arg, value in zip(names, func.__defaults__, strict=False):
            visit(value, f"{path}.<default {arg}>", arg, "")
    for arg, value in (func.__kwdefaults__ or {}).items():
        visit(value, f"{path}.<default {arg}>", arg, "")


_SKIP_OPS = frozenset({"RESUME", "NOP", "CACHE", "PRECALL", "EXTENDED_ARG", "PUSH_NULL", "COPY_FREE_VARS", "MAKE_CELL"})
_STORE_OPS = frozenset({"STORE_FAST", "STORE_NAME", "STORE_GLOBAL", "STORE_DEREF"})
_LITERAL_AUTH = re.compile(r"^(?:Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}$")


def code_literals(code: types.CodeType, path: str, env: Mapping[str, str]) -> list[Finding]:
    """Secrets written as literals in a function pickled by value: a string constant given to a
    credential name (``{"Authorization": "Bearer ..."}``, ``api_key="..."``, ``token = "..."``,
    ``self.password = "..."``), an ``Authorization`` value, a URL with a password, or the value of a
    secret-named variable. Pairs names and constants over the bytecode's simple load sequences."""
    import dis

    found: list[Finding] = []
    where = f"{path}.<code {code.co_name}>"
    pushed: list[Any] = []  # one entry per value-producing instruction: the constant, or _OTHER
    for ins in dis.get_instructions(code):
        op = ins.opname
        if op in _SKIP_OPS:
            continue
        pairs: list[tuple[Any, Any]] = []
        if op in ("BUILD_CONST_KEY_MAP", "CALL_KW") and pushed and isinstance(pushed[-1], tuple):
            pairs = _paired(pushed[-1], pushed[:-1])
        elif op == "BUILD_MAP" and ins.arg and len(pushed) >= 2 * ins.arg:
            items = pushed[-2 * ins.arg :]
            pairs = list(zip(items[0::2], items[1::2], strict=True))
        elif op == "KW_NAMES" and isinstance(ins.arg, int) and ins.arg < len(code.co_consts):
            names = code.co_consts[ins.arg]
            if isinstance(names, tuple):
                pairs = _paired(names, pushed)
        elif op in _STORE_OPS and pushed:
            pairs = [(ins.argval, pushed[-1])]
        elif op == "STORE_ATTR" and len(pushed) > 1:
            pairs = [(ins.argval, pushed[-2])]
        for name, value in pairs:
            if isinstance(name, str) and isinstance(value, str) and value.strip() and secret_name(name):
                found.append(Finding(f"{where}[{name!r}]", "a literal given to a name like a credential"))
        if op == "LOAD_CONST":
            value = ins.argval
            pushed.append(value)
            if isinstance(value, str):
                hits = [f for f in check_string(value, f"{where}<literal>", None, "", env) if f.env or "URL" in f.what]
                if not hits and _LITERAL_AUTH.match(value):
                    hits = [Finding(f"{where}<literal>", "an authorization header value")]
                found.extend(hits)
        elif op != "KW_NAMES":  # KW_NAMES only names the call's last arguments
            _apply_effect(pushed, ins)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            found.extend(code_literals(const, where, env))
    return found


_OTHER = object()


def _paired(names: tuple, pushed: list[Any]) -> list[tuple[Any, Any]]:
    """``names`` with the last ``len(names)`` values pushed; none when the stack is shorter."""
    if not names or len(pushed) < len(names):
        return []
    return list(zip(names, pushed[-len(names) :], strict=True))


_NO_RESULT = ("STORE_", "POP_", "DELETE_", "RETURN", "JUMP", "RAISE", "RERAISE")


def _apply_effect(pushed: list[Any], ins: Any) -> None:
    """Follow the value stack roughly: what an instruction consumed becomes one unknown result."""
    import dis

    try:
        effect = (
            dis.stack_effect(ins.opcode, ins.arg) if ins.opcode >= dis.HAVE_ARGUMENT else dis.stack_effect(ins.opcode)
        )
    except ValueError:
        pushed.clear()  # an instruction we cannot follow: forget rather than mispair
        return
    op = ins.opname
    if op.startswith(_NO_RESULT) and effect <= 0:
        del pushed[len(pushed) + effect :]
    elif effect < 0:
        del pushed[len(pushed) + effect - 1 :]
        pushed.append(_OTHER)
    elif op.startswith("LOAD_") and op not in ("LOAD_ATTR", "LOAD_METHOD"):
        pushed.extend([_OTHER] * effect)
    else:
        if pushed:
            pushed[-1] = _OTHER
        pushed.extend([_OTHER] * effect)
    del pushed[:-64]


def _global_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names


def _visit_state(o: Any, path: str, visit: Any) -> None:
    state = getattr(o, "__dict__", None)
    if isinstance(state, dict):
        for key, value in list(state.items()):
            visit(value, f"{path}.{key}", key, "")
    for extra in ("__pydantic_extra__", "__pydantic_private__"):
        more = getattr(o, extra, None) if hasattr(type(o), "model_fields") else None
        if isinstance(more, dict):
            for key, value in list(more.items()):
                visit(value, f"{path}.{key}", key, "")
    for cls in type(o).__mro__:
        slots = cls.__dict__.get("__slots__", ())
        for slot in (slots,) if isinstance(slots, str) else slots:
            if slot in ("__dict__", "__weakref__") or slot.startswith("__pydantic"):
                continue
            try:
                value = getattr(o, slot)
            except AttributeError:
                continue
            visit(value, f"{path}.{slot}", slot, "")
