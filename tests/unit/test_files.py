"""Files named on the command line: read and written as UTF-8, with one error (exit 2) that names
the option, the file and the cause."""

from __future__ import annotations

import io
import sys

import pytest

from llmstep.errors import LlmstepError
from llmstep.files import check_documents_exist, read_text, write_text


def test_read_text_reads_utf8_and_stdin(tmp_path, monkeypatch):
    (tmp_path / "in.txt").write_bytes("héllo\n".encode())
    assert read_text(tmp_path / "in.txt") == "héllo\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO("from stdin ✓".encode())))
    assert read_text("-", "-f") == "from stdin ✓"


@pytest.mark.parametrize(
    ("make", "cause"),
    [
        (lambda p: None, "no such file"),
        (lambda p: p.mkdir(), "is a directory, not a file"),
        (lambda p: p.write_bytes(b"ok \xe9 latin-1"), "not UTF-8 text (byte 0xe9 at offset 3); save it as UTF-8"),
    ],
)
def test_a_file_that_cannot_be_read_is_named_with_its_option(tmp_path, make, cause):
    path = tmp_path / "in.jsonl"
    make(path)
    with pytest.raises(LlmstepError) as err:
        read_text(path, "--inputs")
    assert str(err.value) == f"--inputs {path}: {cause}" and err.value.exit_code == 2


def test_write_text_makes_the_folder_when_asked_and_names_what_it_cannot_write(tmp_path):
    target = tmp_path / "out" / "wf.yaml"
    write_text(target, "kind: Workflow\n", "-o", parents=True)
    assert target.read_text() == "kind: Workflow\n"
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(LlmstepError, match=r"^-o .*a-file/wf.yaml: cannot write it \(Not a directory\)$"):
        write_text(blocker / "wf.yaml", "x", "-o")


def test_a_missing_document_is_a_missing_file_not_an_unknown_reference(tmp_path):
    (tmp_path / "there.yaml").write_text("{}")
    (tmp_path / "folder.yaml").mkdir()
    check_documents_exist([str(tmp_path / "there.yaml"), "examples/qa.py:chain"])  # references are not files
    with pytest.raises(LlmstepError, match="wf.yml: no such file"):
        check_documents_exist([str(tmp_path / "wf.yml")])
    with pytest.raises(LlmstepError, match="folder.yaml: is a directory, not a file"):
        check_documents_exist([str(tmp_path / "folder.yaml")])
