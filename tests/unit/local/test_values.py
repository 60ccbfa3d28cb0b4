"""Large texts of a run record stored once: a big value is one file in values/, the data
directories' files are links to it, and status.json names it instead of holding it."""

from __future__ import annotations

import os

import pytest

from llmstep.local.values import BIG, MARK, ValueStore, link, resolve


def test_a_small_text_is_written_where_it_goes_and_a_big_one_is_stored_once(tmp_path):
    store = ValueStore(tmp_path)
    store.place("small", tmp_path / "a.json")
    assert (tmp_path / "a.json").read_text() == "small" and not (tmp_path / "values").exists()
    big = "x" * BIG
    store.place(big, tmp_path / "b.json")
    store.place(big, tmp_path / "c.json")
    [stored] = (tmp_path / "values").iterdir()
    assert stored.read_text() == big
    assert os.path.samefile(tmp_path / "b.json", stored) and os.path.samefile(tmp_path / "c.json", stored)


def test_status_json_names_big_values_and_reading_it_back_restores_them(tmp_path):
    store = ValueStore(tmp_path)
    big = "y" * (BIG + 1)
    status = {
        "arguments": {"input": big, "small": "s"},
        "nodes": {
            "last": {"outputs": {"parameters": [{"name": "output", "value": big}, {"name": "preview", "value": "p"}]}}
        },
    }
    out = store.externalize(status)
    name = out["arguments"]["input"][MARK]
    assert out["arguments"] == {"input": {MARK: name}, "small": "s"}
    assert out["nodes"]["last"]["outputs"]["parameters"] == [
        {"name": "output", "value": {MARK: name}},
        {"name": "preview", "value": "p"},
    ]
    assert status["arguments"]["input"] == big  # the record in memory keeps its text
    assert resolve(out, tmp_path)["arguments"]["input"] == big
    assert resolve(store.externalize(status), tmp_path)["nodes"]["last"]["outputs"]["parameters"][0]["value"] == big


def test_a_stored_name_that_is_a_path_is_refused(tmp_path):
    (tmp_path / "outside.txt").write_text("a file of yours")
    with pytest.raises(OSError, match="is not a file in values/"):
        resolve({"arguments": {"input": {MARK: "../outside.txt"}}}, tmp_path / "record")


def test_a_steps_output_becomes_the_stored_copy_without_a_second_write(tmp_path):
    store = ValueStore(tmp_path)
    text = "z" * BIG
    output = tmp_path / "output.json"
    output.write_text(text)
    store.adopt(output, text)
    ref = store.externalize({"arguments": {"input": text}})["arguments"]["input"][MARK]
    assert os.path.samefile(tmp_path / "values" / ref, output)
    link(output, tmp_path / "next-input.json")
    assert os.path.samefile(tmp_path / "next-input.json", output)


def test_a_file_a_step_wrote_with_a_stored_text_becomes_a_link_to_it(tmp_path):
    store = ValueStore(tmp_path)
    text = "y" * (BIG + 10)
    store.externalize({"arguments": {"input": text}, "nodes": {}})  # the run's input, stored
    staged = tmp_path / "input.json"
    staged.write_text(text)  # what the step wrote from its environment
    store.share(staged)
    assert staged.read_text() == text and os.path.samefile(staged, store.folder / os.listdir(store.folder)[0])
    other = tmp_path / "other.json"
    other.write_text("z" * (BIG + 10))  # a text the store does not hold stays as it is
    store.share(other)
    assert other.stat().st_nlink == 1
    small = tmp_path / "small.json"
    small.write_text("small")
    store.share(small)
    assert small.read_text() == "small"


def test_a_value_in_parts_is_stored_once_and_read_back_in_the_same_parts(tmp_path):
    """``input-parts`` (a long Tekton input, each part under BIG) is kept as its joined text, the
    same file the staged input links to, and read back part for part."""
    from llmstep import contract
    from llmstep.local.values import BIG, MARK, PARTS, ValueStore, resolve

    text = "é" * (3 * BIG)
    parts = contract.value_parts(text)
    store = ValueStore(tmp_path)
    status = store.externalize({"arguments": {"input": "", "input-parts": parts}, "nodes": {}})
    ref = status["arguments"]["input-parts"]
    assert set(ref) == {MARK, PARTS} and len(ref[PARTS]) == len(parts) > 1
    assert (tmp_path / "values" / ref[MARK]).read_text(encoding="utf-8") == text
    assert resolve(status, tmp_path)["arguments"]["input-parts"] == parts
    short = contract.value_parts("x" * 10)
    assert store.externalize({"arguments": {"input-parts": short}})["arguments"]["input-parts"] == short
    odd = ["a", "b" * BIG]  # not I/N:TEXT parts: kept as they are
    assert store.externalize({"arguments": {"input-parts": odd}})["arguments"]["input-parts"] == odd
