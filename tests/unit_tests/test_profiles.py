"""Server profiles and how requests are adapted to them."""

from __future__ import annotations

from typing import Any

import pytest

from langchain_customllm import ConfigurationError
from langchain_customllm.profiles import (
    PROFILES,
    adapt_response_format,
    adapt_tool_choice,
    get_profile,
)

WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {}}}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {}}}
LLAMA = PROFILES["llama-cpp-python"]
GENERIC = PROFILES["generic"]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (None, None),
        ("auto", "auto"),
        ("none", "none"),
        ("any", "required"),
        ("required", "required"),
        (True, "required"),
        ("get_weather", {"type": "function", "function": {"name": "get_weather"}}),
    ],
)
def test_generic_tool_choice(choice: Any, expected: Any) -> None:
    assert adapt_tool_choice(choice, [WEATHER, TIME], GENERIC) == expected


def test_llamacpp_required_with_one_tool_becomes_named() -> None:
    # llama.cpp answers 500 to "required"; with one tool, naming it means the same.
    named = {"type": "function", "function": {"name": "get_weather"}}
    assert adapt_tool_choice("any", [WEATHER], LLAMA) == named
    assert adapt_tool_choice("required", [WEATHER], LLAMA) == named


def test_llamacpp_required_with_several_tools_is_a_clear_error() -> None:
    with pytest.raises(ConfigurationError, match=r"cannot force 'some tool'.*2 tools"):
        adapt_tool_choice("required", [WEATHER, TIME], LLAMA)


def test_unknown_tool_name() -> None:
    with pytest.raises(ConfigurationError, match="not one of the bound tools: get_weather"):
        adapt_tool_choice("get_time", [WEATHER], GENERIC)


def test_response_format_adaptation() -> None:
    rf = {"type": "json_schema", "json_schema": {"name": "P", "schema": {"type": "object"}}}
    assert adapt_response_format(rf, GENERIC) == rf
    assert adapt_response_format(rf, LLAMA) == {"type": "json_object", "schema": {"type": "object"}}
    assert adapt_response_format({"type": "json_object"}, LLAMA) == {"type": "json_object"}
    none = get_profile({"json_schema": "none"})
    with pytest.raises(ConfigurationError, match="no JSON-schema output"):
        adapt_response_format(rf, none)


def test_profile_overrides_and_errors() -> None:
    vision = get_profile({"base": "llama-cpp-python", "image_inputs": True})
    assert vision.image_inputs is True
    assert vision.tool_choice_required is False  # the rest comes from the base
    assert vision.name == "llama-cpp-python+custom"
    with pytest.raises(ConfigurationError, match="Unknown server_profile 'nope'"):
        get_profile("nope")
    with pytest.raises(ConfigurationError, match="unknown fields"):
        get_profile({"colour": "red"})
    assert get_profile(None) is GENERIC


def test_model_profile() -> None:
    profile = LLAMA.model_profile()
    assert profile["tool_calling"] is True
    assert profile["image_inputs"] is False
