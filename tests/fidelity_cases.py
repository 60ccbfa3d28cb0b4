"""The chains both differential fidelity tests run on the local runner and on the real
controller (tests/test_argo_fidelity.py, tests/test_tekton_fidelity.py)."""

from __future__ import annotations

from typing import Any

from argo_cluster import EXAMPLES, load_example
from chains import corpus
from value_chains import DECLARED, value_corpus


def corpus_cases() -> dict[str, tuple[Any, Any, dict[str, Any]]]:
    """{case: (chain, input, compile options)}: the corpus, and every kind of value that passes
    between steps (pydantic models, dataclasses, dates, ...)."""
    cases = {f"corpus-{name}": (chain, x, {"allow_pickle": True}) for name, (chain, x) in corpus().items()}
    cases |= {
        f"values-{name}": (chain, x, {"allow_pickle": True, "value_types": DECLARED})
        for name, (chain, x) in value_corpus().items()
    }
    return cases


def example_cases() -> dict[str, tuple[Any, Any, dict[str, Any]]]:
    """The examples (load them with the offline model: no OpenAI key in the environment)."""
    return {f"example-{name}": (load_example(ref), value, opts) for name, (ref, value, opts) in EXAMPLES.items()}


def example_ids() -> list[str]:
    return [f"example-{name}" for name in EXAMPLES]


def _text_of_json_size(size: int) -> str:
    """A string whose chain input, as JSON (``serde.parameter_text``: the quotes around it), is
    exactly ``size`` bytes."""
    return "x" * (size - 2)


def _count_and_tail(text: str) -> list:
    return [len(text), text[-12:]]


def size_cases() -> dict[str, tuple[Any, Any, dict[str, Any]]]:
    """Inputs and values at the sizes where Tekton's limits change, on each side: the ``input``
    param's one environment variable (Linux: 128 KiB a string; llmstep moves to ``input-parts``
    past 64 KiB), a result (4 KiB a container: only previews go there, the output through the
    workspace), and a run object with a large input (the PipelineRun and each TaskRun hold it)."""
    from langchain_core.runnables import RunnableLambda, RunnableParallel

    from llmstep.contract import MAX_ARG_STRLEN, PART_BYTES

    count = RunnableLambda(_count_and_tail, name="Count")
    fan = RunnableParallel(a=RunnableLambda(_count_and_tail, name="A"), b=RunnableLambda(lambda s: s[:5], name="B"))
    opts = {"allow_pickle": True}
    return {
        "size-input-one-param": (count, _text_of_json_size(PART_BYTES), opts),  # the largest in the input param
        "size-input-two-parts": (count, _text_of_json_size(PART_BYTES + 1), opts),
        "size-input-past-one-env": (count, _text_of_json_size(MAX_ARG_STRLEN + 1), opts),
        # the 300 KB, to a fan-out; Kubernetes would expand a $(VAR) of the container's in args and env
        "size-input-300k-to-two-tasks": (fan, "🦜$(LLMSTEP_PAYLOAD)$(LLMSTEP_INPUT) " * 9_000, opts),
        "size-input-600k": (count, "y" * 600_000, opts),
        "size-output-past-a-result": (RunnableLambda(lambda s: s * 4097, name="Grow") | count, "z", opts),
    }
