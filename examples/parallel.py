"""Two model calls in parallel branches, joined by one prompt: the branches run concurrently.

Run it on this machine:

    llmstep run examples/parallel.py:chain --input '{"topic": "Kubernetes operators"}'
"""

from example_models import chat_model
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate


def chain():
    pros = ChatPromptTemplate.from_template("List the main benefits of {topic}.") | chat_model() | StrOutputParser()
    cons = ChatPromptTemplate.from_template("List the main drawbacks of {topic}.") | chat_model() | StrOutputParser()
    summary = ChatPromptTemplate.from_template("Weigh these benefits:\n{pros}\n\nagainst these drawbacks:\n{cons}")
    return {"pros": pros, "cons": cons} | summary | chat_model() | StrOutputParser()
