"""The OpenAI format's fast path for plain text deltas gives what the general path gives.

`OpenAIFormat.parse_event` reads the common event (one choice, text only) without the
general machinery; every other shape must fall through to it. Each case is checked both
ways: the result equals the general path's, and the fast path is (or is not) the one taken.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from langchain_customllm import ResponseError, StreamError, _json
from langchain_customllm._framing import SSEEvent
from langchain_customllm.formats.openai import OpenAIFormat, _plain_delta

FMT = OpenAIFormat()
BASE = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "smollm2"}


def _choice(delta: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {**BASE, "choices": [{"index": 0, "delta": delta, "finish_reason": None, **extra}]}


FAST = {
    "text": _choice({"content": "Hello"}),
    "text with role": _choice({"role": "assistant", "content": " world"}),
    "empty text": _choice({"content": ""}),
    "null reasoning fields": _choice(
        {"content": "x", "reasoning_content": None, "tool_calls": None}
    ),
    "unicode": _choice({"content": "東京 ✓"}),
    "numeric id and model": {**_choice({"content": "x"}), "id": 7, "model": 3},
    "no id, no model": {"choices": [{"delta": {"content": "x"}}]},
}
GENERAL = {
    "role only": _choice({"role": "assistant"}),
    "null content": _choice({"content": None}),
    "content parts": _choice({"content": [{"type": "text", "text": "a"}]}),
    "reasoning": _choice({"reasoning_content": "think", "content": ""}),
    "reasoning (vLLM new name)": _choice({"reasoning": "think", "content": "x"}),
    "tool call": _choice(
        {"content": "", "tool_calls": [{"index": 0, "function": {"arguments": "{"}}]}
    ),
    "finish": _choice({"content": "."}, finish_reason="stop"),
    "stop reason": _choice({"content": "x"}, stop_reason="###"),
    "logprobs": _choice({"content": "x"}, logprobs={"content": [{"token": "x"}]}),
    "usage": {**_choice({"content": "x"}), "usage": {"prompt_tokens": 1, "completion_tokens": 1}},
    "fingerprint": {**_choice({"content": "x"}), "system_fingerprint": "fp1"},
    "two choices": {
        **BASE,
        "choices": [{"delta": {"content": "a"}}, {"index": 1, "delta": {"content": "b"}}],
    },
    "no choices (usage chunk)": {**BASE, "choices": [], "usage": {"prompt_tokens": 2}},
    "error beside choices": {**_choice({"content": "x"}), "error": {"message": "late"}},
}


def _general(obj: dict[str, Any]) -> Any:
    data = json.dumps(obj)
    return FMT._full_event(obj, SSEEvent(data=data), data, chat=True)


@pytest.mark.parametrize("name", FAST)
def test_plain_text_deltas_take_the_fast_path(name: str) -> None:
    obj = FAST[name]
    assert _plain_delta(obj) is not None
    assert FMT.parse_event(SSEEvent(data=json.dumps(obj)), chat=True) == _general(obj)


@pytest.mark.parametrize("name", GENERAL)
def test_everything_else_takes_the_general_path(name: str) -> None:
    obj = GENERAL[name]
    assert _plain_delta(obj) is None
    assert FMT.parse_event(SSEEvent(data=json.dumps(obj)), chat=True) == _general(obj)


def test_named_events_and_text_completions_take_the_general_path() -> None:
    data = json.dumps(FAST["text"])
    # An `event: error` with a normal-looking body is still an error.
    with pytest.raises(StreamError, match="mid-stream"):
        FMT.parse_event(SSEEvent(data=data, event="error"), chat=True)
    text = json.dumps({**BASE, "choices": [{"text": "abc", "finish_reason": None}]})
    parsed = FMT.parse_event(SSEEvent(data=text), chat=False)
    assert parsed is not None
    assert parsed.text == "abc"


@given(
    st.fixed_dictionaries(
        {"content": st.one_of(st.none(), st.text(max_size=5))},
        optional={
            "role": st.sampled_from(["assistant", None]),
            "reasoning_content": st.one_of(st.none(), st.text(max_size=3)),
            "tool_calls": st.one_of(st.none(), st.just([])),
        },
    ),
    st.one_of(st.none(), st.sampled_from(["stop", "length"])),
    st.one_of(st.none(), st.text(max_size=3)),
)
def test_any_delta_parses_the_same_both_ways(
    delta: dict[str, Any], finish: str | None, fingerprint: str | None
) -> None:
    obj = {**_choice(delta, finish_reason=finish), "system_fingerprint": fingerprint}
    assert FMT.parse_event(SSEEvent(data=json.dumps(obj)), chat=True) == _general(obj)


@pytest.mark.parametrize(
    ("text", "check"),
    [
        ('{"logprob": -Infinity}', lambda v: v["logprob"] == -math.inf),
        ('{"x": NaN}', lambda v: math.isnan(v["x"])),
        ('{"lone": "\\ud800"}', lambda v: v == {"lone": "\ud800"}),
        ('{"a": [1, 2.5, "s", null, true]}', lambda v: v == {"a": [1, 2.5, "s", None, True]}),
    ],
)
def test_json_decoding_matches_the_standard_library(text: str, check: Any) -> None:
    # orjson refuses NaN/Infinity (llama.cpp can put -Infinity in logprobs) and lone
    # surrogates: those are decoded again by json, so they read as the standard library does.
    assert check(_json.loads(text))
    assert check(_json.loads(text.encode()))


@pytest.mark.parametrize("bad", ["{not json", "", '{"a": 1', "[1,]"])
def test_json_errors_are_the_standard_librarys(bad: str) -> None:
    with pytest.raises(json.JSONDecodeError) as expected:
        json.loads(bad)
    with pytest.raises(json.JSONDecodeError) as got:
        _json.loads(bad)
    assert str(got.value) == str(expected.value)


def test_stream_event_that_orjson_refuses_reads_as_json_does() -> None:
    # The event path tries orjson alone first; NaN/-Infinity (llama.cpp logprobs) and lone
    # surrogates must still read as the standard library reads them.
    event = (
        '{"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {"content": "\\ud800x"},'
        ' "logprobs": {"content": [{"token": "x", "logprob": -Infinity}]}}]}'
    )
    parsed = FMT.parse_event(SSEEvent(data=event), chat=True)
    assert parsed is not None
    assert parsed.text == "\ud800x"
    assert parsed.metadata["logprobs"]["content"][0]["logprob"] == -math.inf
    with pytest.raises(ResponseError, match="not JSON"):
        FMT.parse_event(SSEEvent(data='{"choices": [}'), chat=True)
