"""llmstep.usage: the one sum of steps' usage outputs, the estimate from a price table, and a bad price
table (`--prices`) as a usage error naming the file and field."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli

from llmstep import usage
from llmstep.errors import UsageError


def test_totals_add_per_model_nested_counts_key_by_key_and_skip_what_is_not_usage():
    first = {"m": {"input_tokens": 3, "output_tokens": 2, "total_tokens": 5, "input_token_details": {"cache_read": 1}}}
    second = json.dumps(
        {
            "m": {
                "input_tokens": 4,
                "output_tokens": 1,
                "total_tokens": 5,
                "input_token_details": {"cache_read": 2, "audio": 1},
            },
            "n": {"input_tokens": 1},
        }
    )
    assert usage.totals([first, second, "", "{}", None, "not json", "[1]", {"m": 3}]) == {
        "m": {
            "input_tokens": 7,
            "output_tokens": 3,
            "total_tokens": 10,
            "input_token_details": {"cache_read": 3, "audio": 1},
        },
        "n": {"input_tokens": 1},
    }
    assert list(usage.totals([{"z": {}}, {"a": {}}])) == ["a", "z"]


def test_estimate_prices_per_million_and_names_missing_models(tmp_path):
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"m": {"input": 2, "output": 8}, "unused": {"input": 0, "output": 0}}))
    prices = usage.load_prices(path)
    cost = usage.estimate({"m": {"input_tokens": 500_000, "output_tokens": 250_000}, "n": {"input_tokens": 9}}, prices)
    assert cost.costs == {"m": 3.0} and cost.missing == ["n"] and cost.total == 3.0
    assert usage.describe_cost(cost, "prices.json") == (
        "estimated cost (prices from prices.json): m 3.000000; n not in the price table; total 3.000000 "
        "(without the models missing from the table)"
    )


def test_a_missing_price_file_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="--prices .*nope.yaml: no such file"):
        usage.load_prices(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]", "expected a table of models"),
        ("m: 3", "m: expected {input: PRICE, output: PRICE}, found int"),
        ("m: {input: 1}", "m.output: expected a price per 1,000,000 tokens (a number, 0 or more), found missing"),
        ("m: {input: -1, output: 1}", "m.input: expected a price per 1,000,000 tokens (a number, 0 or more), found -1"),
        (
            '{"m": {"input": "1", "output": 1}}',
            "m.input: expected a price per 1,000,000 tokens (a number, 0 or more), found '1'",
        ),
        ("m: {input: 1, output: 1, cached: 1}", "m.cached: not a field"),
        ("m: [", "neither JSON nor YAML"),
    ],
)
def test_bad_price_file_is_a_usage_error_naming_file_and_field(tmp_path, text, message):
    prices = tmp_path / "p.yaml"
    prices.write_text(text)
    result = run_cli("show", "no-such-run", "--prices", str(prices), cwd=tmp_path)
    assert result.returncode == 2 and f"--prices {prices}: {message}" in result.stderr, result.stderr
