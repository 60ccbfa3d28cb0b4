"""``OfflineChatModel``: a deterministic chat model that needs no network and no API key.

It exists so that the examples, the quickstart and the tests run anywhere. It is *not* a
language model: it answers with a fixed-format echo of the last message, reports token usage
(words counted as tokens) and can wait ``latency`` seconds to stand in for a slow model. It is
serializable as LangChain JSON, so it travels between steps exactly like ``ChatOpenAI``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult


class OfflineChatModel(BaseChatModel):
    """Deterministic offline stand-in for a chat model (no network, no key)."""

    model_name: str = "llmstep-offline"
    prefix: str = "offline answer"
    latency: float = 0.0

    @classmethod
    def is_lc_serializable(cls) -> bool:
        return True

    @classmethod
    def get_lc_namespace(cls) -> list[str]:
        return ["llmstep", "offline"]

    @property
    def _llm_type(self) -> str:
        return "llmstep-offline"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.latency and not kwargs.get("_no_wait"):
            time.sleep(self.latency)
        last = messages[-1].text if messages else ""
        text = f"{self.prefix}: {last}"
        words_in = sum(len(m.text.split()) for m in messages)
        words_out = len(text.split())
        message = AIMessage(
            content=text,
            response_metadata={"model_name": self.model_name},
            usage_metadata={"input_tokens": words_in, "output_tokens": words_out, "total_tokens": words_in + words_out},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        """The same answer, a word at a time (``latency`` spread over the words)."""
        whole = self._generate(messages, stop, None, **{**kwargs, "_no_wait": True}).generations[0].message
        usage = whole.usage_metadata if isinstance(whole, AIMessage) else None  # _generate answers an AIMessage
        words = str(whole.content).split(" ")
        for i, word in enumerate(words):
            if self.latency:
                time.sleep(self.latency / len(words))
            last = i == len(words) - 1
            chunk = AIMessageChunk(content=word + ("" if last else " "), usage_metadata=usage if last else None)
            if run_manager:
                run_manager.on_llm_new_token(chunk.text, chunk=ChatGenerationChunk(message=chunk))
            yield ChatGenerationChunk(message=chunk)
