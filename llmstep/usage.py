"""Token usage: a run's total per model, summed from its steps' ``usage`` outputs, and an
estimated cost from a price table the user passes (llmstep ships no prices).

Every step writes its token usage per model (``usage.json``, its ``usage`` output parameter or
Tekton result) as LangChain's callbacks counted it from the provider's answers:
``{MODEL: {"input_tokens": N, "output_tokens": N, "total_tokens": N, ...}}``. A step records it
when it succeeds: an attempt that failed records none, so its calls (which the provider may have
billed) are not in the totals. :func:`totals` is the one sum that local runs and the cluster
handles use: counts add up per model, nested counts (``input_token_details``) key by key.

A price table is JSON or YAML: ``{MODEL: {"input": PRICE, "output": PRICE}}``, prices per one
million tokens. :func:`estimate` multiplies; a model the table does not name is listed as missing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmstep.errors import UsageError

PER_TOKENS = 1_000_000
"""A price table's prices are per this many tokens."""


def parse(value: Any) -> dict[str, dict[str, Any]]:
    """A step's ``usage`` output (the JSON text the step wrote, or its mapping) as ``{model:
    counts}``; ``{}`` for none, or for a value that is not counts per model."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except ValueError:
            return {}
    if not isinstance(value, Mapping):
        return {}
    return {str(model): dict(counts) for model, counts in value.items() if isinstance(counts, Mapping)}


def totals(usages: Iterable[Any]) -> dict[str, dict[str, Any]]:
    """The total per model of steps' ``usage`` outputs (each as :func:`parse` reads it), models in
    name order."""
    out: dict[str, dict[str, Any]] = {}
    for usage in usages:
        for model, counts in parse(usage).items():
            out[model] = _add(out.get(model, {}), counts)
    return dict(sorted(out.items()))


def _add(into: Mapping[str, Any], counts: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(into)
    for key, value in counts.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, (int, float)):
            out[key] = out.get(key, 0) + value
        elif isinstance(value, Mapping):
            out[key] = _add(out.get(key) or {}, value)
    return out


@dataclass(frozen=True)
class Price:
    """A model's prices per :data:`PER_TOKENS` tokens."""

    input: float
    output: float


def load_prices(path: str | Path) -> dict[str, Price]:
    """The price table in ``path`` (JSON or YAML); UsageError (exit 2) naming the file and the
    field that is wrong."""
    from llmstep.files import read_text

    where = f"--prices {path}"
    text = read_text(path, "--prices")
    try:
        data = json.loads(text)
    except ValueError:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise UsageError(f"{where}: neither JSON nor YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, Mapping) or not data:
        raise UsageError(
            f"{where}: expected a table of models, each with input and output prices per "
            f"{PER_TOKENS:,} tokens: {{MODEL: {{input: PRICE, output: PRICE}}}}"
        )
    prices = {}
    for model, entry in data.items():
        if not isinstance(entry, Mapping):
            raise UsageError(
                f"{where}: {model}: expected {{input: PRICE, output: PRICE}}, found {type(entry).__name__}"
            )
        unknown = sorted(str(k) for k in entry if k not in ("input", "output"))
        if unknown:
            raise UsageError(f"{where}: {model}.{unknown[0]}: not a field (a model has input and output)")
        for side in ("input", "output"):
            value = entry.get(side)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or value != value:
                found = "missing" if value is None else repr(value)
                raise UsageError(
                    f"{where}: {model}.{side}: expected a price per {PER_TOKENS:,} tokens "
                    f"(a number, 0 or more), found {found}"
                )
        prices[str(model)] = Price(float(entry["input"]), float(entry["output"]))
    return prices


@dataclass
class Estimate:
    """The estimated cost of token totals: per model priced, their sum, and the models the price
    table does not name (not in the sum)."""

    costs: dict[str, float] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(self.costs.values())

    def to_json(self, source: str) -> dict[str, Any]:
        return {
            "estimate": True,
            "prices": source,
            "perModel": self.costs,
            "total": self.total,
            "missing": self.missing,
        }


def estimate(usage: Mapping[str, Mapping[str, Any]], prices: Mapping[str, Price]) -> Estimate:
    """Input tokens at the input price plus output tokens at the output price, per model."""
    out = Estimate()
    for model, counts in usage.items():
        price = prices.get(model)
        if price is None:
            out.missing.append(model)
            continue
        out.costs[model] = (
            counts.get("input_tokens", 0) * price.input + counts.get("output_tokens", 0) * price.output
        ) / PER_TOKENS
    return out


def describe(usage: Mapping[str, Mapping[str, Any]]) -> str:
    """``MODEL input=N output=N total=N`` per model, ``; ``-separated."""
    return "; ".join(
        f"{model} input={c.get('input_tokens', 0)} output={c.get('output_tokens', 0)} total={c.get('total_tokens', 0)}"
        for model, c in usage.items()
    )


def describe_cost(cost: Estimate, source: str) -> str:
    """The estimate in words, labelled as one, with the price table it came from."""
    parts = [f"{model} {amount:.6f}" for model, amount in cost.costs.items()]
    parts += [f"{model} not in the price table" for model in cost.missing]
    return f"estimated cost (prices from {source}): {'; '.join(parts)}; total {cost.total:.6f}" + (
        " (without the models missing from the table)" if cost.missing else ""
    )
