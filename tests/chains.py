"""Chains used across the tests: real LangChain objects, built fresh for each test."""

from __future__ import annotations

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from llmstep.offline import OfflineChatModel


def qa_prompt() -> ChatPromptTemplate:
    return ChatPromptTemplate.from_messages([("system", "Be brief."), ("human", "{question}")])


def qa_chain():
    return qa_prompt() | OfflineChatModel() | StrOutputParser()


def openai_chain(api_key: str = "sk-test-not-a-real-key-1234567890"):
    from langchain_openai import ChatOpenAI

    return qa_prompt() | ChatOpenAI(model="gpt-4o-mini", api_key=api_key) | StrOutputParser()
