"""Retrieval-shaped: retrieve documents, format them, answer from them.

The retriever (a keyword search over a few notes) and the formatting function are plain Python
functions: neither is LangChain-serializable, so this chain needs allow_pickle=True. Both travel
by value, so the step image does not need this file. Swap in any LangChain retriever
(``vectorstore.as_retriever()``) the same way.

    llmstep run examples/retrieval.py:chain --allow-pickle --input '"How do steps pass data?"'
"""

from example_models import chat_model
from langchain_core.documents import Document
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda, RunnablePassthrough

NOTES = [
    "Each llmstep step runs one Runnable in its own container.",
    "Steps pass data as Argo artifacts or parameters, or through a Tekton workspace.",
    "API keys live in a Kubernetes Secret and reach only the steps that call a model.",
]


def retrieve(question, k=2):
    """The k notes sharing the most words with the question."""
    words = set(question.lower().split())
    docs = [Document(page_content=text) for text in NOTES]
    return sorted(docs, key=lambda d: -len(words & set(d.page_content.lower().split())))[:k]


def format_docs(docs):
    return "\n".join(f"- {d.page_content}" for d in docs)


def chain():
    prompt = ChatPromptTemplate.from_template("Answer from these notes:\n{context}\n\nQuestion: {question}")
    return (
        {"context": RunnableLambda(retrieve) | RunnableLambda(format_docs), "question": RunnablePassthrough()}
        | prompt
        | chat_model()
        | StrOutputParser()
    )
