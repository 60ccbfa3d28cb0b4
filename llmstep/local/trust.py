"""What a document from a file may run locally.

A Workflow or Tekton file (and a run record, which is a file too) is data, not the user's own code.
Without an opt-in, nothing in it runs code, writes outside its record, or sends a key:

- a ``format: pickle`` payload runs whatever the pickle holds as soon as a step loads it, and its
  digest is written by the same hand. Without ``--allow-pickle`` such a run is refused before it
  starts (:func:`refuse_pickles`, naming the step), and each of its steps is told to refuse a
  pickle payload (:func:`step_env`), whatever path the payload took to the step;
- a step runs only a command of the one grammar (:mod:`llmstep.local.command`), for any document;
- a step's environment is the one llmstep generates plus the variables the document declares,
  none of them on the deny list (:func:`denied_env`): variables that make Python, the dynamic
  loader, a shell or another interpreter load code, or that send a key or data elsewhere (proxies,
  CA bundles, endpoints, tracing);
- the user's model keys go only where the user configured (:class:`Policy`): a payload, or a
  diagnose step, that names another endpoint is refused unless the user allows it
  (``--allow-endpoint URL``).

Chains given as a reference (``file.py:attr``) are the user's own code: their documents are
checked against the grammar only.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from llmstep import contract, jsonio, payloads
from llmstep.diagnose import settings
from llmstep.errors import WorkflowError
from llmstep.local.command import parse, unresolved

ALLOW_ENDPOINT = "--allow-endpoint"
"""The option (``llmstep run``) that lets a file's steps send the user's key to an endpoint it names."""

DENIED_ENV = frozenset(
    {
        "PATH",
        "HOME",
        "ENV",
        "BASH_ENV",
        "ZDOTDIR",
        "SHELLOPTS",
        "BASHOPTS",
        "PS4",
        "IFS",
        "CDPATH",
        "PROMPT_COMMAND",
        "GCONV_PATH",
        "LOCPATH",
        "NLSPATH",
        "HOSTALIASES",
        "RESOLV_HOST_CONF",
        "RES_OPTIONS",
        "LOCALDOMAIN",
        "NETRC",
        "WGETRC",
        "REQUESTS_CA_BUNDLE",
        "NODE_OPTIONS",
        "NODE_PATH",
        "PERL5LIB",
        "PERL5OPT",
        "PERLLIB",
        "RUBYOPT",
        "RUBYLIB",
        "JAVA_TOOL_OPTIONS",
        "_JAVA_OPTIONS",
        "JDK_JAVA_OPTIONS",
        "LUA_PATH",
        "LUA_CPATH",
        *settings.ENDPOINT_ENV,
    }
)
"""Variables a document from a file may not give a step (compared in upper case). With them, code
the file placed (a raw artifact named ``sitecustomize.py``, say) would be loaded, or a key or the
step's data would go where the file says."""
DENIED_PREFIXES = (
    "PYTHON",
    "LD_",
    "DYLD_",
    "BASH_FUNC_",
    "GIT_",
    "SSL",
    "CURL_",
    "OPENSSL_",
    "KUBE",
    "LANGCHAIN_",
    "LANGSMITH_",
    "OTEL_",
    "LLMSTEP_",
)
"""Families of such variables: Python's own (``PYTHONPATH``, ``PYTHONSTARTUP``, ...), the dynamic
loader's, exported shell functions, git's, TLS trust and key logging, the Kubernetes client's,
tracing exporters', and llmstep's own (the data directory, the pickle refusal)."""
DENIED_WORDS = ("PROXY", "ENDPOINT", "BASE_URL", "API_BASE")
"""Words in a variable's name (between ``_``) that say it sends traffic elsewhere (a proxy, a model's
endpoint); ``DATABASE_URL`` is not one."""
_STAGED = frozenset({contract.PAYLOAD_ENV, contract.INPUT_ENV})
"""llmstep's own variables a Tekton step receives its payload and input in (a value, never a Secret's)."""


def denied_env(name: str, from_secret: bool = False) -> bool:
    """Whether a document from a file may not give a step the variable ``name`` (``from_secret``:
    its value comes from a Secret's or a ConfigMap's key)."""
    upper = name.upper()
    if name in _STAGED:
        return from_secret
    if name == contract.RATE_LIMIT_ENV:  # bounds on the step's own waiting: nothing to load or send
        return False
    return (
        upper in DENIED_ENV or upper.startswith(DENIED_PREFIXES) or any(f"_{w}_" in f"_{upper}_" for w in DENIED_WORDS)
    )


@dataclass(frozen=True)
class Policy:
    """What a run's documents may do: all that a chain of the user's own may (``from_file`` False),
    or what a document from a file may."""

    from_file: bool = False
    endpoints: tuple[str, ...] = ()
    """Where the user's model keys may go: the endpoints the user configured (else the provider's
    default) and those allowed with ``--allow-endpoint``; without a trailing ``/``."""

    @classmethod
    def of(cls, from_file: bool, allowed: Iterable[str], environ: Mapping[str, str]) -> Policy:
        """The policy of a run whose documents come from a file (or not), with these endpoints allowed."""
        return cls(from_file, (*settings.endpoints(environ), *(str(url).rstrip("/") for url in allowed)))

    def check_env(self, entries: Iterable[tuple[str, bool]], where: str) -> None:
        """WorkflowError naming the first (name, from a Secret) entry a file's step may not have."""
        if not self.from_file:
            return
        for name, from_secret in entries:
            if denied_env(name, from_secret):
                why = (
                    f"{name} says where the model is: a local step gets yours, from your environment"
                    if name in settings.ENDPOINT_ENV
                    else f"{name} is reserved for llmstep's own values"
                    if name in _STAGED
                    else f"{name} could make the step load code or send data elsewhere"
                )
                raise WorkflowError(
                    f"{where}: env {name} is refused in a document from a file ({why}); remove it from the file"
                )

    def check_endpoint(self, url: Any, where: str) -> None:
        """WorkflowError unless the user's key may go to ``url`` (empty: the configured one)."""
        if not self.from_file or url in (None, "") or (isinstance(url, str) and url.rstrip("/") in self.endpoints):
            return
        raise WorkflowError(
            f"{where} sends your model key to {url!r}, which is not an endpoint you configured "
            f"({', '.join(self.endpoints)}); if you trust this file, run it with "
            f"{ALLOW_ENDPOINT} {url}"
        )

    def check_command(self, argv: list[str], where: str) -> None:
        """WorkflowError unless ``argv`` follows the grammar and sends the key only where it may
        (values that hold references are checked once substituted)."""
        command = parse(argv, where)
        for flag, url in command.values("endpoint"):
            if not unresolved(url):
                self.check_endpoint(url, f"{where}: `llmstep {command.sub}` {flag}")

    def check_payloads(self, docs: list[dict[str, Any]], parameters: Mapping[str, Any] | None = None) -> None:
        """WorkflowError naming the first payload in ``docs`` (or the run's ``parameters``) whose
        Runnable names an endpoint its key may not go to, or reads a secret outside a credential field."""
        if not self.from_file:
            return
        for where, node in _places(docs, parameters):
            for path, payload in _payloads(node, ""):
                step = f"step {payload.get('name', '?')!r} ({where}, {path or 'value'})"
                for field, url in payloads.endpoint_fields(payload.get("data")):
                    self.check_endpoint(url, f"{step} field {field}")
                secret = payloads.misplaced_secret(payload.get("data"))
                if secret is not None:
                    raise WorkflowError(f"{step} reads the secret {secret} {payloads.SECRET_PLACE}")


def _places(docs: list[dict[str, Any]], parameters: Mapping[str, Any] | None) -> list[tuple[str, Any]]:
    places = [(f"{doc.get('kind', 'document')} {_name(doc)}", doc) for doc in docs]
    return places + [(f"parameter {name}", value) for name, value in (parameters or {}).items()]


def refuse_pickles(docs: list[dict[str, Any]], parameters: Mapping[str, Any] | None = None) -> None:
    """WorkflowError naming the first step whose payload in ``docs`` (or in the run's
    ``parameters``) is a pickle."""
    for where, node in _places(docs, parameters):
        for path, payload in _payloads(node, ""):
            if payload.get("format") == "pickle":
                raise WorkflowError(
                    payloads.refused_pickle(str(payload.get("name", "?")), f"{where}, {path or 'value'}")
                )


def step_env(allow_pickle: bool, policy: Policy | None = None) -> dict[str, str]:
    """What every step's environment gets last (over the template's own env): the pickle refusal,
    and for a file's step the endpoints its payload may name."""
    env = {} if allow_pickle else {contract.PICKLE_ENV: contract.REFUSE}
    if policy is not None and policy.from_file:
        env[contract.ENDPOINTS_ENV] = "\n".join(policy.endpoints)
    return env


def _name(doc: Any) -> str:
    meta = doc.get("metadata") if isinstance(doc, dict) else None
    if not isinstance(meta, dict):
        return ""
    return str(meta.get("name") or meta.get("generateName") or "")


def _payloads(node: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    r"""Every llmstep payload anywhere in ``node``, as a mapping or held as JSON text (however its
    keys are spelled: a check on the text alone misses ``"\u006clmstep"``), with its field path."""
    if isinstance(node, str):
        if node.lstrip()[:1] in ("{", "[", '"'):
            try:
                value = jsonio.loads(node)
            except ValueError:
                return
            if not isinstance(value, str) or value != node:
                yield from _payloads(value, path)
    elif isinstance(node, dict):
        if "llmstep" in node and "format" in node:
            yield path, node
        for key, value in node.items():
            yield from _payloads(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _payloads(value, f"{path}[{i}]")
