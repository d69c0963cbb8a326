"""Fuzzing the decoders and every built-in wire format's parsers.

Arbitrary bytes into the framing decoders, arbitrary JSON (and non-JSON) into every format's
parse_response / parse_event: they may only return, or raise one of our typed errors --
never a KeyError, TypeError or AttributeError from a shape nobody expected.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from langchain_customllm import CustomLLMError
from langchain_customllm._framing import SSEEvent, make_decoder
from langchain_customllm.formats import get_format
from tests.servers.torchserve import TORCHSERVE_FORMAT

FORMATS = ["openai", "ollama", "tgi", "custom"]
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "choices",
                    "message",
                    "delta",
                    "content",
                    "text",
                    "usage",
                    "error",
                    "done",
                    "finish_reason",
                    "prompt_tokens",
                    "completion_tokens",
                    "response",
                    "model",
                    "token",
                    "generated_text",
                    "details",
                    "special",
                    "outputs",
                    "eval_count",
                    "prompt_eval_count",
                    "done_reason",
                    "thinking",
                    "reasoning_content",
                    "id",
                    "input_length",
                    "generated_tokens",
                    "prefill",
                    "in",
                    "out",
                    "x",
                ]
            ),
            children,
            max_size=5,
        )
    ),
    max_leaves=12,
)


def fmt(name: str) -> Any:
    return get_format(TORCHSERVE_FORMAT if name == "custom" else name)


@pytest.mark.parametrize("framing", ["sse", "ndjson", "text"])
@SETTINGS
@given(data=st.binary(max_size=400), cuts=st.lists(st.integers(0, 400), max_size=6))
def test_decoders_take_any_bytes(framing: str, data: bytes, cuts: list[int]) -> None:
    decoder = make_decoder(framing)  # type: ignore[arg-type]
    points = sorted({c for c in cuts if c <= len(data)} | {0, len(data)})
    events = []
    for a, b in itertools.pairwise(points):
        events.extend(decoder.feed(data[a:b]))
    events.extend(decoder.flush())
    assert all(isinstance(e.data, str) for e in events)


@pytest.mark.parametrize("name", FORMATS)
@pytest.mark.parametrize("chat", [True, False])
@SETTINGS
@given(body=json_values)
def test_parse_response_only_raises_typed_errors(name: str, chat: bool, body: Any) -> None:
    try:
        parsed = fmt(name).parse_response(body, chat=chat)
    except CustomLLMError:
        return
    assert isinstance(parsed.text, str)
    assert isinstance(parsed.reasoning, str)


@pytest.mark.parametrize("name", FORMATS)
@pytest.mark.parametrize("chat", [True, False])
@SETTINGS
@given(
    payload=json_values.map(json.dumps) | st.text(max_size=40),
    event=st.none() | st.sampled_from(["error", "message", "ping"]),
)
def test_parse_event_only_raises_typed_errors(
    name: str, chat: bool, payload: str, event: str | None
) -> None:
    try:
        parsed = fmt(name).parse_event(SSEEvent(data=payload, event=event), chat=chat)
    except CustomLLMError:
        return
    if parsed is not None:
        assert isinstance(parsed.text, str)
        assert isinstance(parsed.reasoning, str)
