"""Files the user names on the command line (``-f``, ``--inputs``, ``--secrets``, a Workflow;
``-o``, ``--output``, ``--summary-file``): read and written as UTF-8 text, with one error (exit 2)
that names the option, the file and the cause."""

from __future__ import annotations

import sys
from pathlib import Path

from llmstep.errors import UsageError


def read_text(path: str | Path, option: str = "") -> str:
    """The text of ``path`` ('-': stdin); LlmstepError (exit 2) when it is missing, unreadable or
    not UTF-8. ``option`` (``--inputs``) prefixes the message."""
    where = f"{option} {path}".strip()
    try:
        data = sys.stdin.buffer.read() if str(path) == "-" else Path(path).read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{where}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{where}: is a directory, not a file") from None
    except OSError as exc:
        raise UsageError(f"{where}: cannot read it ({exc.strerror or exc})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{where}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); save it as UTF-8"
        ) from None


def write_text(path: str | Path, text: str, option: str = "", *, parents: bool = False) -> None:
    """Write ``text`` to ``path`` (``parents``: creating its directory); LlmstepError (exit 2)
    naming ``option`` and the cause when it cannot be written."""
    try:
        if parents:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot write it ({exc.strerror or exc})".strip()) from None


DOCUMENT_SUFFIXES = (".yaml", ".yml", ".json")


def check_documents_exist(targets: list[str]) -> None:
    """A target named like a Workflow file (``wf.yaml``) that is not there is a missing file, not
    "neither a file nor a chain reference"."""
    for target in targets:
        path = Path(target)
        if path.suffix.lower() in DOCUMENT_SUFFIXES and not path.is_file():
            raise UsageError(f"{target}: {'is a directory, not a file' if path.is_dir() else 'no such file'}")
