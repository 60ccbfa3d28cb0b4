"""The small expression language of Argo's ``when``, ``depends`` and ``retryStrategy.expression``.

Supported: ``&&``, ``||``, ``!``, parentheses, ``== != < > <= >=``, quoted strings, numbers, bare
words, dotted names resolved by the caller (``A.Succeeded``, ``lastRetry.exitCode``) and
``asInt(x)``. After ``{{...}}`` substitution a bare word the resolver does not know is a string,
as in Argo's ``when: "{{workflow.status}} != Succeeded"``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from llmstep.errors import WorkflowError

_TOKEN = re.compile(
    r"\s*(?:(?P<op>&&|\|\||==|!=|<=|>=|[()!<>,])|(?P<str>'[^']*'|\"[^\"]*\")"
    r"|(?P<num>-?\d+(?:\.\d+)?(?![\w.]))|(?P<word>[A-Za-z_][\w.\-]*))"
)
Resolver = Callable[[str], Any]


class _Unknown:
    """Marker for a name the resolver does not know."""


UNKNOWN = _Unknown()


def tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise WorkflowError(f"cannot parse expression {text!r} at {text[pos:]!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        pos = match.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return tokens


def evaluate(text: str, resolve: Resolver) -> Any:
    """Evaluate ``text``; ``resolve(name)`` gives a name's value or UNKNOWN."""
    parser = _Parser(tokenize(text), resolve, text)
    value = parser.expr()
    if parser.pos != len(parser.tokens):
        raise WorkflowError(f"unexpected {parser.tokens[parser.pos][1]!r} in expression {text!r}")
    return value


def names(text: str) -> list[str]:
    """The bare names an expression uses (to check them before running)."""
    return [value for kind, value in tokenize(text) if kind == "word" and value not in ("asInt", "true", "false")]


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], resolve: Resolver, text: str) -> None:
        self.tokens, self.resolve, self.text, self.pos = tokens, resolve, text, 0

    def peek(self) -> str | None:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        if self.pos >= len(self.tokens):
            raise WorkflowError(f"expression {self.text!r} ends too early")
        token = self.tokens[self.pos]
        if value is not None and token[1] != value:
            raise WorkflowError(f"expected {value!r} in expression {self.text!r}, found {token[1]!r}")
        self.pos += 1
        return token

    def expr(self) -> Any:
        left = self.conj()
        while self.peek() == "||":
            self.take()
            right = self.conj()
            left = bool(left) or bool(right)
        return left

    def conj(self) -> Any:
        left = self.unary()
        while self.peek() == "&&":
            self.take()
            right = self.unary()
            left = bool(left) and bool(right)
        return left

    def unary(self) -> Any:
        if self.peek() == "!":
            self.take()
            return not bool(self.unary())
        return self.compare()

    def compare(self) -> Any:
        left = self.atom()
        op = self.peek()
        if op in ("==", "!=", "<", ">", "<=", ">="):
            self.take()
            right = self.atom()
            return _compare(op, left, right)
        return left

    def atom(self) -> Any:
        kind, value = self.take()
        if value == "(":
            inner = self.expr()
            self.take(")")
            return inner
        if kind == "str":
            return value[1:-1]
        if kind == "num":
            return float(value) if "." in value else int(value)
        if kind == "word":
            if value == "asInt" and self.peek() == "(":
                self.take("(")
                inner = self.expr()
                self.take(")")
                try:
                    return int(inner)
                except (TypeError, ValueError):
                    raise WorkflowError(f"asInt({inner!r}) is not a number in {self.text!r}") from None
            if value in ("true", "false"):
                return value == "true"
            resolved = self.resolve(value)
            return value if resolved is UNKNOWN else resolved
        raise WorkflowError(f"unexpected {value!r} in expression {self.text!r}")


def _compare(op: str, left: Any, right: Any) -> bool:
    if isinstance(left, (int, float)) != isinstance(right, (int, float)):
        left, right = str(left), str(right)
    if op == "==":
        return bool(left == right)
    if op == "!=":
        return bool(left != right)
    try:
        return bool({"<": left < right, ">": left > right, "<=": left <= right, ">=": left >= right}[op])
    except TypeError:
        raise WorkflowError(f"cannot compare {left!r} {op} {right!r}") from None
