"""The helpers every wire format shares: excerpts, sampling fields, the adapter guard."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from langchain_core.messages import BaseMessage

from langchain_customllm import StreamEvent
from langchain_customllm._exceptions import ResponseError, StreamError
from langchain_customllm._text import EXCERPT_CHARS, excerpt
from langchain_customllm.formats import (
    GenerationParams,
    ParsedChunk,
    TokenUsage,
    WireFormat,
    WireRequest,
)
from langchain_customllm.formats.base import (
    parse_event_safely,
    parse_response_safely,
    sampling_fields,
)


def test_excerpt_keeps_short_text_and_marks_a_cut() -> None:
    assert excerpt("short") == "short"
    assert excerpt({"é": [1, None]}) == '{"é": [1, null]}'
    assert excerpt(object()).startswith('"<object object')  # not JSON: spelled with str
    long = excerpt("x" * 1000)
    assert long == "x" * EXCERPT_CHARS + "..."
    assert excerpt("abcdef", 3) == "abc..."


def test_sampling_fields_leave_unset_ones_out() -> None:
    assert sampling_fields(GenerationParams(model="m")) == {}
    params = GenerationParams(
        model="m", temperature=0.0, max_tokens=5, top_p=0.5, seed=0, stop=("a", "b")
    )
    assert sampling_fields(params) == {
        "temperature": 0.0,
        "top_p": 0.5,
        "seed": 0,
        "max_tokens": 5,
        "stop": ["a", "b"],
    }
    assert sampling_fields(params, max_tokens="num_predict")["num_predict"] == 5


class _Broken(WireFormat):
    """An adapter with the bugs hand-written ones have: a KeyError, and a typed error."""

    name = "broken"

    def chat_request(
        self, messages: Sequence[BaseMessage], params: GenerationParams, *, stream: bool
    ) -> WireRequest:
        return WireRequest(path="/", body={})

    def completion_request(
        self, prompt: str, params: GenerationParams, *, stream: bool
    ) -> WireRequest:
        return WireRequest(path="/", body={})

    def parse_response(self, body: Any, *, chat: bool) -> ParsedChunk:
        return ParsedChunk(text=body["missing"])

    def parse_event(self, event: StreamEvent, *, chat: bool) -> ParsedChunk | None:
        if event.data == "typed":
            raise StreamError("the adapter's own error")
        return ParsedChunk(text=event.data[1000])


def test_adapter_bugs_become_typed_errors_naming_the_format() -> None:
    body = {"text": "y" * 1000}
    with pytest.raises(ResponseError, match=r"'broken' could not read the answer") as info:
        parse_response_safely(_Broken(), body, chat=True)
    assert info.value.body == body
    assert isinstance(info.value.__cause__, KeyError)
    assert len(info.value.message) < 300
    with pytest.raises(ResponseError, match=r"could not read a stream event \(IndexError"):
        parse_event_safely(_Broken(), StreamEvent(data="z"), chat=True)


def test_adapter_typed_errors_pass_through_unchanged() -> None:
    with pytest.raises(StreamError, match=r"^the adapter's own error$") as info:
        parse_event_safely(_Broken(), StreamEvent(data="typed"), chat=True)
    assert info.value.__cause__ is None


def test_usage_from_counts() -> None:
    assert TokenUsage.from_counts(None, None) is None
    assert TokenUsage.from_counts(None, None, 5) is None
    assert TokenUsage.from_counts(3, None) == TokenUsage(3, 0, 3)
    assert TokenUsage.from_counts(None, 4) == TokenUsage(0, 4, 4)
    assert TokenUsage.from_counts(3, 4, 9) == TokenUsage(3, 4, 9)  # the server's total wins
