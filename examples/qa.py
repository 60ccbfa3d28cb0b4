"""Question answering: prompt | chat model | parser. Three steps, one model call.

Run it on this machine:

    llmstep run examples/qa.py:chain --input '{"question": "What does Argo do?"}'
"""

from example_models import chat_model
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate


def chain():
    prompt = ChatPromptTemplate.from_messages(
        [
            ("system", "You are a concise assistant for platform engineers. Answer in two sentences."),
            ("human", "{question}"),
        ]
    )
    return prompt | chat_model() | StrOutputParser()
