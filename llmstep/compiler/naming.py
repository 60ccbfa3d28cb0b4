"""Names the compiler gives: display names and DNS labels, unique within a chain, within the
patterns and limits of :mod:`llmstep.naming` (which the renderers' checks read too)."""

from __future__ import annotations

import re

from llmstep.errors import CompileError
from llmstep.naming import BATCH_INFIX, CHAIN_NAME_MAX, DNS_LABEL, GENERATED_SUFFIX, MAX, RESERVED


def readable(label: str, limit: int = MAX) -> str:
    """A display name: letters, digits and single dashes, starting and ending alphanumeric."""
    text = re.sub(r"[^a-zA-Z0-9]+", "-", label).strip("-")[:limit].strip("-")
    return text or "step"


def dns_label(name: str, field: str = "name", limit: int = MAX) -> str:
    """Check that ``name`` is a DNS label of at most ``limit`` characters; CompileError naming
    ``field`` otherwise."""
    if not isinstance(name, str) or len(name) > limit or not DNS_LABEL.match(name):
        why = (
            f" (room for '{BATCH_INFIX}' and the {GENERATED_SUFFIX} characters Argo appends, within {MAX})"
            if limit == CHAIN_NAME_MAX
            else ""
        )
        raise CompileError(
            f"{field}={name!r} is not a valid name: use lowercase letters, digits and '-', "
            f"starting and ending with a letter or digit, at most {limit} characters{why}"
        )
    return name


def chain_name(name: str, field: str = "name") -> str:
    """A chain's (Workflow, Pipeline) name: a DNS label of at most :data:`CHAIN_NAME_MAX`."""
    return dns_label(name, field, CHAIN_NAME_MAX)


class NameAllocator:
    """Hands out unique (display, dns-label) pairs: ``ChatOpenAI`` / ``chatopenai``, then ``-2``."""

    def __init__(self) -> None:
        self._taken: set[str] = set(RESERVED)
        self._last: dict[str, int] = {}  # base -> the last suffix it was given, so a count resumes there

    def allocate(self, label: str) -> tuple[str, str]:
        base = readable(label, MAX - 4)
        n = self._last.get(base.lower(), 1)
        display = base if n == 1 else f"{base}-{n}"
        while display.lower() in self._taken:
            n += 1
            display = f"{base}-{n}"
        self._taken.add(display.lower())
        self._last[base.lower()] = n
        return display, display.lower()
