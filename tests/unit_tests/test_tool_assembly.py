"""`ToolCallAssembler` on its own: ids and names once, string arguments held and unwrapped."""

from __future__ import annotations

from langchain_customllm._tool_assembly import ToolCallAssembler
from langchain_customllm.formats.base import ToolCallPiece as P


def test_repeated_id_and_name_are_kept_on_the_first_fragment_only() -> None:
    tools = ToolCallAssembler()
    # llama.cpp: id and name in every chunk.
    first = tools.feed([P(0, "call_1", "get_weather", '{"city"')])
    again = tools.feed([P(0, "call_1", "get_weather", ': "Paris"}')])
    assert first == [P(0, "call_1", "get_weather", '{"city"')]
    assert again == [P(0, None, None, ': "Paris"}')]
    assert tools.feed([P(0, "call_1", "get_weather", "")]) == []  # nothing left to emit
    assert tools.finish() == []


def test_string_arguments_are_held_back_and_unwrapped_at_the_end() -> None:
    tools = ToolCallAssembler()
    assert tools.feed([P(0, "c", "f", "  ")]) == [P(0, "c", "f", "")]  # blank: undecided
    assert tools.feed([P(0, None, None, '"{\\"city\\": ')]) == []
    assert tools.feed([P(0, None, None, '\\"Paris\\"}"')]) == []
    assert tools.finish() == [P(0, None, None, '{"city": "Paris"}')]
    assert tools.finish() == []  # released once


def test_a_string_without_an_object_is_released_as_it_came() -> None:
    tools = ToolCallAssembler()
    tools.feed([P(1, "c", "f", '"Paris"')])
    assert tools.finish() == [P(1, None, None, '"Paris"')]


def test_whole_answers_are_unwrapped_at_once() -> None:
    calls = [P(0, "a", "f", '"{\\"x\\": 1}"'), P(1, "b", "g", '{"y": 2}')]
    assert ToolCallAssembler.whole(calls) == [P(0, "a", "f", '{"x": 1}'), calls[1]]
