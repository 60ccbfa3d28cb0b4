"""Anonymization for ``--anonymize``: object names, namespaces, container names, host names and IP
addresses become stable placeholders (``pod-1``, ``namespace-1``, ``container-1``, ``host-1``,
``ip-1``) in what is sent, and the answer gets the real values back.

The same value always gets the same placeholder, whichever kind saw it first, so a container and
its Deployment both called ``web`` are one ``deployment-1``. Every value is replaced in one pass,
longest first, as a whole token, so ``web`` never touches ``webhook`` and a host name's parts
are not replaced before the host name itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

_IPV4 = r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\w.]*\w)"
_IPV6 = r"(?<![\w:])(?:(?:[0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}|(?:[0-9a-fA-F]{1,4}:){1,7}:(?:[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{1,4}){0,6})?)(?![\w:])"
_IP = re.compile(f"{_IPV4}|{_IPV6}")
_HOSTS = [
    re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://(?:[^\s/@]*@)?([a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9-]+)+)"),  # URLs
    re.compile(r"(?i)(?<![\w.-])((?:[a-z0-9-]+\.)+svc(?:\.cluster\.local)?)(?![\w-])"),  # Service DNS names
    re.compile(r"(?i)(?<![\w./-])((?:[a-z0-9-]+\.)+[a-z]{2,})(?=:\d)"),  # host:port
    re.compile(r"(?i)\blookup ((?:[a-z0-9-]+\.)*[a-z0-9-]+)\b"),  # Go's "dial tcp: lookup HOST"
]
HOST_FIELDS = ("nodeName", "hostname", "host", "node_name")
CONTAINER_LISTS = (
    "containers",
    "initContainers",
    "ephemeralContainers",
    "containerStatuses",
    "initContainerStatuses",
    "ephemeralContainerStatuses",
)


def names_in(doc: Any) -> Iterator[tuple[str, str]]:
    """(kind, value) of what ``doc`` names: its own name, namespaces, containers, hosts."""
    if not isinstance(doc, dict):
        return
    meta = doc.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    if doc.get("kind") and meta.get("name"):
        yield str(doc["kind"]), str(meta["name"])
    stack: list[Any] = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(reversed(node))
        elif isinstance(node, dict):
            for key, value in node.items():
                if key == "namespace" and isinstance(value, str):
                    yield "Namespace", value
                elif key in HOST_FIELDS and isinstance(value, str):
                    yield "Host", value
                elif key in CONTAINER_LISTS and isinstance(value, list):
                    yield from (("Container", str(c["name"])) for c in value if isinstance(c, dict) and c.get("name"))
            stack.extend(reversed(list(node.values())))


def mask(text: str, names: Iterable[tuple[str, str]], mapping: dict[str, str]) -> str:
    """``text`` with every known name and every host and IP in it replaced; ``mapping`` (real
    value -> placeholder) is extended and kept for :func:`unmask`."""
    for kind, name in names:
        _add(mapping, kind.lower(), name)
    for pattern in _HOSTS:
        for m in pattern.finditer(text):
            if not _IP.fullmatch(m.group(1)):
                _add(mapping, "host", m.group(1))
    for m in _IP.finditer(text):
        _add(mapping, "ip", m.group(0))
    return _replace(text, mapping)


def unmask(text: str, mapping: dict[str, str]) -> str:
    """The model's answer with the real values back in place of the placeholders."""
    return _replace(text, {placeholder: real for real, placeholder in mapping.items()})


def _add(mapping: dict[str, str], kind: str, value: str) -> None:
    if len(value) > 1 and value not in mapping:
        count = sum(1 for p in mapping.values() if p.rsplit("-", 1)[0] == kind)
        mapping[value] = f"{kind}-{count + 1}"


def _replace(text: str, mapping: dict[str, str]) -> str:
    if not mapping:
        return text
    alternatives = "|".join(re.escape(v) for v in sorted(mapping, key=len, reverse=True))
    return re.sub(rf"(?<![\w.-])(?:{alternatives})(?![\w-])", lambda m: mapping[m.group(0)], text)
