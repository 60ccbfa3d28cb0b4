"""YAML in and out, the way kubectl users read it: block style, key order kept, multi-line
strings as literal blocks, several documents with ``---``.

Every YAML text llmstep reads from a user or a file goes through :func:`load_all`, which bounds
what a hostile file can make of a few bytes: aliases that expand a document many times over (the
"billion laughs"), an alias inside the node it names (a recursive structure), and nesting deeper
than :data:`llmstep.jsonio.MAX_DEPTH`, each refused (exit 2) before anything walks the result."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from llmstep.errors import UsageError, WorkflowError
from llmstep.jsonio import MAX_DEPTH


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
        docs = [d for d in load_all(text, str(path)) if d is not None]
    except yaml.YAMLError as exc:
        raise WorkflowError(f"{path} is not valid YAML: {exc}") from exc
    for doc in docs:
        if not isinstance(doc, dict):
            raise WorkflowError(f"{path}: every document must be a mapping, found {type(doc).__name__}")
    return docs


# libyaml's parser when PyYAML was built with it: faster, and it stops nesting at 1,000 levels
# itself instead of recursing until Python's stack runs out.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_all(text: str, where: str, *, numbered: bool = True) -> list[Any]:
    """Every document of ``text``, as ``yaml.safe_load_all`` reads them; yaml.YAMLError for text
    that is not YAML, UsageError (exit 2) naming ``where`` (and the document's number) for a
    document beyond the bounds."""
    loader = _Loader(text)
    docs: list[Any] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                break
            _check_bounds(node, f"{where}, document {len(docs) + 1}" if numbered else where)
            docs.append(loader.construct_document(node))
    except RecursionError:  # the pure-Python composer recurses once per level
        raise UsageError(f"{where}: it nests deeper than {MAX_DEPTH} levels, which llmstep does not read") from None
    finally:
        loader.dispose()
    return docs


def load(text: str, where: str) -> Any:
    """The one document of ``text`` (None for none), with :func:`load_all`'s bounds."""
    docs = load_all(text, where, numbered=False)
    if len(docs) > 1:
        raise yaml.YAMLError(f"{where}: expected one document, found {len(docs)}")
    return docs[0] if docs else None


def _allowed_alias_share(total: int) -> float:
    # go-yaml's rule (the YAML library behind kubectl and the Kubernetes API server): aliases may
    # make up 99% of a document of up to 400,000 nodes, falling to 10% at 4,000,000
    low, high = 400_000, 4_000_000
    if total <= low:
        return 0.99
    if total >= high:
        return 0.10
    return 0.99 - 0.89 * (total - low) / (high - low)


def _check_bounds(root: yaml.Node, where: str) -> None:
    """UsageError when the document ``root`` nests deeper than MAX_DEPTH, holds an alias to a node
    that contains it, or expands through its aliases beyond what go-yaml allows (its "excessive
    aliasing"). Each distinct node is visited once, so a bomb is measured without expanding it."""
    sizes: dict[int, tuple[int, int]] = {}  # id(node): (weight expanded, height)
    open_: set[int] = set()
    distinct = 0
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        kids = _children(node)
        if done:
            own = 1 + len(node.value) // 64 if isinstance(node, yaml.ScalarNode) else 1
            weight = own + sum(sizes[id(k)][0] for k in kids)
            height = 0 if isinstance(node, yaml.ScalarNode) else 1 + max((sizes[id(k)][1] for k in kids), default=0)
            if height > MAX_DEPTH:
                raise UsageError(f"{where}: it nests more than {MAX_DEPTH} levels deep, which llmstep does not read")
            sizes[key] = (weight, height)
            open_.discard(key)
            distinct += own
            continue
        if key in sizes:
            continue
        if key in open_:  # only a node's own descendants are above its marker on the stack
            raise UsageError(
                f"{where}: an alias (line {node.start_mark.line + 1}) refers to a node that contains "
                "it, a structure that never ends; write the value out"
            )
        open_.add(key)
        stack.append((node, True))
        stack.extend((k, False) for k in kids if id(k) not in sizes)
    total = sizes[id(root)][0]
    aliased = total - distinct
    if aliased > 100 and total > 1000 and aliased / total > _allowed_alias_share(total):
        raise UsageError(
            f"{where}: the document contains excessive aliasing (its aliases expand it "
            f"{total // max(distinct, 1)} times over); write the values out instead of aliasing them"
        )


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []
