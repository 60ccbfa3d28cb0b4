"""YAML as kubectl users read it: key order kept, multi-line strings as literal blocks, several
documents with ---; a file that is not YAML, or holds something other than mappings, is named."""

from __future__ import annotations

import pytest
import yaml

from llmstep.errors import WorkflowError
from llmstep.yamlio import dump_all, dump_yaml, load_documents


def test_dump_keeps_key_order_and_writes_multi_line_text_as_a_literal_block():
    text = dump_yaml({"zeta": 1, "alpha": {"script": "line one\nline two\n", "name": "ünïcode"}})
    assert text.index("zeta") < text.index("alpha")
    assert "script: |\n    line one\n    line two\n" in text and "ünïcode" in text
    assert yaml.safe_load(text) == {"zeta": 1, "alpha": {"script": "line one\nline two\n", "name": "ünïcode"}}


def test_dump_all_separates_documents_and_load_documents_reads_them_back(tmp_path):
    docs = [{"kind": "Task"}, {"kind": "Pipeline", "spec": {"tasks": []}}]
    path = tmp_path / "set.yaml"
    path.write_text(dump_all(docs) + "---\n")  # an empty document at the end is skipped
    assert "\n---\n" in dump_all(docs)
    assert load_documents(path) == docs


@pytest.mark.parametrize(("text", "fragment"), [
    ("kind: [unclosed\n", "is not valid YAML"),
    ("- a list\n", "every document must be a mapping, found list"),
])
def test_a_file_that_is_not_documents_is_named(tmp_path, text, fragment):
    path = tmp_path / "edited.yaml"
    path.write_text(text)
    with pytest.raises(WorkflowError, match=fragment) as err:
        load_documents(path)
    assert str(path) in str(err.value)
