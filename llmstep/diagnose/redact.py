"""Strip secrets from evidence before anything leaves the cluster: by structure first, then by
detectors.

The structural pass reads objects: the values of Secrets (``data``, ``stringData``, also as items
of a ``SecretList``), of any key, env var or parameter whose name says it holds a secret (one
rule: :data:`llmstep.diagnose.secretforms.SECRET_NAME`), and the value after a secret-named flag
in ``args``. Text gets the same reading: JSON inside a log line is redacted as the object it is,
a Secret's data written as YAML (block or flow style, over several lines) or JSON loses its
values, and :mod:`llmstep.diagnose.secretforms` masks a credential-named value in every notation
(YAML, JSON, env lines, flags, headers, cookies, URLs, connection strings, credential files,
programs' password options, prose). Then :mod:`llmstep.diagnose.detectors` masks what has no
name beside it: the token formats of well-known providers and random-looking strings on a line
that speaks of a credential. The caller's own patterns run last. Names, namespaces, hosts and IPs
are masked by :mod:`llmstep.diagnose.anonymize` when asked. The count of redactions is reported.

Why not a detector library: detect-secrets (the best kept one on PyPI) reads files line by line
for a commit hook; on log lines its filters report almost none of the credential shapes above
unless quoted, its ad-hoc mode reports every word (digests, UIDs and container ids included), it
has no structure (a Secret's data, a kubeconfig) and no Google key, and it costs ~0.3 s to import.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from llmstep.diagnose.detectors import TOKEN_FORMATS, high_entropy
from llmstep.diagnose.secretforms import FORMS, MASK, REFERENCE, SECRET_NAME, URL_USERINFO
from llmstep.diagnose.settings import compile_patterns

__all__ = ["MASK", "SECRET_NAME", "Redactor", "secret_name"]

# a Secret's data in text (a document that is not valid YAML, a pasted manifest, a log line)
_SECRET_KIND = re.compile(r"[\"']?kind[\"']?[ \t]*:[ \t]*[\"']?Secret(?:List)?\b")
_PARTS = re.compile(r"(?m)(?=^(?:---|## |\.\.\.$))")  # documents and evidence sections
_DATA_BLOCK = re.compile(
    r"(?m)^([ \t]*)[\"']?(?:data|stringData)[\"']?[ \t]*:[ \t]*"
    r"(?:\n((?:\1[ \t]+.*(?:\n|$)|[ \t]*\n)+)|(\{[^{}]*\}))"
)
_DATA_LINE = re.compile(r"^([ \t]*[\"']?[\w.-]+[\"']?[ \t]*:[ \t]*)(?!\[REDACTED\])(\S.*)$")
_FLOW_ITEM = re.compile(r"(:[ \t]*)(?![\"']?\[REDACTED\])[^,}]+")
# where a JSON object or array may start in text: not after what JSON itself writes before one
# ("{", "[", ":", ","), so nested ones are read with the outermost, not once each (quadratic)
_JSON_START = re.compile(r"(?<![{\[:,])(?<![{\[:,][ \t])[{\[][ \t\n]*[\"{\[]")
_DECODER = json.JSONDecoder()


def secret_name(name: Any) -> bool:
    """Whether ``name`` (an env var, a key, a parameter, a flag) says its value is a secret."""
    return isinstance(name, str) and bool(SECRET_NAME.match(name.lstrip("-")))


@dataclass
class Redactor:
    """Both passes over one diagnosis's evidence, counting what they mask (the caller's patterns too)."""

    patterns: list[str] = field(default_factory=list)
    anonymize: bool = False
    count: int = 0
    names: dict[str, str] = field(default_factory=dict)
    """Real value -> placeholder, when anonymizing (filled by :meth:`mask_names`)."""

    def __post_init__(self) -> None:
        self._user = compile_patterns(self.patterns)

    def text(self, value: str) -> str:
        """Redact secrets from free text: :meth:`structure`, then :meth:`detect`."""
        return self.detect(self.structure(value))

    def structure(self, value: str) -> str:
        """The structures of text that span lines or hold objects: JSON inside a line, read as the
        object it is, and a Secret's data written as YAML or JSON. Cutting text to a budget after
        this pass keeps no part of a structure whose secret could no longer be recognised."""
        out = self._embedded_json(value)
        return "".join(self._secret_data(part) if _SECRET_KIND.search(part) else part for part in _PARTS.split(out))

    def detect(self, value: str) -> str:
        """Credential-named values in every notation, token formats, random strings beside a
        credential word, and the caller's own patterns."""
        out = URL_USERINFO.sub(self._userinfo, value)
        for pattern in TOKEN_FORMATS:  # exact shapes first, so that a form around one masks no more than it
            out = pattern.sub(partial(self._mask_keeping, 0), out)
        for pattern, keep in FORMS:
            out = pattern.sub(partial(self._mask_keeping, keep), out)
        out = high_entropy(out, lambda _: self._hit(MASK))
        for pattern in self._user:
            # an empty match (a lookahead the check at parse time missed) masks nothing
            out = pattern.sub(lambda m: self._hit(MASK) if m.group(0) else "", out)
        return out

    def _hit(self, replacement: str) -> str:
        self.count += 1
        return replacement

    def _mask_keeping(self, keep: int, match: re.Match[str]) -> str:
        """The mask for ``match``, after its group ``keep`` (say ``Authorization: ``) unless ``keep`` is 0."""
        return self._hit((match.group(keep) if keep else "") + MASK)

    def _userinfo(self, match: re.Match[str]) -> str:
        scheme, userinfo = match.group(1), match.group(2)
        if not userinfo or userinfo.endswith(MASK) or userinfo.startswith("$"):
            return match.group(0)
        user, colon, _ = userinfo.partition(":")
        return self._hit(f"{scheme}{user}:{MASK}@" if colon else f"{scheme}{MASK}@")

    def _embedded_json(self, text: str) -> str:
        """JSON inside text (a Secret or an env list printed on a log line) is redacted as the
        object it is; text around it, and JSON that needed no redaction, stay as they were."""
        if "{" not in text and "[" not in text:
            return text
        out, pos = [], 0
        for start in _JSON_START.finditer(text):
            if start.start() < pos:
                continue
            before = self.count
            try:
                parsed, end = _DECODER.raw_decode(text, start.start())
                redacted = self.obj(parsed)
            except (ValueError, RecursionError):  # not JSON, or nested too deep to read: it stays text
                self.count = before
                continue
            if self.count != before:
                out += [text[pos : start.start()], json.dumps(redacted, ensure_ascii=False)]
                pos = end
        return "".join(out) + text[pos:] if out else text

    def _secret_data(self, text: str) -> str:
        """Mask the values under ``data:``/``stringData:`` of a Secret written as text."""

        def block(m: re.Match[str]) -> str:
            if m.group(3) is not None:  # flow style: data: {k: v, ...}
                inner = _FLOW_ITEM.sub(lambda v: self._hit(v.group(1) + MASK), m.group(3))
                return m.group(0)[: m.start(3) - m.start(0)] + inner
            lines = []
            for line in m.group(2).split("\n"):
                kv = _DATA_LINE.match(line)
                if kv:
                    lines.append(self._hit(kv.group(1) + MASK))
                elif line.strip() and MASK not in line:
                    lines.append(self._hit(line[: len(line) - len(line.lstrip())] + MASK))
                else:
                    lines.append(line)
            return m.group(0)[: m.start(2) - m.start(0)] + "\n".join(lines)

        return _DATA_BLOCK.sub(block, text)

    def obj(self, node: Any, *, kind: str | None = None) -> Any:
        """Redact a Kubernetes object (or any JSON): Secret values, secret-named keys, env and
        parameters, secret flags' values, and text. Items of a ``FooList`` are of kind ``Foo``."""
        if isinstance(node, dict):
            node_kind = node.get("kind", kind)
            out: dict[str, Any] = {}
            secret_named_item = secret_name(node.get("name"))
            for key, value in node.items():
                if node_kind == "Secret" and key in ("data", "stringData") and isinstance(value, dict):
                    out[key] = {k: self._hit(MASK) for k in value}
                elif key == "last-applied-configuration" or key.endswith("/last-applied-configuration"):
                    out[key] = self._json_text(str(value), node_kind) if node_kind != "Secret" else self._hit(MASK)
                elif secret_named_item and key in ("value", "default") and self._secret_value(value):
                    out[key] = self._hit(MASK)  # env var, Tekton param, Argo parameter: {name, value}
                elif secret_name(key) and self._secret_value(value) and not isinstance(value, (dict, list)):
                    out[key] = self._hit(MASK)  # ConfigMap data.DB_PASSWORD, a values file's password
                elif (
                    key == "items"
                    and isinstance(value, list)
                    and isinstance(node_kind, str)
                    and node_kind.endswith("List")
                ):
                    item_kind = node_kind.removesuffix("List") or None
                    out[key] = [self.obj(v, kind=item_kind) for v in value]
                else:
                    out[key] = self.obj(value, kind=node_kind)
            return out
        if isinstance(node, list):
            return self._list(node, kind)
        if isinstance(node, str):
            return self._json_text(node, kind) if node.lstrip().startswith(("{", "[")) else self.text(node)
        return node

    def _json_text(self, value: str, kind: str | None) -> str:
        """A string holding JSON (last-applied-configuration, a config file) is redacted as the
        object it is, so {"name": "DB_PASSWORD", "value": ...} inside it is an env var too."""
        try:
            parsed = json.loads(value)
        except ValueError:
            return self.text(value)
        if not isinstance(parsed, (dict, list)):
            return self.text(value)
        return json.dumps(self.obj(parsed, kind=kind if isinstance(parsed, list) else None), ensure_ascii=False)

    def _list(self, node: list[Any], kind: str | None) -> list[Any]:
        out = [self.obj(v, kind=kind) for v in node]
        for i in range(len(node) - 1):  # args: ["--password", "V"]
            flag, value = node[i], node[i + 1]
            if (
                isinstance(flag, str)
                and flag.startswith("-")
                and "=" not in flag
                and secret_name(flag)
                and isinstance(value, str)
                and not value.startswith("-")
                and self._secret_value(value)
            ):
                out[i + 1] = self._hit(MASK)
        return out

    @staticmethod
    def _secret_value(value: Any) -> bool:
        """A value worth masking: not empty, not a boolean, not a reference to where it comes from."""
        if value is None or isinstance(value, bool) or value == "" or value == {} or value == []:
            return False
        return not (isinstance(value, str) and REFERENCE.match(value))

    # ---------------------------------------------------------------- anonymization

    def mask_names(self, text: str, names: Iterable[tuple[str, str]]) -> str:
        """Replace object names, namespaces, containers, hosts and IPs with stable placeholders
        (``pod-1``, ``namespace-1``, ``ip-1``) when anonymizing."""
        if not self.anonymize:
            return text
        from llmstep.diagnose.anonymize import mask

        return mask(text, names, self.names)

    def unmask(self, text: str) -> str:
        """Put the real values back in the model's answer."""
        from llmstep.diagnose.anonymize import unmask

        return unmask(text, self.names)
