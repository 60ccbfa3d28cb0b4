"""Lay out a step's data directory inside the container, and publish its results (Tekton).

On Argo the engine places ``runnable.json`` and the inputs as artifacts. Tekton has no
artifacts: the payload and the chain input arrive as environment variables (from params, never
interpolated into a script), a chain input too long for one variable as arguments in parts,
earlier steps' outputs are files in the shared workspace, and small results are written to
``$(results.NAME.path)``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from llmstep import contract, jsonio, shapes
from llmstep.errors import PayloadError
from llmstep.shapes import CHAIN_INPUT

RESULT_LIMIT = 1024


def stage(data_dir: Path, *, payload: str | None, chain_input: str | None, inputs: list[str], link_root: str) -> None:
    """Write ``runnable.json`` and the input file(s) the payload's shape asks for."""
    data_dir.mkdir(parents=True, exist_ok=True)
    if payload:
        (data_dir / contract.PAYLOAD).write_text(payload, encoding="utf-8")
    try:
        shape = jsonio.loads((data_dir / contract.PAYLOAD).read_text(encoding="utf-8"))[shapes.KEY]
        single = shapes.is_single(shape)
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return  # the executor reports the bad payload with its own message
    for item in inputs:
        source, sep, rel = item.partition("=")
        target = data_dir / contract.input_file(source, single)
        target.parent.mkdir(parents=True, exist_ok=True)
        if not sep:
            if source != CHAIN_INPUT or chain_input is None:
                raise PayloadError(f"--inputs {item!r}: only 'input' may come without a path (from the input param)")
            target.write_text(chain_input, encoding="utf-8")
            continue
        origin = _in_workspace(link_root, rel, source)
        target.unlink(missing_ok=True)
        try:
            os.link(origin, target)  # an earlier step's output: the same file, not a copy
        except OSError:
            shutil.copyfile(origin, target)


def chain_input(from_env: str | None, parts: list[str]) -> str | None:
    """The chain input: the environment variable's text, or the parts that carry an input too long
    for one (see :func:`llmstep.contract.value_parts`), never both."""
    if not parts:
        return from_env
    if from_env:
        raise PayloadError(
            "the chain input came both in --input-env's variable and as --input-parts; "
            "give it one way (the input param, or input-parts for a long input)"
        )
    return contract.join_value_parts(parts, "--input-parts")


def _in_workspace(link_root: str, rel: str, source: str) -> Path:
    """The file ``rel`` names in the workspace; never one outside it (an absolute path, ``..``, a
    symbolic link that leads out)."""
    root = Path(link_root or ".").resolve()
    origin = (root / rel).resolve()
    if Path(rel).is_absolute() or ".." in Path(rel).parts or not origin.is_relative_to(root):
        raise PayloadError(
            f"input {source!r}: {rel} is outside the data workspace {link_root or '.'}; "
            "an input path is relative to --link-root and stays inside it"
        )
    if not origin.is_file():
        raise PayloadError(f"input {source!r}: {rel} is not a file in the data workspace; did step {source!r} run?")
    return origin


def read_secrets_dir(path: str) -> dict[str, str]:
    """Secret keys mounted as files (a Secret bound as a workspace): ``{file name: content}``."""
    if not path:
        return {}
    folder = Path(path)
    if not folder.is_dir():
        return {}
    return {
        p.name: p.read_text(encoding="utf-8").strip()
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".")
    }


def publish(data_dir: Path, results: Mapping[str, str], link_root: str) -> None:
    """Write the small results Tekton shows: preview, output path, digest, usage."""
    output = data_dir / contract.OUTPUT
    values = {
        "preview": _text(data_dir / contract.PREVIEW)[:RESULT_LIMIT],
        "output-path": _relative(output, link_root),
        "sha256": hashlib.sha256(output.read_bytes()).hexdigest() if output.is_file() else "",
        "usage": _text(data_dir / contract.USAGE) or "{}",
    }
    for name, path in results.items():
        if name not in values:
            raise PayloadError(f"--result {name}: unknown result (known: {', '.join(values)})")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(values[name], encoding="utf-8")


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return ""


def _relative(path: Path, root: str) -> str:
    try:
        return str(path.relative_to(root)) if root else str(path)
    except ValueError:
        return str(path)
