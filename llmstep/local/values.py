"""Large texts of a run record, stored once.

A run's input is a workflow argument, the first step's input file (a Tekton step writes its own,
from its environment) and, for a one-step chain, its output too; each step's output is the next
one's input file, and the last one is an output parameter as well. Written out each time, a 50 MB input made a record of nearly 400 MB. Texts of
:data:`BIG` characters or more are kept once, in ``values/<sha256>.txt`` inside the record: the
data directories' files are hard links to that copy (a plain copy only where a link cannot be
made), and status.json holds ``{"$llmstepValue": "<name>"}`` in their place.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from pathlib import Path
from typing import Any

BIG = 64 * 1024
MARK = "$llmstepValue"
PARTS = "parts"


class ValueStore:
    """The ``values/`` folder of one record."""

    def __init__(self, root: Path) -> None:
        self.folder = root / "values"
        self._names: dict[int, tuple[str, str]] = {}  # id(text) -> (text, name): each text hashed once
        self._lock = threading.Lock()

    def place(self, text: str, target: Path) -> None:
        """Write ``text`` at ``target``; a big one as a link to its one stored copy."""
        if len(text) < BIG:
            target.write_text(text, encoding="utf-8")
            return
        link(self.folder / self._store(text), target)

    def adopt(self, path: Path, text: str) -> None:
        """``path`` holds ``text`` already (a step's output): let it be the stored copy."""
        if len(text) < BIG:
            return
        name = _name(text)
        with self._lock:
            if not (self.folder / name).exists():
                self.folder.mkdir(exist_ok=True)
                try:
                    os.link(path, self.folder / name)
                except OSError:
                    return  # stored (copied) when status.json is next written
            self._names[id(text)] = (text, name)

    def share(self, path: Path) -> None:
        """``path``, a file a step wrote itself (the chain input a Tekton step stages from its
        environment), becomes a link to the stored copy of the same text, if there is one: the
        record holds the text once."""
        try:
            if path.stat().st_size < BIG:
                return
            data = path.read_bytes()
        except OSError:
            return
        stored = self.folder / (hashlib.sha256(data).hexdigest()[:40] + ".txt")
        try:
            if not stored.exists() or os.path.samefile(stored, path):
                return
            spare = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            spare.unlink(missing_ok=True)
            os.link(stored, spare)
            os.replace(spare, path)
        except OSError:
            return  # a copy costs room, never correctness

    def externalize(self, status: dict[str, Any]) -> dict[str, Any]:
        """``status`` as status.json holds it: big argument and output-parameter values by name."""
        out = dict(status)
        out["arguments"] = {k: self._ref(v) for k, v in (status.get("arguments") or {}).items()}
        nodes = {}
        for task, node in (status.get("nodes") or {}).items():
            params = (node.get("outputs") or {}).get("parameters")
            if params and any(isinstance(p.get("value"), str) and len(p["value"]) >= BIG for p in params):
                node = {
                    **node,
                    "outputs": {
                        **node["outputs"],
                        "parameters": [{**p, "value": self._ref(p.get("value"))} for p in params],
                    },
                }
            nodes[task] = node
        out["nodes"] = nodes
        return out

    def _ref(self, value: Any) -> Any:
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            return self._parts_ref(value)
        return {MARK: self._store(value)} if isinstance(value, str) and len(value) >= BIG else value

    def _parts_ref(self, parts: list[str]) -> Any:
        """A value given in parts (``input-parts``, each part under :data:`BIG`): the joined text is
        stored once, as the staged input file that holds the same text links to it; status.json
        keeps the parts' lengths to give them back as they were."""
        texts = [part.partition(":") for part in parts]
        if sum(len(text) for _, _, text in texts) < BIG or any(
            not sep or head != f"{i}/{len(parts)}" for i, (head, sep, _) in enumerate(texts)
        ):
            return parts
        return {MARK: self._store("".join(text for _, _, text in texts)), PARTS: [len(text) for _, _, text in texts]}

    def _store(self, text: str) -> str:
        with self._lock:
            known = self._names.get(id(text))
            if known is not None and known[0] is text:
                return known[1]
            name = _name(text)
            path = self.folder / name
            if not path.exists():
                self.folder.mkdir(exist_ok=True)
                tmp = self.folder / f".{name}.{os.getpid()}.tmp"
                tmp.write_bytes(text.encode("utf-8"))
                os.replace(tmp, path)
            self._names[id(text)] = (text, name)
            return name


def resolve(status: dict[str, Any], root: Path) -> dict[str, Any]:
    """``status`` with the stored values read back (OSError when one is missing)."""

    def text(value: Any) -> Any:
        if is_ref(value):
            name = str(value[MARK])
            if Path(name).name != name:
                raise OSError(f"value name {name!r} is not a file in values/")
            stored = (root / "values" / name).read_text(encoding="utf-8")
            if PARTS not in value:
                return stored
            lengths, parts, at = value[PARTS], [], 0
            for i, length in enumerate(lengths):
                parts.append(f"{i}/{len(lengths)}:{stored[at : at + length]}")
                at += length
            return parts
        return value

    status["arguments"] = {k: text(v) for k, v in (status.get("arguments") or {}).items()}
    for node in (status.get("nodes") or {}).values():
        outputs = node.get("outputs") if isinstance(node.get("outputs"), dict) else {}
        for param in outputs.get("parameters") or []:
            if isinstance(param, dict) and "value" in param:
                param["value"] = text(param["value"])
    return status


def is_ref(value: Any) -> bool:
    """Whether ``value`` is status.json's reference to a stored text (or to a value in parts)."""
    if not isinstance(value, dict) or not isinstance(value.get(MARK), str):
        return False
    lengths = value.get(PARTS, [])
    return (
        set(value) <= {MARK, PARTS}
        and isinstance(lengths, list)
        and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in lengths)
    )


def link(source: Path, target: Path) -> None:
    """``target`` as a hard link to ``source`` (a copy where a link cannot be made)."""
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _name(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:40] + ".txt"
