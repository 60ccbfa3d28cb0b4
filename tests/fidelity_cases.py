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
    cases |= {f"values-{name}": (chain, x, {"allow_pickle": True, "value_types": DECLARED})
              for name, (chain, x) in value_corpus().items()}
    return cases


def example_cases() -> dict[str, tuple[Any, Any, dict[str, Any]]]:
    """The examples (load them with the offline model: no OpenAI key in the environment)."""
    return {f"example-{name}": (load_example(ref), value, opts) for name, (ref, value, opts) in EXAMPLES.items()}


def example_ids() -> list[str]:
    return [f"example-{name}" for name in EXAMPLES]
