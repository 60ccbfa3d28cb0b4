"""Rules with one home stay there: the input-shape grammar in ``llmstep.shapes`` and the exit codes in
``llmstep.exitcodes``. A copy written elsewhere drifts from its home without a test noticing, so
this one reads every module of the package (its AST: constants where the rule's values are used)
and fails on a copy. A copy that is not one (another grammar that happens to share a word) is
listed in ``ALLOWED`` with its reason.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from conftest import ROOT

from llmstep import exitcodes, shapes

PACKAGE = ROOT / "llmstep"

SHAPES_HOME = "llmstep/shapes.py"
EXITS_HOME = "llmstep/exitcodes.py"

SHAPE_KINDS = {shapes.INPUT, shapes.STEP, shapes.DICT, shapes.MERGE}
"""The first item of every shape."""
SHAPE_KEY = shapes.KEY
"""The payload key that holds a step's shape."""
PAYLOAD_MARK = "llmstep"
"""The key every payload has (its format version): a dict display with it is a payload."""
EXIT_NAMES = ("exit_code", "exitCode", "returncode")
EXITS = (ast.Attribute, ast.Name)
EXIT_CALLS = {"exit", "_exit", "SystemExit"}
EXPRESSION = re.compile(r"exitCode\)?\s*[=!]=\s*\d")
"""An engine's expression that compares an exit code with a number (Argo's ``retryStrategy``)."""

ALLOWED: dict[tuple[str, str], str] = {
    # (module, finding's kind): why it is not a copy of the rule
}


def _const(node: ast.AST | None, kind: type | tuple[type, ...]) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, kind) and not isinstance(node.value, bool)


def _name(node: ast.AST) -> str:
    return node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""


def _is_head(node: ast.AST, heads: set[str]) -> bool:
    """``x[0]``, or a name that was given ``x[0]``: the kind of a shape, where a shape is read."""
    if isinstance(node, ast.Subscript) and _const(node.slice, int) and node.slice.value == 0:
        return True
    return isinstance(node, ast.Name) and node.id in heads


def _kinds(node: ast.AST) -> bool:
    items = node.elts if isinstance(node, (ast.Tuple, ast.List, ast.Set)) else [node]
    return any(_const(i, str) and i.value in SHAPE_KINDS for i in items)


def shape_copies(source: str) -> list[str]:
    """Where ``source`` spells the shape grammar: a shape written as a list (``["step", name]``), a
    shape's kind compared with a kind's name, a payload dict that names its shape key."""
    tree = ast.parse(source)
    heads = {
        t.id
        for n in ast.walk(tree)
        if isinstance(n, ast.Assign) and _is_head(n.value, set())
        for t in n.targets
        if isinstance(t, ast.Name)
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.List) and node.elts and _const(node.elts[0], str) and node.elts[0].value in SHAPE_KINDS:
            found.append(f"{node.lineno}: writes a shape")
        elif isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(_is_head(s, heads) for s in sides) and any(_kinds(s) for s in sides):
                found.append(f"{node.lineno}: reads a shape's kind")
        elif isinstance(node, ast.Dict):
            keys = {k.value for k in node.keys if _const(k, str)}
            if {PAYLOAD_MARK, SHAPE_KEY} <= keys:
                found.append(f"{node.lineno}: writes a payload's shape key")
    return found


def _int_returned(node: ast.AST | None) -> bool:
    if isinstance(node, ast.IfExp):
        return _int_returned(node.body) or _int_returned(node.orelse)
    return _const(node, int)


def exit_copies(source: str) -> list[str]:
    """Where ``source`` writes an exit code as a number: defines one (``exit_code = 2``,
    ``EXIT_X = 3``); uses one other than 0 (the shell's success, the same for every program) to
    exit, to compare an exit code with or to return from a function that returns an exit code
    (``-> int``); reads a record's code with one as its default, or writes
    one into an engine's expression (``lastRetry.exitCode == 1``)."""
    tree = ast.parse(source)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and _const(node.value, int):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(_name(t) in EXIT_NAMES or _name(t).startswith("EXIT_") for t in targets):
                found.append(f"{node.lineno}: defines an exit code")
        elif isinstance(node, ast.keyword) and node.arg in EXIT_NAMES and _const(node.value, int):
            found.append(f"{node.value.lineno}: passes an exit code")
        elif isinstance(node, ast.Dict) and any(
            _const(k, str) and k.value in EXIT_NAMES and _const(v, int)
            for k, v in zip(node.keys, node.values, strict=True)
        ):
            found.append(f"{node.lineno}: writes an exit code")
        elif isinstance(node, ast.Call):
            if _name(node.func) in EXIT_CALLS and node.args and _const(node.args[0], int) and node.args[0].value != 0:
                found.append(f"{node.lineno}: exits with a number")
            elif (
                _name(node.func) == "get"
                and len(node.args) == 2
                and _const(node.args[0], str)
                and node.args[0].value in EXIT_NAMES
                and _const(node.args[1], int)
            ):
                found.append(f"{node.lineno}: reads an exit code with a number for its default")
        elif isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(isinstance(s, EXITS) and _name(s) in EXIT_NAMES for s in sides) and any(
                _const(s, int) and s.value != 0 for s in sides
            ):
                found.append(f"{node.lineno}: compares an exit code with a number")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _name(node.returns) == "int":
            for sub in ast.walk(node):
                if isinstance(sub, ast.Return) and _int_returned(sub.value) and ast.unparse(sub.value) != "0":
                    found.append(f"{sub.lineno}: returns an exit code as a number")
        elif _const(node, str) and EXPRESSION.search(node.value):
            found.append(f"{node.lineno}: writes an exit code into an expression")
    return found


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _copies(home: str, scan) -> list[str]:
    copies = []
    for path in _modules():
        rel = path.relative_to(ROOT).as_posix()
        if rel == home:
            continue
        for finding in scan(path.read_text(encoding="utf-8")):
            kind = finding.partition(": ")[2]
            if (rel, kind) not in ALLOWED:
                copies.append(f"{rel}:{finding}")
    return copies


def test_the_shape_grammar_is_spelled_only_in_shapes():
    assert _copies(SHAPES_HOME, shape_copies) == []


def test_exit_codes_are_numbers_only_in_their_home():
    assert _copies(EXITS_HOME, exit_copies) == []


def test_every_allowed_exception_is_still_needed():
    """An exception whose copy went away goes too, so the list stays short and true."""
    scans = {SHAPES_HOME: shape_copies, EXITS_HOME: exit_copies}
    found = {
        (p.relative_to(ROOT).as_posix(), f.partition(": ")[2])
        for p in _modules()
        for scan in scans.values()
        for f in scan(p.read_text(encoding="utf-8"))
    }
    assert set(ALLOWED) <= found


def test_the_scanners_look_for_what_the_homes_hold():
    """The scanners' words are the homes' own: the shapes' kinds and key, and every exit code the
    home defines is found there as a definition (so one defined elsewhere would be found too)."""
    assert shape_copies(repr(shapes.chain_input())) and shape_copies(repr(shapes.step_output("a")))
    assert shape_copies(repr(shapes.dict_of({}))) and shape_copies(repr(shapes.merged(shapes.chain_input(), {})))
    defined = [
        f for f in exit_copies((ROOT / EXITS_HOME).read_text(encoding="utf-8")) if f.endswith("defines an exit code")
    ]
    numbers = {v for k, v in vars(exitcodes).items() if k.startswith("EXIT_")}
    assert len(defined) >= len(numbers) >= 8  # 0, 1, 2, 3, 70, 130, 141, 143


PLANTED_SHAPES = """
def walk(shape, name):
    if shape[0] != "step":
        return ["merge", shape, {}]
    kind = shape[0]
    if kind in ("dict", "merge"):
        return None
    payload = {"llmstep": 1, "name": name, "inputs": ["input"]}
    return ["step", name]
"""

PLANTED_EXITS = """
import sys
EXIT_USAGE = 2
class Refused(Exception):
    exit_code = 3
def main(argv) -> int:
    if argv:
        sys.exit(2)
    if record.get("exit_code", 1) == 1 or result.returncode == 130:
        raise SystemExit(70)
    emit(step="s", exit_code=2)
    record = {"exit_code": 1}
    return 0 if argv else 1
RETRY = "asInt(lastRetry.exitCode) == 1"
"""


def test_the_scanners_find_a_planted_copy():
    """The control: each kind of copy, planted in a snippet, is found at its line."""
    assert sorted(shape_copies(PLANTED_SHAPES), key=lambda f: (int(f.split(":")[0]), f)) == [
        "3: reads a shape's kind",
        "4: writes a shape",
        "6: reads a shape's kind",
        "8: writes a payload's shape key",
        "8: writes a shape",
        "9: writes a shape",
    ]
    assert sorted(exit_copies(PLANTED_EXITS), key=lambda f: (int(f.split(":")[0]), f)) == [
        "3: defines an exit code",
        "5: defines an exit code",
        "8: exits with a number",
        "9: compares an exit code with a number",
        "9: reads an exit code with a number for its default",
        "10: exits with a number",
        "11: passes an exit code",
        "12: writes an exit code",
        "13: returns an exit code as a number",
        "14: writes an exit code into an expression",
    ]


def test_what_is_not_a_copy_is_not_found():
    """Other grammars share the words: a Tekton param named ``input``, a value's ``dict`` tag, a
    shell's success, a count returned from an ``-> int`` function."""
    assert shape_copies('params = [{"name": "input"}]\nif tag == "dict": pass\nx = ("input", "parts")\n') == []
    assert exit_copies("def n() -> int:\n    return 0\nif proc.returncode != 0: pass\nsize = 2\nos._exit(0)\n") == []
