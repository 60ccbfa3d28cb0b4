"""YAML as kubectl users read it: key order kept, multi-line strings as literal blocks, several
documents with ---; a file that is not YAML, or holds something other than mappings, is named."""

from __future__ import annotations

import pytest
import yaml

from llmstep.errors import UsageError, WorkflowError
from llmstep.jsonio import MAX_DEPTH
from llmstep.yamlio import dump_all, dump_yaml, load_all, load_documents


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


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("kind: [unclosed\n", "is not valid YAML"), ("- a list\n", "every document must be a mapping, found list")],
)
def test_a_file_that_is_not_documents_is_named(tmp_path, text, fragment):
    path = tmp_path / "edited.yaml"
    path.write_text(text)
    with pytest.raises(WorkflowError, match=fragment) as err:
        load_documents(path)
    assert str(path) in str(err.value)


def laughs(levels: int, width: int = 9) -> str:
    """The billion-laughs document: each anchor aliases the one before ``width`` times."""
    lines = ["kind: Workflow", "metadata:", "  annotations:", f"    l0: &l0 [{', '.join(['lol'] * width)}]"]
    lines += [f"    l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    "text",
    [
        laughs(9),
        laughs(30, width=2),  # doubling: 2**30 nodes from 60 aliases
        "a: &a ["
        + ", ".join(["x" * 10_000] * 1)
        + "]\nb: ["
        + ", ".join(["*a"] * 2000)
        + "]\n",  # one big value, many times
        "kind: Task\n---\n" + laughs(9),  # the second document
    ],
)
def test_an_alias_bomb_is_refused_before_it_expands(tmp_path, text):
    path = tmp_path / "bomb.yaml"
    path.write_text(text)
    with pytest.raises(UsageError, match="excessive aliasing") as err:
        load_documents(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("text", ["&a [*a]", "a: &a\n  b: *a\n", "a: &a {b: [1, {c: *a}]}\n"])
def test_an_alias_inside_the_node_it_names_is_refused(text):
    with pytest.raises(UsageError, match="refers to a node that contains it"):
        load_all(text, "x.yaml")


@pytest.mark.parametrize(
    "text",
    [
        "- " * (MAX_DEPTH + 1) + "x",  # block sequences
        "a: " + "[" * 900 + "]" * 900,  # flow, within libyaml's own limit
    ],
)
def test_nesting_past_the_bound_is_refused(text):
    with pytest.raises(UsageError, match=f"more than {MAX_DEPTH} levels"):
        load_all(text, "x.yaml")


@pytest.mark.parametrize("text", ["a: " + "[" * 20_000 + "]" * 20_000, "- " * 20_000 + "x"])
def test_nesting_past_any_parser_s_limit_is_an_error_not_a_crash(text):
    with pytest.raises((UsageError, yaml.YAMLError)):
        load_all(text, "x.yaml")


@pytest.mark.parametrize("loader", [yaml.SafeLoader, getattr(yaml, "CSafeLoader", yaml.SafeLoader)])
def test_both_parsers_keep_the_bounds(monkeypatch, loader):
    import llmstep.yamlio

    monkeypatch.setattr(llmstep.yamlio, "_Loader", loader)
    with pytest.raises(UsageError, match="excessive aliasing"):
        load_all(laughs(9), "x.yaml")
    with pytest.raises(UsageError, match="levels"):
        load_all("- " * 500 + "x", "x.yaml")


def test_ordinary_anchors_and_merge_keys_still_read():
    text = "defaults: &d {image: python:3.12, env: [{name: A, value: '1'}]}\nsteps:\n" + "".join(
        f"  - <<: *d\n    name: s{i}\n" for i in range(300)
    )
    doc = load_all(text, "x.yaml")[0]
    assert len(doc["steps"]) == 300 and doc["steps"][7] == {
        "image": "python:3.12",
        "env": [{"name": "A", "value": "1"}],
        "name": "s7",
    }
    assert load_all("a: 1\n---\nb: &x [1]\nc: *x\n", "x.yaml") == [{"a": 1}, {"b": [1], "c": [1]}]
