"""The chat model the examples use: OpenAI when OPENAI_API_KEY is set, otherwise llmstep's
deterministic OfflineChatModel (no network, no key), so every example runs anywhere."""

import os

from llmstep.offline import OfflineChatModel


def chat_model():
    if os.environ.get("OPENAI_API_KEY"):
        from langchain_openai import ChatOpenAI

        return ChatOpenAI(model=os.environ.get("OPENAI_MODEL", "gpt-4o-mini"), temperature=0)
    return OfflineChatModel()
