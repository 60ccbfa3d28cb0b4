"""Strip secrets from evidence before anything leaves the cluster.

Two passes, both always run. The structural pass reads objects: the values of Secrets (``data``,
``stringData``, also as items of a ``SecretList``), of any key, env var or parameter whose name
says it holds a secret (one rule: :data:`SECRET_NAME`), and the value after a secret-named flag
in ``args``. The text pass reads everything rendered, manifests included: the same names in
``NAME=V``, ``name: V``, ``--flag V`` and INI forms, the token formats of well-known services,
Basic and Bearer credentials, PEM and PGP private keys, URL userinfo, ``curl -u``, webhook URLs,
a Secret's data in a manifest that is not valid YAML, and the caller's own patterns. Names,
namespaces, hosts and IPs are masked by :mod:`llmstep.diagnose.anonymize` when asked. The count
of redactions is reported.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from llmstep.diagnose.settings import compile_patterns

MASK = "[REDACTED]"

# One rule for "this name says its value is a secret": env vars, map keys, parameters, flags and
# NAME=V text. The secret word ends the name, so DB_PASSWORD, GITHUB_TOKEN, MYSQL_PWD and
# registry-password match, and secretKeyRef, secretName, max_tokens and PASSWORD_FILE do not.
_START = r"(?:(?<=[_.-])|(?<![\w.-]))"  # at the start of a part of the name
_SECRET_END = (
    rf"(?:password|passwd|passphrase|{_START}(?:pass|pwd|pw|auth)|secret|token|api[_-]?key|apikey|"
    r"credentials?|[_.-]key|(?:access|account|secret|private|signing|master|encryption|storage)key|"
    r"dockerconfigjson|dockercfg|htpasswd)"
)
SECRET_NAME = re.compile(rf"(?i)^[\w.-]*?{_SECRET_END}$")
"""A name (env var, key, parameter, flag without its dashes) whose value is a secret."""

# A value that is a reference, not a secret: keep it, it is evidence (which param, which env).
_REFERENCE = re.compile(r"^\s*(?:\$\([^)]*\)|\$\{[^}]*\}|\{\{[^}]*\}\}|<set to [^>]*>|\[REDACTED\])\s*$")
_KEEP = r"[\"']?(?:[{\[]|<set to|\$\(|\$\{|(?:null|true|false|none|~)(?![\w-]))|[|>][-+]?[ \t]*(?:\n|$)"
_VALUE = r"(\"[^\"\n]*\"|'[^'\n]*'|[^\s'\",;&})\]]+)"

# (pattern, group kept): the kept group (a "name=" or "Bearer ") stays, the rest is masked.
_PATTERNS: list[tuple[re.Pattern[str], int]] = [
    # every PEM private-key kind and PGP private key blocks; a block cut off by a log tail too
    (re.compile(r"(-{4,5} ?BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)? ?-{4,5})(?!\s*\[REDACTED\])(?:(?!-{4,5} ?END|\n\n## ).)+"
                r"(?=-{4,5} ?END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)? ?-{4,5}|\n\n## |\Z)", re.S), 1),
    (re.compile(r"(?i)(authorization[\"']?[ \t]*[:=][ \t]*[\"']?(?:[a-z-]+[ \t]+)?)(?![\"']?\[REDACTED\])[^\s\"',;]+"), 1),
    (re.compile(r"(?i)((?<![\w-])(?:bearer|basic)[ \t]+)(?!\[REDACTED\])[A-Za-z0-9._~+/=-]{8,}"), 1),
    (re.compile(r"(?i)(https://hooks\.slack\.com/(?:services|workflows|triggers)/)[A-Za-z0-9/_-]+"), 1),
    (re.compile(r"(?i)(https://(?:[\w-]+\.)?discord(?:app)?\.com/api/webhooks/)[\w/-]+"), 1),
    (re.compile(r"(?i)(https://[\w.-]+\.webhook\.office\.com/)[\w/@-]+"), 1),
    # well-known token formats: OpenAI and Anthropic, GitHub, GitLab, Slack, Google, Stripe,
    # AWS access key ids, npm, Hugging Face, SendGrid, DigitalOcean, Shopify, PyPI, JWTs
    (re.compile(r"(?<![A-Za-z0-9])sk-[A-Za-z0-9_-]{16,}"), 0),
    (re.compile(r"(?<![A-Za-z0-9])(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})"), 0),
    (re.compile(r"(?<![A-Za-z0-9])gl(?:pat|dt|rt|ptt|cbt|oas|soat|ft|imt|agent|ffct)-[A-Za-z0-9_-]{20,}"), 0),
    (re.compile(r"(?<![A-Za-z0-9])(?:xox[abposre]|xapp)-[A-Za-z0-9-]{10,}"), 0),
    (re.compile(r"(?<![A-Za-z0-9])(?:AIza[0-9A-Za-z_-]{35}|ya29\.[0-9A-Za-z_-]{20,}|GOCSPX-[0-9A-Za-z_-]{20,})"), 0),
    (re.compile(r"(?<![A-Za-z0-9])(?:(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,}|whsec_[0-9A-Za-z]{20,})"), 0),
    (re.compile(r"(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Za-z0-9])"), 0),
    (re.compile(r"(?<![A-Za-z0-9])(?:npm_[A-Za-z0-9]{36}|hf_[A-Za-z0-9]{30,}|dop_v1_[a-f0-9]{64}|shp(?:at|ss|ca)_[a-fA-F0-9]{32}"
                r"|pypi-AgE[A-Za-z0-9_-]{50,}|SG\.[\w-]{16,}\.[\w-]{16,})"), 0),
    (re.compile(r"(?<![\w-])eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"), 0),  # JWTs, SA tokens
    # an AWS secret access key (40 characters of base64 with upper, lower and digits; a git sha
    # or a sha256 digest is lowercase hex and never matches)
    (re.compile(r"(?<![A-Za-z0-9/+=])(?=[A-Za-z0-9/+]{0,39}[A-Z])(?=[A-Za-z0-9/+]{0,39}[a-z])(?=[A-Za-z0-9/+]{0,39}[0-9])"
                r"[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])"), 0),
    # {name: DB_PASSWORD, value: V} as JSON or YAML text: env, params (a document that is not YAML)
    (re.compile(rf"(?i)(\bname[\"']?[ \t]*:[ \t]*[\"']?[\w.-]*?{_SECRET_END}[\"']?[ \t]*(?:,[ \t]*|\n[ \t]*)[\"']?"
                rf"(?:value|default)[\"']?[ \t]*:[ \t]*)(?!{_KEEP}){_VALUE}"), 1),
    # NAME=V, name: V, "name": "V", INI name = V, ?name=V in a query
    (re.compile(rf"(?i)(?<![\w.-])([\w.-]*?{_SECRET_END}[\"']?[ \t]*[:=][ \t]*)(?!{_KEEP}){_VALUE}"), 1),
    # --password V, "--password", "V", and kubectl describe's one argument per line
    (re.compile(rf"(?i)(?<![\w-])(--?[\w.-]*?{_SECRET_END}[\"']?(?:[ \t]*,[ \t]*|[ \t]+|[ \t]*\n[ \t]*(?:-[ \t]+)?))"
                rf"(?![\"']?-|{_KEEP}){_VALUE}"), 1),
    # curl -u user:password (the user stays)
    (re.compile(r"(?<![\w-])((?:-u|--user|--proxy-user|-U)(?:[ \t]+|=)[\"']?[^\s:\"'=]+:)(?!\[REDACTED\])[^\s\"']+"), 1),
]
# scheme://userinfo@host: everything up to the last '@' before the host ("p@ss" is one password)
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^\s/?#\"'<>]*)@")
# a Secret's data in text (a document that is not valid YAML, a pasted manifest)
_SECRET_KIND = re.compile(r"[\"']?kind[\"']?[ \t]*:[ \t]*[\"']?Secret(?:List)?\b")
_PARTS = re.compile(r"(?m)(?=^(?:---|## |\.\.\.$))")  # documents and evidence sections
_DATA_BLOCK = re.compile(r"(?m)^([ \t]*)[\"']?(?:data|stringData)[\"']?[ \t]*:[ \t]*(?:\n((?:\1[ \t]+.*(?:\n|$)|[ \t]*\n)+)|(\{.*\}))")
_DATA_LINE = re.compile(r"^([ \t]*[\"']?[\w.-]+[\"']?[ \t]*:[ \t]*)(?!\[REDACTED\])(\S.*)$")


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
        """Redact secrets of known shapes (and the caller's patterns) from free text."""
        out = "".join(self._secret_data(part) if _SECRET_KIND.search(part) else part for part in _PARTS.split(value))
        for pattern, keep in _PATTERNS:
            out = pattern.sub(partial(self._mask_keeping, keep), out)
        out = _URL_USERINFO.sub(self._userinfo, out)
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

    def _secret_data(self, text: str) -> str:
        """Mask the values under ``data:``/``stringData:`` of a Secret written as text."""

        def block(m: re.Match[str]) -> str:
            if m.group(3) is not None:  # flow style: data: {k: v, ...}
                inner = re.sub(r"(:[ \t]*)(?!\[REDACTED\])[^,}]+", lambda v: self._hit(v.group(1) + MASK), m.group(3))
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
                elif key == "items" and isinstance(value, list) and isinstance(node_kind, str) and node_kind.endswith("List"):
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
            if (isinstance(flag, str) and flag.startswith("-") and "=" not in flag and secret_name(flag)
                    and isinstance(value, str) and not value.startswith("-") and self._secret_value(value)):
                out[i + 1] = self._hit(MASK)
        return out

    @staticmethod
    def _secret_value(value: Any) -> bool:
        """A value worth masking: not empty, not a boolean, not a reference to where it comes from."""
        if value is None or isinstance(value, bool) or value == "" or value == {} or value == []:
            return False
        return not (isinstance(value, str) and _REFERENCE.match(value))

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
