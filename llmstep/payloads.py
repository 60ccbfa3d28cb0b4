"""A step's payload (``runnable.json``): how the compiler writes it and how a step reads it.

Trust model. The payload is generated at compile time and embedded in the workflow spec, which is
the trust root: whoever can edit the spec can run code in the step. Even so, a payload is loaded
with two allowlists: LangChain's own (``allowed_objects="all"``: classes in its serialization
mappings, plus llmstep's offline model) and the exact class ids recorded at compile time. Secrets
never enter a payload: LangChain records them by id and the step reads them from its environment
(a Kubernetes Secret), only for the ids the payload declares; compile refuses any other secret a
payload would carry (``llmstep.compiler.leaks``), and a step refuses a payload that reads a secret
outside a credential field, or sends the key to an endpoint the user did not configure.

Heavy imports (LangChain, cloudpickle) happen inside the functions that need them, so the step
executor pays only for what its payload uses. Values are :mod:`llmstep.serde`.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
import sys
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

from llmstep import contract, jsonio, shapes, valueclasses
from llmstep.errors import CredentialsError, PayloadError
from llmstep.serde import FORMAT_VERSION, unreadable

# llmstep's own serializable classes, loaded like LangChain's mapped ones.
EXTRA_CLASSES: dict[tuple[str, ...], tuple[str, ...]] = {
    ("llmstep", "offline", "OfflineChatModel"): ("llmstep", "offline", "OfflineChatModel")
}


def _find_not_implemented(node: Any) -> list[str] | None:
    """The class id of the first ``not_implemented`` node in a LangChain dump, if any."""
    if isinstance(node, dict):
        if node.get("lc") == 1 and node.get("type") == "not_implemented":
            return [str(x) for x in node.get("id") or ["?"]]
        children: Iterable[Any] = node.values()
    elif isinstance(node, list):
        children = node
    else:
        return None
    for child in children:
        found = _find_not_implemented(child)
        if found is not None:
            return found
    return None


# ---------------------------------------------------------------- payloads (compile side)


def dump_langchain(runnable: Any) -> tuple[dict | None, str]:
    """LangChain JSON of a Runnable, or ``None`` and the reason it cannot travel that way."""
    from langchain_core.load import dumpd

    try:
        dumped = dumpd(runnable)
    except Exception as exc:  # any failure means "not serializable"
        return None, f"LangChain serialization failed: {exc}"
    bad = _find_not_implemented(dumped)
    if bad is not None:
        return None, f"{bad[-1]} is not serializable by LangChain (dump contains not_implemented)"
    loadable = _loadable_ids()
    for class_id in _constructor_ids(dumped):
        if tuple(class_id) not in loadable:
            return None, f"{'.'.join(class_id)} is not in LangChain's serialization allowlist"
    return dumped, ""


def langchain_fields(dumped: dict) -> dict[str, Any]:
    """The payload fields of a LangChain dump: data, allowed class ids, secret ids."""
    return {
        "format": "lc",
        "data": dumped,
        "allowed": [list(i) for i in sorted({tuple(i) for i in _constructor_ids(dumped)})],
        "secrets": sorted({key for key in _secret_ids(dumped)}),
    }


def pickle_fields(blob: bytes) -> dict[str, Any]:
    """The payload fields of a cloudpickled Runnable, with its digest and Python version."""
    return {
        "format": "pickle",
        "data": base64.b64encode(blob).decode("ascii"),
        "sha256": hashlib.sha256(blob).hexdigest(),
        "python": python_version(),
        "allowed": [],
        "secrets": [],
    }


def python_version() -> str:
    """``3.11``: pickles only load on the Python minor version that made them."""
    return f"{sys.version_info[0]}.{sys.version_info[1]}"


@functools.cache
def _loadable_ids() -> frozenset[tuple[str, ...]]:
    from langchain_core.load.load import ALL_SERIALIZABLE_MAPPINGS

    ids = set(EXTRA_CLASSES)
    for key, value in ALL_SERIALIZABLE_MAPPINGS.items():
        ids.add(key)
        ids.add(value)
    return frozenset(ids)


def _walk_typed(node: Any, kind: str):
    if isinstance(node, dict):
        if node.get("lc") == 1 and node.get("type") == kind and isinstance(node.get("id"), list):
            yield node["id"]
        for child in node.values():
            yield from _walk_typed(child, kind)
    elif isinstance(node, list):
        for child in node:
            yield from _walk_typed(child, kind)


def _constructor_ids(dumped: Any):
    return _walk_typed(dumped, "constructor")


def _secret_ids(dumped: Any):
    for class_id in _walk_typed(dumped, "secret"):
        yield from class_id


# ---------------------------------------------------------------- payloads (step side)

PAYLOAD_KEYS = {"llmstep", "format", "name", "data", "allowed", "secrets", shapes.KEY}


_SCALAR_LIST = re.compile(
    r'\[\s*((?:"(?:[^"\\]|\\.)*"|[-\d.eE]+|true|false|null)(?:,\s*(?:"(?:[^"\\]|\\.)*"|[-\d.eE]+|true|false|null))*)\s*\]'
)


def payload_text(payload: Mapping[str, Any]) -> str:
    """The exact ``runnable.json`` a step receives (a plan step's ``payload``): stable order, one key per line (short
    lists inline) so the YAML shows a readable literal block and diffs stay small.

    ``{{`` and ``$(`` can only occur inside JSON strings here (a prompt such as ``Reply as
    {{"a": 1}}``); they are written as JSON escapes (``{\u007b``, ``$\u0028``) so that neither
    Argo's ``{{...}}`` nor Tekton's ``$(...)`` substitution ever touches a payload.
    """
    # The payload's own keys in a stable order; inside, dicts keep their order: a parallel map's
    # keys are the order of the dict the consumer step builds, as chain.invoke builds it.
    text = json.dumps({k: payload[k] for k in sorted(payload)}, indent=1, ensure_ascii=False)
    text = _SCALAR_LIST.sub(lambda m: "[" + re.sub(r",\s+", ", ", m.group(1)) + "]", text)
    return text.replace("{{", "{\\u007b").replace("$(", "$\\u0028")


def read_payload(text: str) -> dict[str, Any]:
    """Parse and check a payload document; raises PayloadError naming what is wrong."""
    try:
        payload = jsonio.loads(text)
    except ValueError as exc:
        raise PayloadError(unreadable(contract.PAYLOAD, exc)) from exc
    if not isinstance(payload, dict):
        raise PayloadError("runnable.json must be a JSON object")
    if payload.get("llmstep") != FORMAT_VERSION:
        raise PayloadError(
            f"runnable.json has payload version {payload.get('llmstep')!r}; this llmstep reads "
            f"version {FORMAT_VERSION}: recompile the chain with the llmstep in the step image"
        )
    missing = sorted(PAYLOAD_KEYS - payload.keys())
    if missing:
        raise PayloadError(f"runnable.json lacks {', '.join(missing)}; recompile the chain")
    if payload["format"] not in ("lc", "pickle"):
        raise PayloadError(f"runnable.json format {payload['format']!r} is not lc or pickle")
    return payload


def secrets_for(payload: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    """The secret values a payload declares, from ``env``; CredentialsError names any missing."""
    missing = [key for key in payload["secrets"] if not env.get(key)]
    if missing:
        secret = payload.get("secret_name") or contract.DEFAULT_SECRET
        keys = ", ".join(missing)
        raise CredentialsError(
            f"step {payload['name']!r} needs {keys}, which is not set. On a cluster add "
            f"the key to the Secret: kubectl create secret generic {secret} "
            + " ".join(f"--from-literal={k}=..." for k in missing)
            + "; locally export it or pass --secrets FILE"
        )
    return {key: env[key] for key in payload["secrets"]}


def load_runnable(
    payload: Mapping[str, Any],
    secrets: Mapping[str, str],
    *,
    allow_pickle: bool = True,
    endpoints: Iterable[str] | None = None,
) -> Any:
    """Rebuild the step's Runnable from a checked payload. ``allow_pickle=False`` refuses a pickle
    before a byte of it is read (its digest is written by whoever wrote the payload: it proves
    nothing about who that was); ``endpoints`` (a file's step) refuses one that names another
    endpoint (see :func:`check_endpoints`)."""
    if payload["format"] == "pickle":
        if not allow_pickle:
            raise PayloadError(refused_pickle(str(payload["name"])))
        return _load_pickle(payload)
    from langchain_core.load import load
    from langchain_core.load.load import default_init_validator

    check_endpoints(payload, endpoints)
    misplaced = misplaced_secret(payload["data"])
    if misplaced is not None:
        raise PayloadError(f"step {payload['name']!r}: the payload reads the secret {misplaced} {SECRET_PLACE}")
    allowed = {tuple(i) for i in payload["allowed"]}

    def only_recorded(class_path: tuple[str, ...], kwargs: dict[str, Any]) -> None:
        if tuple(class_path) not in allowed:
            raise PayloadError(
                f"step {payload['name']!r}: class {'.'.join(class_path)} is not in the payload's "
                "allowlist; the payload was altered or built by another tool"
            )
        default_init_validator(class_path, kwargs)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return load(
                payload["data"],
                allowed_objects="all",
                secrets_map=dict(secrets),
                valid_namespaces=["llmstep"],
                additional_import_mappings=EXTRA_CLASSES,
                init_validator=only_recorded,
            )
    except PayloadError:
        raise
    except (ValueError, NotImplementedError, ImportError, TypeError) as exc:
        raise PayloadError(f"step {payload['name']!r}: cannot load its Runnable: {exc}") from exc


SECRET_PLACE = (
    "outside a model's credential field (such as api_key): a key never goes into a prompt, an output or "
    "a record; the payload was altered or built by another tool"
)
_CREDENTIAL_FIELD = re.compile(r"(?:^|_)(?:key|token|secret|password|credentials?|headers)$")
"""The fields a LangChain dump holds a secret in (``openai_api_key``, ``azure_ad_token``, ...), and
the header maps a model sends with each request (``default_headers={"X-Api-Key": ...}``, a secret
that ``llmstep.Step(secrets=[...])`` records by id): all go only to the model's endpoint."""


def misplaced_secret(node: Any, credential: bool = False) -> str | None:
    """The id of a secret in a LangChain dump anywhere but as the value of a constructor's
    credential field: there it would reach the step's output (a prompt's ``template``, a partial
    variable, a message), its log and the run record."""
    if isinstance(node, dict):
        if node.get("lc") == 1 and node.get("type") == "secret":
            return None if credential else ".".join(str(i) for i in node.get("id") or ["?"])
        kwargs = node.get("kwargs") if node.get("lc") == 1 and node.get("type") == "constructor" else None
        plain = node.get("lc") is None  # a header map under a credential field: its values are credentials too
        for key, child in node.items():
            if key == "kwargs" and isinstance(kwargs, dict):
                for name, value in kwargs.items():
                    found = misplaced_secret(
                        value, isinstance(name, str) and bool(_CREDENTIAL_FIELD.search(name.lower()))
                    )
                    if found is not None:
                        return found
                continue
            found = misplaced_secret(child, credential and plain)
            if found is not None:
                return found
    elif isinstance(node, list):
        for child in node:
            found = misplaced_secret(child, credential)
            if found is not None:
                return found
    return None


ENDPOINT_FIELDS = ("url", "endpoint", "api_base", "proxy", "host")
"""Words that end the name of a Runnable's field that says where it connects (``base_url``,
``openai_api_base``, ``azure_endpoint``, ``openai_proxy``, ``anthropic_api_url``, ...)."""


def endpoint_fields(node: Any) -> Iterable[tuple[str, str]]:
    """(field, value) of every endpoint-naming constructor argument in a LangChain dump."""
    if isinstance(node, dict):
        if node.get("lc") == 1 and node.get("type") == "constructor" and isinstance(node.get("kwargs"), dict):
            for key, value in node["kwargs"].items():
                if isinstance(key, str) and key.lower().endswith(ENDPOINT_FIELDS) and isinstance(value, str) and value:
                    yield key, value
        for child in node.values():
            yield from endpoint_fields(child)
    elif isinstance(node, list):
        for child in node:
            yield from endpoint_fields(child)


def check_endpoints(payload: Mapping[str, Any], endpoints: Iterable[str] | None) -> None:
    """PayloadError naming the first field of ``payload`` that names an endpoint outside ``endpoints``
    (None: any endpoint)."""
    if endpoints is None:
        return
    allowed = {url.rstrip("/") for url in endpoints}
    for field, url in endpoint_fields(payload.get("data")):
        if url.rstrip("/") not in allowed:
            raise PayloadError(
                f"step {payload.get('name', '?')!r}: field {field} sends the model key to {url!r}, which "
                f"is not an endpoint the user configured ({', '.join(sorted(allowed))})"
            )


def check_output_secrets(text: str, secrets: Mapping[str, str], name: str) -> None:
    """PayloadError naming the secret whose value is in a step's output ``text``: however it got
    there, a key is never written as an output (a file, the record, the terminal)."""
    for key, value in secrets.items():
        if value and (value in text or json.dumps(value)[1:-1] in text):
            raise PayloadError(
                f"step {name!r}: its output holds the value of the secret {key}; a key never goes "
                "into a step's output (was the payload altered to read it?)"
            )


def value_classes(payload: Mapping[str, Any], *, allow_pickle: bool = True) -> valueclasses.Classes:
    """The classes a payload vouches for as values (its ``values`` field): classes from the user's
    own code travel by value in a digest-checked pickle (loaded only with pickles allowed, and only
    when a value names one of them); the others are imported from the image, and only then."""
    declared = payload.get("values") or {}
    paths = declared.get("classes") or []
    by_value = declared.get("pickle")
    state: dict[str, Any] = {}

    def load(path: str) -> type:
        if by_value and path in by_value.get("classes", []):
            if "map" not in state:
                if not allow_pickle:
                    raise PayloadError(refused_pickle(str(payload.get("name", "?")), "its value classes"))
                state["map"] = _load_pickle({"name": payload.get("name", "?"), **by_value})
            return state["map"][path]
        return valueclasses.import_class(path)

    return valueclasses.Classes(dict.fromkeys(paths), load=load)


def refused_pickle(step: str, where: str = "") -> str:
    """Why a pickle payload from a file does not run, and what to do if the file is trusted."""
    return (
        f"step {step!r}{f' ({where})' if where else ''} is a pickle payload (format: pickle): loading it runs "
        "whatever code it holds. Pickles from a Workflow file or a run record run only with --allow-pickle; "
        "give it if you trust whoever wrote the file"
    )


def _load_pickle(payload: Mapping[str, Any]) -> Any:
    import pickle

    want = python_version()
    if payload.get("python") != want:
        raise PayloadError(
            f"step {payload['name']!r} was pickled with Python {payload.get('python')} but the "
            f"step runs Python {want}; use an image with Python {payload.get('python')}"
        )
    try:
        blob = base64.b64decode(payload["data"], validate=True)
    except (ValueError, TypeError) as exc:
        raise PayloadError(f"step {payload['name']!r}: pickle data is not base64") from exc
    if hashlib.sha256(blob).hexdigest() != payload.get("sha256"):
        raise PayloadError(f"step {payload['name']!r}: pickle digest mismatch; the payload was altered")
    try:
        return pickle.loads(blob)  # digest-checked, opted in with allow_pickle
    except Exception as exc:  # unpickling can raise anything
        raise PayloadError(f"step {payload['name']!r}: cannot unpickle its Runnable: {exc}") from exc
