"""Pricing: the cost math, table matching and loading, and when a cost is absent."""

from __future__ import annotations

import json
import logging
import pathlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from langchain_customllm import ConfigurationError, Cost, Pricing, PricingTable, cost_for
from langchain_customllm import pricing as pricing_module
from langchain_customllm.formats.base import TokenUsage
from langchain_customllm.pricing import price_answer, resolve_pricing, sum_costs


@pytest.fixture(autouse=True)
def fresh_explanations(monkeypatch: pytest.MonkeyPatch) -> None:
    # "Once per model" is per process: each test starts with nothing explained yet.
    monkeypatch.setattr(pricing_module, "_explained", set())


def usage(
    inp: int, out: int, cached: int | None = None, reasoning: int | None = None
) -> TokenUsage:
    return TokenUsage(inp, out, inp + out, cache_read=cached, reasoning=reasoning)


# ---------------------------------------------------------------- the math


def test_cost_for_plain_tokens() -> None:
    cost = cost_for(usage(1_000_000, 500_000), Pricing(input=0.15, output=0.6))
    assert cost.as_dict() == pytest.approx(
        {"input_cost": 0.15, "output_cost": 0.3, "request_cost": 0.0, "total_cost": 0.45}
    )
    assert isinstance(cost, Cost)


def test_cached_and_reasoning_parts_at_their_prices() -> None:
    price = Pricing(input=2.0, output=8.0, cached_input=0.5, reasoning=4.0, per_request=0.01)
    cost = cost_for(usage(1000, 400, cached=600, reasoning=100), price)
    assert cost.input_cost == pytest.approx((400 * 2.0 + 600 * 0.5) / 1e6)
    assert cost.output_cost == pytest.approx((300 * 8.0 + 100 * 4.0) / 1e6)
    assert cost.request_cost == 0.01
    assert cost.total_cost == pytest.approx(cost.input_cost + cost.output_cost + 0.01)


def test_cached_and_reasoning_default_to_input_and_output_prices() -> None:
    price = Pricing(input=2.0, output=8.0)
    assert cost_for(usage(1000, 400, cached=600, reasoning=100), price) == cost_for(
        usage(1000, 400), price
    )


def test_parts_larger_than_the_whole_are_clamped() -> None:
    price = Pricing(input=1.0, output=1.0, cached_input=0.0, reasoning=0.0)
    cost = cost_for(usage(10, 5, cached=50, reasoning=70), price)
    assert cost.input_cost == 0.0
    assert cost.output_cost == 0.0


def test_as_dict_has_the_four_amounts() -> None:
    cost = cost_for(usage(10, 5), Pricing(input=1, output=2, per_request=0.5))
    assert cost.as_dict() == {
        "input_cost": 1e-05,
        "output_cost": 1e-05,
        "request_cost": 0.5,
        "total_cost": pytest.approx(0.50002),
    }


prices = st.floats(min_value=0, max_value=1000, allow_nan=False, allow_infinity=False)
counts = st.integers(min_value=0, max_value=10_000_000)


@given(
    inp=counts,
    out=counts,
    cached=st.one_of(st.none(), counts),
    reasoning=st.one_of(st.none(), counts),
    p_in=prices,
    p_out=prices,
    p_cached=st.one_of(st.none(), prices),
    p_reason=st.one_of(st.none(), prices),
    per_request=prices,
)
def test_cost_properties(
    inp: int,
    out: int,
    cached: int | None,
    reasoning: int | None,
    p_in: float,
    p_out: float,
    p_cached: float | None,
    p_reason: float | None,
    per_request: float,
) -> None:
    price = Pricing(
        input=p_in, output=p_out, cached_input=p_cached, reasoning=p_reason, per_request=per_request
    )
    cost = cost_for(usage(inp, out, cached, reasoning), price)
    # Never negative; the total is exactly the sum of its parts.
    assert min(cost.input_cost, cost.output_cost, cost.request_cost) >= 0
    assert cost.total_cost == cost.input_cost + cost.output_cost + cost.request_cost
    # Bounded by billing every token at the dearer of its two prices.
    top_in = max(p_in, price.cached_input_price)
    top_out = max(p_out, price.reasoning_price)
    assert cost.input_cost <= inp * top_in / 1e6 * (1 + 1e-9) + 1e-12
    assert cost.output_cost <= out * top_out / 1e6 * (1 + 1e-9) + 1e-12
    # With no separate cached/reasoning prices, the split does not matter.
    plain = Pricing(input=p_in, output=p_out, per_request=per_request)
    assert cost_for(usage(inp, out, cached, reasoning), plain).total_cost == pytest.approx(
        cost_for(usage(inp, out), plain).total_cost
    )


@given(inp=counts, out=counts, factor=st.integers(min_value=1, max_value=50))
def test_cost_is_linear_in_tokens(inp: int, out: int, factor: int) -> None:
    price = Pricing(input=0.3, output=1.2)
    one = cost_for(usage(inp, out), price).total_cost
    many = cost_for(usage(inp * factor, out * factor), price).total_cost
    assert many == pytest.approx(one * factor, rel=1e-9, abs=1e-15)


@pytest.mark.parametrize(
    "fields",
    [
        {"input": -1, "output": 1},
        {"input": 1},
        {"input": 1, "output": float("nan")},
        {"input": 1, "output": float("inf")},
        {"input": 1, "output": 1, "per_request": -0.1},
        {"input": 1, "output": 1, "prompt": 2},
        {"input": "cheap", "output": 1},
    ],
)
def test_invalid_prices_rejected(fields: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError, match="pricing"):
        resolve_pricing(fields)


def test_pricing_is_frozen() -> None:
    price = Pricing(input=1, output=2)
    with pytest.raises(ValueError, match="frozen"):
        price.input = 3  # type: ignore[misc]


# ---------------------------------------------------------------- matching

TABLE = PricingTable(
    {
        "gpt-4o": {"input": 2.5, "output": 10},
        "gpt-4o-mini": {"input": 0.15, "output": 0.6},
        "llama-3.1-*": {"input": 0.1, "output": 0.1},
        "llama-3.1-70b*": {"input": 0.8, "output": 0.8},
        "*/qwen*": {"input": 0.2, "output": 0.2},
        "qwen*": {"input": 0.3, "output": 0.3},
    }
)


@pytest.mark.parametrize(
    ("model", "expected_input"),
    [
        ("gpt-4o", 2.5),
        ("GPT-4o", 2.5),  # names match without regard to case
        ("gpt-4o-mini", 0.15),
        ("gpt-4o-2024-08-06", 2.5),  # a dated snapshot is priced as the model
        ("gpt-4o-20240806", 2.5),
        ("gpt-4o-mini-2024-07-18", 0.15),
        ("llama-3.1-8b-instruct", 0.1),
        ("llama-3.1-70b-instruct", 0.8),  # the more specific pattern wins
        ("Qwen/Qwen2.5-7B", 0.2),
        ("qwen2.5", 0.3),
    ],
)
def test_table_matching(model: str, expected_input: float) -> None:
    found = TABLE.find(model)
    assert found is not None
    assert found.input == expected_input


@pytest.mark.parametrize("model", ["gpt-4", "gpt-4o-2024-08", "gpt-4o-preview", "mistral", ""])
def test_table_no_match(model: str) -> None:
    assert TABLE.find(model) is None
    assert model not in TABLE


def test_equally_specific_patterns_keep_table_order() -> None:
    table = PricingTable({"a*": {"input": 1, "output": 1}, "*b": {"input": 2, "output": 2}})
    found = table.find("ab")
    assert found is not None
    assert found.input == 1


def test_exact_beats_pattern_and_dated_exact_beats_undated() -> None:
    table = PricingTable(
        {
            "m*": {"input": 9, "output": 9},
            "m-2024-01-01": {"input": 2, "output": 2},
            "m": {"input": 1, "output": 1},
        }
    )
    assert table.find("m-2024-01-01").input == 2  # type: ignore[union-attr]
    assert table.find("m-2025-01-01").input == 1  # type: ignore[union-attr]
    assert table.find("mx").input == 9  # type: ignore[union-attr]


def test_table_protocol() -> None:
    assert len(TABLE) == 6
    assert "gpt-4o" in list(TABLE)
    assert TABLE.entries["gpt-4o"] == Pricing(input=2.5, output=10)
    assert PricingTable.load({"models": dict(TABLE.entries)}) == TABLE
    assert "PricingTable(" in repr(TABLE)


# ---------------------------------------------------------------- loading

YAML_TABLE = """\
# USD per million tokens
models:
  smollm2: {input: 0.02, output: 0.04}
  "gpt-4o": {input: 2.50, output: 10.00, cached_input: 1.25}
  "llama-3.1-*":
    input: 0.10
    output: 0.10
    per_request: 0.0001
"""


def test_load_yaml(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(YAML_TABLE)
    table = PricingTable.load(path)
    assert table.find("gpt-4o-2024-08-06") == Pricing(input=2.5, output=10, cached_input=1.25)
    assert table.find("llama-3.1-8b") == Pricing(input=0.1, output=0.1, per_request=0.0001)
    assert PricingTable.load(str(path)) == table


def test_load_json_flat(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"smollm2": {"input": 1, "output": 2}}))
    assert PricingTable.load(path).find("smollm2") == Pricing(input=1, output=2)


@pytest.mark.parametrize(
    ("name", "text", "match"),
    [
        ("missing.yaml", None, "Cannot read pricing table"),
        ("bad.yaml", "models: {a: [", "is not valid YAML"),
        ("bad.json", "{'a': 1}", "is not valid JSON"),
        ("list.yaml", "- a\n- b\n", "expected a mapping"),
        ("empty.yaml", "", "expected a mapping"),
        ("entry.yaml", "models:\n  m: {input: 1}\n", r"entry 'm': output: Field required"),
        ("neg.yaml", "m: {input: -1, output: 1}\n", r"entry 'm': input: .*greater than or equal"),
        ("scalar.yaml", "m: 0.5\n", r"entry 'm': expected a mapping like"),
        (
            "typo.yaml",
            "m: {input: 1, ouput: 1}\n",
            r"ouput: unknown field \(did you mean .output.\?\)",
        ),
        ("name.yaml", "1: {input: 1, output: 1}\n", "model names must be non-empty strings"),
    ],
)
def test_bad_files_name_the_file_and_the_entry(
    tmp_path: pathlib.Path, name: str, text: str | None, match: str
) -> None:
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    with pytest.raises(ConfigurationError, match=match) as info:
        PricingTable.load(path)
    assert name in str(info.value)


# ---------------------------------------------------------------- the field's forms


def test_resolve_forms(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(YAML_TABLE)
    one = Pricing(input=1, output=2)
    assert resolve_pricing(None) is None
    assert resolve_pricing(one) is one
    assert resolve_pricing(TABLE) is TABLE
    assert resolve_pricing({"input": 1, "output": 2}) == one
    assert resolve_pricing({"m": {"input": 1, "output": 2}}) == PricingTable({"m": one})
    assert resolve_pricing({"models": {"m": {"input": 1, "output": 2}}}) == PricingTable({"m": one})
    assert isinstance(resolve_pricing(str(path)), PricingTable)
    assert isinstance(resolve_pricing(path), PricingTable)
    with pytest.raises(ConfigurationError, match="pricing must be"):
        resolve_pricing(3)


# ---------------------------------------------------------------- absent, not zero

LOGGER = "langchain_customllm.pricing"


def test_no_pricing_means_no_cost_and_no_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    assert price_answer(None, usage(1, 1), ["m"]) is None
    assert caplog.records == []


def test_unknown_price_is_absent_with_one_debug_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    for _ in range(5):
        assert price_answer(TABLE, usage(10, 5), ["mistral-7b", "mistral"]) is None
    assert price_answer(TABLE, usage(10, 5), ["phi-3"]) is None
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert "'mistral-7b'" in lines[0]
    assert "no entry of the pricing table matches ['mistral-7b', 'mistral']" in lines[0]
    assert "absent, not zero" in lines[0]
    assert "'phi-3'" in lines[1]
    assert all(r.levelno == logging.DEBUG for r in caplog.records)


def test_no_usage_is_absent_with_one_debug_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    price = Pricing(input=1, output=1)
    assert price_answer(price, None, ["m"]) is None
    assert price_answer(price, None, ["m"]) is None
    (record,) = caplog.records
    assert "no token usage" in record.getMessage()


def test_server_name_first_then_requested_name() -> None:
    table = PricingTable({"alias": {"input": 1, "output": 1}, "served": {"input": 2, "output": 2}})
    both = price_answer(table, usage(1_000_000, 0), ["served", "alias"])
    assert both is not None
    assert both.input_cost == 2
    fallback = price_answer(table, usage(1_000_000, 0), ["unknown-served", "alias"])
    assert fallback is not None
    assert fallback.input_cost == 1
    assert price_answer(table, usage(1, 0), [None, "alias"]) is not None


def test_sum_costs() -> None:
    a = {"input_cost": 1.0, "output_cost": 2.0, "request_cost": 0.0, "total_cost": 3.0}
    assert sum_costs([a, a]) == {k: 2 * v for k, v in a.items()}
    assert sum_costs([a, None]) is None
    assert sum_costs([]) is None
