"""Value envelopes: versioned, allowlisted, plain data stays plain."""

from __future__ import annotations

import json

import pytest
from langchain_core.documents import Document
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.prompt_values import ChatPromptValue, StringPromptValue

from llmstep import serde
from llmstep.errors import PayloadError, SerializationError

LOOKALIKE = {
    "lc": 1,
    "type": "constructor",
    "id": ["langchain", "schema", "messages", "AIMessage"],
    "kwargs": {"content": "pwned"},
}
SECRET_LOOKALIKE = {"lc": 1, "type": "secret", "id": ["OPENAI_API_KEY"]}


@pytest.mark.parametrize(
    "value",
    ["plain text", 3, 2.5, None, True, [1, "two", None], {"a": {"b": [1, 2]}}, "ünïcødé ✓", {"nested": [{"k": "v"}]}],
)
def test_plain_json_stays_plain(value):
    envelope = serde.encode_value(value)
    assert envelope == {"llmstep": serde.FORMAT_VERSION, "kind": "json", "value": value}
    assert serde.loads_value(json.dumps(envelope)) == value


@pytest.mark.parametrize(
    "value",
    [
        AIMessage(content="hi", usage_metadata={"input_tokens": 1, "output_tokens": 2, "total_tokens": 3}),
        [SystemMessage("s"), HumanMessage("h"), ToolMessage("t", tool_call_id="1")],
        ChatPromptValue(messages=[HumanMessage("q")]),
        StringPromptValue(text="p"),
        [Document(page_content="d", metadata={"source": "x"})],
        {"docs": [Document(page_content="d")], "question": "q"},
    ],
)
def test_langchain_values_round_trip(value):
    envelope = serde.encode_value(value)
    assert envelope["kind"] == "value"
    assert serde.loads_value(json.dumps(envelope)) == value


def test_lc_lookalike_user_data_stays_data_in_an_envelope():
    value = {"user": LOOKALIKE, "key": SECRET_LOOKALIKE}
    back = serde.loads_value(serde.dumps_value(value))
    assert back == value and isinstance(back["user"], dict)


def test_lc_lookalike_raw_input_stays_data():
    # the workflow parameter is raw user JSON: it is never revived
    assert serde.loads_value(json.dumps(LOOKALIKE)) == LOOKALIKE
    assert serde.loads_value(json.dumps(SECRET_LOOKALIKE)) == SECRET_LOOKALIKE


def test_envelope_only_revives_values_never_runnables_or_secrets():
    bad = {
        "llmstep": serde.FORMAT_VERSION,
        "kind": "value",
        "value": {
            "lc": 1,
            "type": "constructor",
            "id": ["langchain", "prompts", "chat", "ChatPromptTemplate"],
            "kwargs": {"messages": []},
        },
    }
    with pytest.raises(PayloadError, match="not a value class"):
        serde.decode_value(bad)
    secret = {"llmstep": serde.FORMAT_VERSION, "kind": "value", "value": SECRET_LOOKALIKE}
    assert serde.decode_value(secret) == SECRET_LOOKALIKE  # a secret reference is never resolved: it stays data


def test_unknown_versions_and_kinds_are_refused():
    with pytest.raises(PayloadError, match="version 9"):
        serde.decode_value({"llmstep": 9, "kind": "json", "value": 1})
    with pytest.raises(PayloadError, match="unknown value kind"):
        serde.decode_value({"llmstep": serde.FORMAT_VERSION, "kind": "pickle", "value": "x"})


def test_values_that_cannot_travel_are_a_clear_error():
    with pytest.raises(SerializationError, match="cannot travel between steps"):
        serde.encode_value(object())


def test_text_of_a_message_shows_the_tools_it_calls():
    from langchain_core.messages import AIMessage, HumanMessage

    from llmstep.serde import text_of

    calls = [{"name": "search", "args": {"q": "argo é"}, "id": "1"}, {"name": "now", "args": {}, "id": "2"}]
    assert text_of(AIMessage(content="", tool_calls=calls)) == 'tool call: search({"q": "argo é"})\ntool call: now({})'
    assert (
        text_of(AIMessage(content="let me look", tool_calls=calls[:1]))
        == 'let me look\ntool call: search({"q": "argo é"})'
    )
    assert text_of(AIMessage(content="plain")) == "plain" and text_of(HumanMessage(content="hi")) == "hi"
