"""Plans built by hand, without compile(): each step's payload is the LangChain JSON of a real
PromptTemplate, made the way the compiler makes it (llmstep.payloads), so the renderers can be
tested on a Plan alone, as the design has it (the Plan is their only input)."""

from __future__ import annotations

from langchain_core.prompts import PromptTemplate

from llmstep import payloads, serde
from llmstep.plan import Plan, PlanStep, StepSettings


def prompt_step(
    name: str,
    template: str,
    shape: list,
    *,
    secrets: tuple[str, ...] = (),
    settings: StepSettings | None = None,
    display: str | None = None,
) -> PlanStep:
    """A step running ``PromptTemplate.from_template(template)`` on the input ``shape`` describes;
    ``secrets`` are the keys it declares (as a model step declares its API key)."""
    runnable = PromptTemplate.from_template(template)
    dumped, why = payloads.dump_langchain(runnable)
    if dumped is None:
        raise AssertionError(why)
    qualname = f"{type(runnable).__module__}.{type(runnable).__qualname__}"
    payload = {
        "llmstep": serde.FORMAT_VERSION,
        "name": name,
        "runnable": qualname,
        "inputs": shape,
        "secret_name": "llm-credentials",
        **payloads.langchain_fields(dumped),
        "secrets": sorted(secrets),
    }
    return PlanStep(
        name=name,
        display=display or name.title(),
        path=f"hand.{name}",
        runnable=qualname,
        payload=payload,
        shape=shape,
        secrets=tuple(sorted(secrets)),
        settings=settings or StepSettings(),
    )


def sequence(**plan: object) -> Plan:
    """Ask (the chain input) -> answer (ask's output)."""
    steps = (
        prompt_step("ask", "Question: {question}", ["input"]),
        prompt_step("answer", 'Reply as {{"a": 1}} to {text}', ["step", "ask"]),
    )
    return Plan(**{"name": "hand-seq", "steps": steps, "output": "answer", "image": "example/llmstep:1", **plan})  # type: ignore[arg-type]


def fan_in(**plan: object) -> Plan:
    """Left and right (both from the chain input, concurrently) -> join (a dict of both)."""
    steps = (
        prompt_step("left", "L {question}", ["input"]),
        prompt_step("right", "R {question}", ["input"]),
        prompt_step("join", "{left} and {right}", ["dict", {"left": ["step", "left"], "right": ["step", "right"]}]),
    )
    return Plan(**{"name": "hand-fan", "steps": steps, "output": "join", "image": "example/llmstep:1", **plan})  # type: ignore[arg-type]
