"""YAML in and out, the way kubectl users read it: block style, key order kept, multi-line
strings as literal blocks, several documents with ``---``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from llmstep.errors import WorkflowError


# libyaml's emitter when PyYAML was built with it: the same output, many times faster (a
# 1,000-step Workflow takes seconds with the pure-Python one).
class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value and not value.endswith((" ", "\n\n")) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump_yaml(doc: Any) -> str:
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


def dump_all(docs: list[Any]) -> str:
    return yaml.dump_all(docs, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


def load_documents(path: str | Path) -> list[dict[str, Any]]:
    """Every YAML document in a file; an error naming the file when it cannot be read."""
    from llmstep.files import read_text

    text = read_text(path)
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise WorkflowError(f"{path} is not valid YAML: {exc}") from exc
    for doc in docs:
        if not isinstance(doc, dict):
            raise WorkflowError(f"{path}: every document must be a mapping, found {type(doc).__name__}")
    return docs
