"""OfflineChatModel: a deterministic stand-in for a chat model (no network, no key) that reports
usage, streams word by word, and travels as LangChain JSON like a real model."""

from __future__ import annotations

from langchain_core.messages import HumanMessage, SystemMessage

from llmstep import payloads
from llmstep.offline import OfflineChatModel


def test_it_answers_with_the_last_message_and_counts_words_as_tokens():
    answer = OfflineChatModel().invoke([SystemMessage("be brief"), HumanMessage("what is a pod")])
    assert answer.content == "offline answer: what is a pod"
    assert answer.usage_metadata == {"input_tokens": 6, "output_tokens": 6, "total_tokens": 12}
    assert answer.response_metadata["model_name"] == "llmstep-offline"
    assert OfflineChatModel(prefix="echo").invoke("hi").content == "echo: hi"


def test_it_streams_the_same_answer_a_word_at_a_time_with_usage_on_the_last_chunk():
    chunks = list(OfflineChatModel().stream("one two three"))
    words = [c for c in chunks if c.content]  # LangChain may end the stream with an empty chunk
    assert [c.content for c in words] == ["offline ", "answer: ", "one ", "two ", "three"]
    assert [c.usage_metadata is not None for c in words] == [False] * 4 + [True]
    whole, merged = OfflineChatModel().invoke("one two three"), sum(chunks[1:], chunks[0])
    assert merged.content == whole.content and merged.usage_metadata == whole.usage_metadata


def test_it_travels_as_langchain_json_under_llmsteps_namespace():
    dumped, why = payloads.dump_langchain(OfflineChatModel(prefix="p", latency=0.5))
    assert why == "" and dumped["id"] == ["llmstep", "offline", "OfflineChatModel"]
    fields = payloads.langchain_fields(dumped)
    assert fields["allowed"] == [["llmstep", "offline", "OfflineChatModel"]] and fields["secrets"] == []  # no key
    back = payloads.load_runnable({"name": "model", **fields}, {})  # as a step loads it
    assert isinstance(back, OfflineChatModel) and (back.prefix, back.latency) == ("p", 0.5)
