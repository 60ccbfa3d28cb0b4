"""Strip secrets from evidence before anything leaves the cluster.

What is redacted: values of Secret objects (``data``/``stringData``), env values whose name says
they hold a secret, API keys and tokens of well-known shapes, bearer and basic auth headers,
private keys, passwords in URLs, and the caller's own patterns. Optionally, object names are
masked (``pod-1``) and unmasked in the answer. The count of redactions is reported.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

MASK = "[REDACTED]"
_SECRET_NAME = re.compile(r"(?i)(pass(word|wd)?|secret|token|api[_-]?key|apikey|credential|private[_-]?key|auth)")
# (pattern, prefix group): the prefix group (a "key=" or "Bearer ") is kept, the rest is masked.
_PATTERNS: list[tuple[re.Pattern[str], int]] = [
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S), 0),
    (re.compile(r"(?i)(\b(?:bearer|basic)\s+)[A-Za-z0-9._~+/=-]{8,}"), 1),
    (re.compile(r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{16,}"), 0),
    (re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr|github_pat)_[A-Za-z0-9_]{20,}"), 0),
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"), 0),
    (re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"), 0),
    (re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"), 0),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"), 0),  # JWTs, SA tokens
    (re.compile(r"(?i)(\b(?:api[_-]?key|token|secret|password|passwd)[\"']?\s*[=:]\s*[\"']?)(?!\[REDACTED\])[^\s'\",;]{6,}"), 1),
]
_URL_PASSWORD = re.compile(r"([a-z][a-z0-9+.-]*://[^:/\s@]+:)(?!\[REDACTED\])([^@\s/]+)(@)", re.I)


@dataclass
class Redactor:
    patterns: list[str] = field(default_factory=list)
    anonymize: bool = False
    count: int = 0
    names: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._user = [re.compile(p) for p in self.patterns]

    def text(self, value: str) -> str:
        """Redact secrets of known shapes (and the caller's patterns) from free text."""
        out = value
        for pattern, keep in _PATTERNS:
            out = pattern.sub(lambda m, keep=keep: self._hit((m.group(keep) if keep else "") + MASK), out)
        out = _URL_PASSWORD.sub(lambda m: self._hit(m.group(1) + MASK + m.group(3)), out)
        for pattern in self._user:
            out = pattern.sub(lambda m: self._hit(MASK), out)
        return out

    def _hit(self, replacement: str) -> str:
        self.count += 1
        return replacement

    def obj(self, node: Any, *, kind: str | None = None) -> Any:
        """Redact a Kubernetes object (or any JSON): Secret values, secret-looking env, text."""
        if isinstance(node, dict):
            node_kind = node.get("kind", kind)
            out: dict[str, Any] = {}
            for key, value in node.items():
                if node_kind == "Secret" and key in ("data", "stringData") and isinstance(value, dict):
                    out[key] = {k: self._hit(MASK) for k in value}
                elif key == "env" and isinstance(value, list):
                    out[key] = [self._env(item) for item in value]
                elif key == "last-applied-configuration" or key.endswith("/last-applied-configuration"):
                    out[key] = self.text(str(value)) if node_kind != "Secret" else self._hit(MASK)
                else:
                    out[key] = self.obj(value, kind=node_kind)
            return out
        if isinstance(node, list):
            return [self.obj(v, kind=kind) for v in node]
        if isinstance(node, str):
            return self.text(node)
        return node

    def _env(self, item: Any) -> Any:
        if isinstance(item, dict) and "value" in item and _SECRET_NAME.search(str(item.get("name", ""))):
            return {**item, "value": self._hit(MASK)}
        return self.obj(item)

    # ---------------------------------------------------------------- anonymization

    def mask_names(self, text: str, names: Iterable[tuple[str, str]]) -> str:
        """Replace object names with stable placeholders (``pod-1``) when anonymizing."""
        if not self.anonymize:
            return text
        for kind, name in names:
            if name and name not in self.names:
                self.names[name] = f"{kind.lower()}-{sum(1 for v in self.names.values() if v.startswith(kind.lower())) + 1}"
        for name in sorted(self.names, key=len, reverse=True):
            text = _word(name).sub(self.names[name], text)
        return text

    def unmask(self, text: str) -> str:
        for name, placeholder in sorted(self.names.items(), key=lambda kv: len(kv[1]), reverse=True):
            text = _word(placeholder).sub(name, text)
        return text


def _word(name: str) -> re.Pattern[str]:
    """``name`` as a whole word: ``web`` must not touch ``webhook`` or ``web-2``."""
    return re.compile(rf"(?<![\w.-]){re.escape(name)}(?![\w-])")
