"""Secret values a step's payload would carry, found at compile time (the one home of that rule).

A payload is plain text in the Workflow or Pipeline (the trust root, kept in the cluster's etcd),
in every run record and in the render cache, so a secret in a payload is a secret on disk and on
the cluster. LangChain records a model's own key by id (``lc_secrets``: ``openai_api_key`` ->
``OPENAI_API_KEY``) and the step reads it from the Kubernetes Secret; everything else a Runnable
holds travels by value. This module finds what would travel:

- by place: a string whose name (a field, a dict key, a header, a query parameter, a closure or
  global variable) says it is a credential (``api_key``, ``X-Api-Key``, ``Authorization``,
  ``client_secret``, ``db_password``, ``access_token``, a URL's ``?key=``), an ``Authorization``-
  style header value (``Bearer ...``), a URL with a password, or a pydantic ``SecretStr``;
- by value: the value of a secret-named environment variable (``OPENAI_API_KEY``, ``*_TOKEN``,
  ``*_PASSWORD``, ``*_SECRET``, ``*_KEY``, ...) present at compile time, anywhere;
- and, as a last net, any known secret value (those above and the keys given in code) in the
  payload's serialized bytes.

For LangChain JSON the dump itself is searched (exactly what travels); for a pickled Runnable,
``leaks_pickled`` walks the object graph cloudpickle carries.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

if TYPE_CHECKING:
    from llmstep.plan import Plan

MIN_VALUE = 8
"""Shorter environment values (``1``, ``true``, ``dev``) are too common to mean a leak."""

_ENV_NAME = re.compile(r"(?:^|_)(?:API_?KEY|KEY|TOKEN|PASSWORD|PASSWD|PWD|PASS|PASSPHRASE|SECRET|CREDENTIALS?)$")
_NOT_SECRET_ENV = frozenset({"PWD", "OLDPWD"})  # the shell's working directories

_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_SECRET_WORDS = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "passphrase",
        "secret",
        "token",
        "apikey",
        "authorization",
        "auth",
        "cookie",
        "credential",
        "credentials",
        "privatekey",
    }
)
_KEY_QUALIFIERS = frozenset(
    {
        "api",
        "access",
        "secret",
        "private",
        "auth",
        "subscription",
        "master",
        "signing",
        "encryption",
        "client",
        "license",
        "account",
    }
)
# tokenizer and counting fields: bos_token="<s>", max_token=...
_NOT_SECRET_TOKEN = frozenset({"bos", "eos", "pad", "unk", "sep", "cls", "mask", "max", "min", "num", "start", "end"})
_QUERY_SECRET_WORDS = frozenset({"key", "sig", "signature", "apikey"})
# one credential after the scheme (or Digest's parameters), not prose such as "token counter app"
_AUTH_SCHEME = re.compile(
    r"^\s*(?:(?:bearer|basic|token|apikey|api-key|key)\s+[\w.~+/=:-]{8,}\s*|digest\s+\w+=.*)$", re.IGNORECASE
)

MAX_NODES = 50_000
"""Bound of a pickled object walk; the byte scan still runs past it."""


@dataclass(frozen=True)
class Finding:
    """A secret at ``path`` (``chain.steps[1].default_headers['X-Api-Key']``); ``what`` says why."""

    path: str
    what: str
    env: str = ""  # the environment variable whose value it is, when known


@dataclass(frozen=True)
class InlineKey:
    """A model key given in code (``ChatOpenAI(api_key=...)``), which LangChain records by id."""

    path: str
    cls: str
    field: str
    secret_id: str
    value: str


def secret_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The secret-named variables of ``environ`` worth searching for: ``{value: name}``."""
    found: dict[str, str] = {}
    for name, value in sorted(environ.items()):
        if name.upper() in _NOT_SECRET_ENV or not _ENV_NAME.search(name.upper()):
            continue
        if isinstance(value, str) and len(value.strip()) >= MIN_VALUE:
            found.setdefault(value.strip(), name)
    return found


def secret_name(name: str, *, query: bool = False) -> bool:
    """True when ``name`` (a field, key, header or parameter name) says its value is a credential."""
    words = [w.lower() for w in _WORD.findall(name)]
    if not words:
        return False
    last, before = words[-1], (words[-2] if len(words) > 1 else "")
    if query and last in _QUERY_SECRET_WORDS:
        return True
    if last == "key":
        return before in _KEY_QUALIFIERS
    if last == "token":
        return before not in _NOT_SECRET_TOKEN
    return last in _SECRET_WORDS


def context_of(name: str | None, inherited: str) -> str:
    """``header`` or ``query`` for the dict under a name like ``default_headers`` / ``default_query``."""
    if name is None:
        return inherited
    words = {w.lower() for w in _WORD.findall(name)}
    if words & {"header", "headers"}:
        return "header"
    if "query" in words:
        return "query"
    return inherited


def _url_finding(value: str) -> str:
    if "://" not in value or len(value) > 4096:
        return ""
    try:
        parts = urlsplit(value.strip())
        password = parts.password
    except ValueError:
        return ""
    if password:
        return "a URL with a password"
    if any(v and secret_name(k, query=True) for k, v in parse_qsl(parts.query)):
        return "a URL with a credential in its query"
    return ""


def check_string(value: str, path: str, name: str | None, context: str, env: Mapping[str, str]) -> Iterator[Finding]:
    for known, var in env.items():
        if known in value:
            yield Finding(path, f"the value of the environment variable {var}", var)
            return
    if not value.strip():
        return
    if name is not None and secret_name(name, query=context == "query"):
        kind = {"header": "a header", "query": "a query parameter"}.get(context, "a value")
        yield Finding(path, f"{kind} named like a credential")
    elif context == "header" and _AUTH_SCHEME.match(value):
        yield Finding(path, "a header holding credentials (an authorization scheme)")
    elif what := _url_finding(value):
        yield Finding(path, what)


# ---------------------------------------------------------------- LangChain JSON


def scan_dump(dumped: Any, path: str, env: Mapping[str, str]) -> list[Finding]:
    """Secrets in a LangChain dump, with paths through constructor kwargs (``.default_headers``)."""
    found: list[Finding] = []

    def visit(node: Any, path: str, name: str | None, context: str) -> None:
        if isinstance(node, str):
            found.extend(check_string(node, path, name, context, env))
        elif isinstance(node, list):
            for i, item in enumerate(node):
                visit(item, f"{path}[{i}]", None, context)
        elif isinstance(node, dict):
            if node.get("lc") == 1 and node.get("type") == "secret":
                return  # recorded by id: the value is not here
            if node.get("lc") == 1 and node.get("type") == "constructor" and isinstance(node.get("kwargs"), dict):
                for key, value in node["kwargs"].items():
                    visit(value, f"{path}.{key}", key, "")
                return
            inner = context_of(name, context)
            for key, value in node.items():
                visit(value, f"{path}[{str(key)!r}]", str(key), inner)

    visit(dumped, path, None, "")
    return found


def scan_settings(settings: Any, path: str, env: Mapping[str, str]) -> list[Finding]:
    """Secrets in the string fields of a settings dataclass (``Diagnose``), which render into
    the workflow's arguments: a URL with a password, the value of a secret-named variable."""
    import dataclasses

    found: list[Finding] = []
    for field in dataclasses.fields(settings):
        values = getattr(settings, field.name)
        for i, value in enumerate(values if isinstance(values, (tuple, list)) else [values]):
            if isinstance(value, str):
                where = f"{path}.{field.name}" + (f"[{i}]" if isinstance(values, (tuple, list)) else "")
                found.extend(check_string(value, where, field.name, "", env))
    return found


def model_secrets(runnable: Any, path: str) -> tuple[list[InlineKey], list[Finding]]:
    """In the LangChain objects of ``runnable``: every ``lc_secrets`` field with a value (recorded
    by id), and every other ``SecretStr`` field with one (which LangChain cannot record)."""
    from langchain_core.load.serializable import Serializable
    from pydantic import SecretBytes, SecretStr

    keys: list[InlineKey] = []
    unrecorded: list[Finding] = []
    seen: set[int] = set()
    holders = (SecretStr, SecretBytes, dict, list, tuple, Serializable)  # what a secret can be or be in

    def visit(obj: Any, path: str) -> None:
        if id(obj) in seen or len(seen) > MAX_NODES:
            return
        seen.add(id(obj))
        if isinstance(obj, (SecretStr, SecretBytes)):
            unrecorded.append(Finding(path, "a SecretStr that LangChain does not record by id (not in lc_secrets)"))
        elif isinstance(obj, dict):
            for key, value in obj.items():
                visit(value, f"{path}[{key!r}]")
        elif isinstance(obj, (list, tuple)):
            for i, value in enumerate(obj):
                visit(value, f"{path}[{i}]")
        elif isinstance(obj, Serializable):
            try:
                secrets = dict(obj.lc_secrets)
            except Exception:  # a broken property: nothing recorded by id here
                secrets = {}
            for field, secret_id in secrets.items():
                value = getattr(obj, field, None)
                text = value.get_secret_value() if isinstance(value, SecretStr) else value
                if isinstance(text, str) and text:
                    keys.append(InlineKey(f"{path}.{field}", type(obj).__name__, field, secret_id, text))
            for field in type(obj).model_fields:
                value = getattr(obj, field, None)
                if field not in secrets and isinstance(value, holders):
                    visit(value, f"{path}.{field}")

    visit(runnable, path)
    return keys, unrecorded


# ---------------------------------------------------------------- the last net


def plan_holds_secret(plan: Plan, environ: Mapping[str, str]) -> bool:
    """True when a payload of ``plan`` holds a secret by these rules, with ``environ``'s values: a
    plan not made by ``compile`` (``Plan`` is public data), which the render cache must not keep."""
    import base64

    env = secret_env(environ)
    for step in plan.steps:
        payload = step.payload
        if payload.get("format") == "pickle":
            text = base64.b64decode(payload.get("data") or "")
        else:
            if scan_dump(payload.get("data"), step.path, env):
                return True
            text = json.dumps(payload.get("data"), ensure_ascii=False).encode("utf-8")
        if in_bytes(text, env):
            return True
    return False


def in_bytes(data: bytes, known: Mapping[str, str]) -> list[str]:
    """The labels of the ``known`` values (``{value: label}``) found in ``data``, as written in
    JSON text or in a pickle."""
    hits = []
    for value, label in known.items():
        if len(value) < MIN_VALUE:
            continue
        forms = {
            value.encode("utf-8"),
            json.dumps(value)[1:-1].encode("utf-8"),
            json.dumps(value, ensure_ascii=False)[1:-1].encode("utf-8"),
        }
        if any(form in data for form in forms):
            hits.append(label)
    return hits


# ---------------------------------------------------------------- what the user reads


UNRECORDED_ADVICE = (
    "LangChain records by id only the secrets a class declares (lc_secrets), and a pickled step cannot carry "
    "one: declare the field in the class's lc_secrets, or give the value to a model field that is, so the "
    "step reads it from the Kubernetes Secret {secret!r}."
)


def refusal(where: str, findings: list[Finding], secret: str, *, pickled: bool, advice: str = "") -> Exception:
    """The SecretError for ``findings`` in the step at ``where``: each path, and the way through the Secret."""
    from llmstep.errors import SecretError

    lines = [
        f"{where} holds a secret that its payload would carry in plain text (into the workflow, "
        "its run records and the render cache):"
    ]
    lines += [f"  {f.path}: {f.what}" for f in findings[:10]]
    it = "it" if len(findings) == 1 else "them"
    if len(findings) > 10:
        lines.append(f"  ... and {len(findings) - 10} more")
    name = next((f.env for f in findings if f.env), "") or "MY_API_KEY"
    if advice:
        lines.append(advice)
    elif pickled:
        lines.append(
            "A pickled step cannot carry a secret: make the part that needs it a LangChain-serializable "
            f"step (a model's own api_key is recorded by id and read from the Kubernetes Secret {secret!r})."
        )
    else:
        lines.append(
            f"Pass {it} through the Kubernetes Secret {secret!r} instead: a model's own key as its api_key "
            "(LangChain records it by id, e.g. OPENAI_API_KEY); any other value from an environment variable, "
            f"with the step declaring it, e.g. default_headers={{...: os.environ[{name!r}]}} inside "
            f"llmstep.Step(runnable, secrets=[{name!r}]): llmstep records that value by id and the step reads "
            f"{name} from the Secret (kubectl create secret generic {secret} --from-literal={name}=...)."
        )
    return SecretError("\n".join(lines))


def in_code_warning(keys: list[InlineKey], environ: Mapping[str, str], secret: str) -> str:
    """The CredentialsWarning text for model keys given in code, one secret id."""
    secret_id = keys[0].secret_id
    places = ", ".join(f"{k.path} ({k.cls})" for k in keys[:5]) + (" ..." if len(keys) > 5 else "")
    here = (
        f"{secret_id} is not set here, so a local run stops with exit 3 until you export it or pass --secrets FILE"
        if not environ.get(secret_id)
        else f"a local run uses the {secret_id} of your environment (or of --secrets FILE), which is another key"
    )
    return (
        f"the key given in code to {places} is not sent with the chain: LangChain records it by id as "
        f"{secret_id}, and each step reads {secret_id} from the Kubernetes Secret {secret!r} "
        f"(kubectl create secret generic {secret} --from-literal={secret_id}=...); {here}"
    )
