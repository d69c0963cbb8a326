"""What the package adapts so vLLM and the LiteLLM gateway look like every other server.

Each case replays what the real server sent (measured for the real-server matrix,
tests/integration_tests/test_matrix.py) on ``httpx.MockTransport``: no sockets.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

import httpx
import pytest

from langchain_customllm import (
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    RateLimitError,
)
from langchain_customllm._assembly import Assembler, unwrap_string_args
from langchain_customllm._exceptions import error_from_response
from langchain_customllm.formats.base import ParsedChunk, ToolCallPiece
from langchain_customllm.probe.checks import run_probe
from langchain_customllm.probe.payloads import TOOL_MAX_TOKENS
from tests._calls import merge, run_invoke, run_stream
from tests.unit_tests._probe_helpers import URL, VLLM, probe_sim, rows_by_key
from tests.unit_tests.fakes import (
    KEY,
    FakeServer,
    chat_body,
    chat_chunks,
    completion_chunks,
    sse,
)

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city"],
        },
    },
}
ARGS = {"city": "Paris", "days": 2}
DOUBLE = json.dumps(json.dumps(ARGS))  # a JSON string whose content is the JSON object


def tool_answer(arguments: str) -> dict[str, Any]:
    call = {
        "id": "chatcmpl-tool-1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": arguments},
    }
    return chat_body(None, finish="tool_calls", tool_calls=[call])


def tool_stream(fragments: list[str]) -> bytes:
    """vLLM's streamed tool call: id and name first, then argument fragments."""
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "smollm2"}
    first = {"index": 0, "id": "chatcmpl-tool-1", "type": "function"}
    first["function"] = {"name": "get_weather", "arguments": ""}
    events: list[dict[str, Any]] = [
        {**base, "choices": [{"index": 0, "delta": {"tool_calls": [first]}}]}
    ]
    for fragment in fragments:
        delta = {"tool_calls": [{"index": 0, "function": {"arguments": fragment}}]}
        events.append({**base, "choices": [{"index": 0, "delta": delta}]})
    events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
    return sse(*events)


# ------------------------------------------------------------ double-encoded tool arguments


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (DOUBLE, json.dumps(ARGS)),
        ("  " + DOUBLE, json.dumps(ARGS)),
        (json.dumps(ARGS), None),  # already an object: nothing to undo
        (json.dumps("Paris"), None),  # a string, but not one holding an object
        (json.dumps(json.dumps([1, 2])), None),  # holds JSON, but not an object
        ('"{\\"city\\": ', None),  # cut off
        ("", None),
    ],
)
def test_unwrap_string_args(args: str, expected: str | None) -> None:
    assert unwrap_string_args(args) == expected


def test_double_encoded_arguments_become_a_dict(server: FakeServer, mode: str) -> None:
    server.json(tool_answer(DOUBLE))
    model = server.chat(server_profile="vllm").bind_tools([WEATHER], tool_choice="get_weather")
    result = run_invoke(model, "Weather in Paris?", mode)
    assert result.tool_calls == [
        {"name": "get_weather", "args": ARGS, "id": "chatcmpl-tool-1", "type": "tool_call"}
    ]
    assert result.invalid_tool_calls == []


def test_plain_object_arguments_are_untouched(server: FakeServer, mode: str) -> None:
    server.json(tool_answer(json.dumps(ARGS)))
    model = server.chat().bind_tools([WEATHER], tool_choice="get_weather")
    assert run_invoke(model, "Weather in Paris?", mode).tool_calls[0]["args"] == ARGS


def test_vllm_profile_sends_strict_tools(server: FakeServer) -> None:
    # With strict tools vLLM returns the arguments as an object in the first place.
    server.json(tool_answer(json.dumps(ARGS)))
    server.chat(server_profile="vllm").bind_tools([WEATHER], tool_choice="any").invoke("q")
    sent = server.bodies[0]
    assert sent["tools"][0]["function"]["strict"] is True
    assert sent["tool_choice"] == "required"


@pytest.mark.parametrize(
    ("profile", "tool_strict", "sent"),
    [
        ("vllm", None, True),  # the profile's strict reaches tools given as OpenAI dicts too
        ("vllm", False, False),  # a tool that says otherwise keeps its own setting
        ("generic", None, None),  # no profile strict: nothing added
    ],
)
def test_strict_on_tools_given_as_openai_dicts(
    server: FakeServer, profile: str, tool_strict: bool | None, sent: bool | None
) -> None:
    tool = json.loads(json.dumps(WEATHER))
    if tool_strict is not None:
        tool["function"]["strict"] = tool_strict
    server.json(tool_answer(json.dumps(ARGS)))
    server.chat(server_profile=profile).bind_tools([tool], tool_choice="get_weather").invoke("q")
    assert server.bodies[0]["tools"][0]["function"].get("strict") is sent
    assert "strict" not in WEATHER["function"]  # the caller's dict is not modified


def test_streamed_double_encoded_arguments_become_a_dict(server: FakeServer, mode: str) -> None:
    # The JSON string arrives in fragments split inside its escapes.
    cut = [DOUBLE[:1], DOUBLE[1:9], DOUBLE[9:10], DOUBLE[10:]]
    server.stream(tool_stream(cut))
    model = server.chat(server_profile="vllm").bind_tools([WEATHER], tool_choice="get_weather")
    chunks = run_stream(model, "Weather in Paris?", mode)
    full = merge(chunks)
    assert full.tool_calls == [
        {"name": "get_weather", "args": ARGS, "id": "chatcmpl-tool-1", "type": "tool_call"}
    ]
    # The name and id come as soon as they arrive; the wrapped arguments only at the end.
    assert chunks[0].tool_call_chunks[0]["name"] == "get_weather"
    assert [c.tool_call_chunks[0]["args"] for c in chunks if c.tool_call_chunks] == [
        "",
        json.dumps(ARGS),
    ]


def test_streamed_object_arguments_still_stream(server: FakeServer, mode: str) -> None:
    text = json.dumps(ARGS)
    server.stream(tool_stream(["  ", text[:5], text[5:]]))
    model = server.chat(server_profile="vllm").bind_tools([WEATHER], tool_choice="get_weather")
    chunks = run_stream(model, "Weather in Paris?", mode)
    fragments = [c.tool_call_chunks[0]["args"] for c in chunks if c.tool_call_chunks]
    assert fragments == ["", "  " + text[:5], text[5:]]  # not held back until the end
    assert merge(chunks).tool_calls[0]["args"] == ARGS


def test_stream_ending_inside_a_wrapped_string_keeps_the_raw_text() -> None:
    assembler = Assembler(None, False, "smollm2")
    assembler.feed(ParsedChunk(tool_calls=[ToolCallPiece(0, "t1", "f", '"{\\"a\\"')]))
    assembler.feed(ParsedChunk(finish_reason="length"))
    final = assembler.finish()
    assert final.tool_calls == [ToolCallPiece(0, args='"{\\"a\\"')]  # not lost, not altered


# ------------------------------------------------------------------- estimated usage


def test_gateway_whole_answer_usage_is_the_backends(server: FakeServer, mode: str) -> None:
    # Not streamed, the LiteLLM proxy passes the backend's own count on: nothing to mark.
    server.json(chat_body())
    result = run_invoke(server.chat(server_profile="litellm"), "q", mode)
    assert "usage_estimated" not in result.response_metadata
    assert result.usage_metadata is not None


def test_gateway_stream_usage_is_marked_estimated_once(server: FakeServer, mode: str) -> None:
    usage = {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}
    server.stream(sse(*chat_chunks(["Par", "is."], usage=usage)))
    chunks = run_stream(server.chat(server_profile="litellm"), "q", mode)
    marked = [c for c in chunks if "usage_estimated" in c.response_metadata]
    assert len(marked) == 1
    assert marked[0].usage_metadata is not None
    assert merge(chunks).response_metadata["usage_estimated"] is True


@pytest.mark.parametrize("profile", [None, "vllm", "generic"])
def test_usage_from_the_model_is_not_marked(
    server: FakeServer, mode: str, profile: str | None
) -> None:
    usage = {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}
    server.stream(sse(*chat_chunks(["Par", "is."], usage=usage)))
    chunks = run_stream(server.chat(server_profile=profile), "q", mode)
    assert merge(chunks).usage_metadata is not None
    assert all("usage_estimated" not in c.response_metadata for c in chunks)


def test_estimated_usage_with_an_overridden_profile(server: FakeServer, mode: str) -> None:
    # What `customllm probe` recommends for the proxy in front of llama.cpp.
    usage = {"prompt_tokens": 19, "completion_tokens": 2, "total_tokens": 21}
    server.stream(sse(*chat_chunks(["Par", "is."], usage=usage)))
    profile = {"base": "llama-cpp-python", "stream_usage": True, "usage_estimated": True}
    chunks = run_stream(server.chat(server_profile=profile), "q", mode)
    assert merge(chunks).response_metadata["usage_estimated"] is True


def test_no_usage_is_estimated_and_marked_once(server: FakeServer, mode: str) -> None:
    # The gateway sent none and has no tokenizer: our estimate, marked as one (both flags).
    server.stream(sse(*chat_chunks(["Paris."])))
    chunks = run_stream(server.chat(server_profile="litellm"), "q", mode)
    marked = [c for c in chunks if "usage_estimated" in c.response_metadata]
    assert len(marked) == 1
    assert marked[0].response_metadata["usage_source"] == "estimated"


def test_no_usage_left_out_means_nothing_to_mark(server: FakeServer, mode: str) -> None:
    server.stream(sse(*chat_chunks(["Paris."])))
    chunks = run_stream(server.chat(server_profile="litellm", missing_usage="none"), "q", mode)
    assert all("usage_estimated" not in c.response_metadata for c in chunks)


# --------------------------------------------------------------- the gateway's retry hint


def rate_limited(headers: dict[str, str]) -> httpx.Response:
    body = {"error": {"message": "litellm.RateLimitError: No deployments available", "code": "429"}}
    return httpx.Response(429, json=body, headers=headers)


@pytest.mark.parametrize(
    ("headers", "slept"),
    [
        ({"llm_provider-retry-after": "7"}, 7.0),  # the LiteLLM proxy's only hint
        ({"llm_provider-retry-after": "7", "retry-after": "3"}, 3.0),  # a plain one wins
    ],
)
def test_gateway_retry_hint_is_honoured(
    server: FakeServer, mode: str, headers: dict[str, str], slept: float
) -> None:
    server.add(rate_limited(headers))
    server.json(chat_body())
    result = run_invoke(server.chat(max_retries=1), "q", mode)
    assert result.content == "Paris."
    assert server.sleeps == [slept]
    assert len(server.requests) == 2


def test_gateway_retry_hint_too_long_is_not_waited_for(server: FakeServer, mode: str) -> None:
    server.add(rate_limited({"llm_provider-retry-after": "600"}))
    with pytest.raises(RateLimitError) as info:
        run_invoke(server.chat(max_retries=2), "q", mode)
    assert info.value.retry_after == 600.0
    assert server.sleeps == []
    assert len(server.requests) == 1


# ------------------------------------------------------------------- auth at the gateway

NO_DB = {"error": {"message": "No connected db.", "type": "no_db_connection", "code": "400"}}


def test_bearer_is_the_default(server: FakeServer) -> None:
    server.json(chat_body())
    server.chat().invoke("q")
    assert server.requests[0].headers["authorization"] == f"Bearer {KEY}"
    assert "x-litellm-api-key" not in server.requests[0].headers


def test_litellm_key_header(server: FakeServer, mode: str) -> None:
    server.json(chat_body())
    model = server.chat(api_key_header="x-litellm-api-key", api_key_scheme=None)
    run_invoke(model, "q", mode)
    headers = server.requests[0].headers
    assert headers["x-litellm-api-key"] == KEY
    assert "authorization" not in headers


def test_gateway_400_no_db_connection_is_an_authentication_error(
    server: FakeServer, mode: str
) -> None:
    server.json(NO_DB, status=400)
    with pytest.raises(AuthenticationError) as info:
        run_invoke(server.chat(max_retries=2), "q", mode)
    err = info.value
    assert err.status_code == 400
    assert "No connected db." in str(err)
    assert "master key" in str(err)
    assert KEY not in str(err)
    assert KEY not in repr(err.body)
    assert not err.is_retryable
    assert len(server.requests) == 1


def test_gateway_400_no_db_connection_in_a_stream(server: FakeServer, mode: str) -> None:
    server.json(NO_DB, status=400)
    with pytest.raises(AuthenticationError, match="No connected db"):
        run_stream(server.chat(), "q", mode)


def test_other_400s_stay_bad_requests() -> None:
    body = {"error": {"message": "Invalid model name", "type": "invalid_request_error"}}
    err = error_from_response(400, {}, json.dumps(body).encode())
    assert type(err) is BadRequestError
    # The gateway's type only counts on a 400: anything else keeps its status's class.
    err = error_from_response(500, {}, json.dumps(NO_DB).encode())
    assert not isinstance(err, AuthenticationError)


def test_gateway_unknown_model_is_not_found() -> None:
    # LiteLLM 1.106.2's answer to a model it does not route, measured on the real proxy.
    message = (
        "Invalid model name passed in model=no-such-model. Call `/v1/models` to view "
        "available models for your key."
    )
    body = {"error": {"message": message, "type": "invalid_request_error", "code": "400"}}
    err = error_from_response(400, {}, json.dumps(body).encode())
    assert type(err) is NotFoundError
    assert err.status_code == 400  # the gateway's own status is kept
    assert "no-such-model" in err.message
    assert "check base_url" in err.message
    assert not err.is_retryable


def test_non_object_tool_arguments_are_invalid_calls(server: FakeServer, mode: str) -> None:
    # vLLM without strict answers get_weather(city) with the bare JSON string "Paris".
    server.json(tool_answer('"Paris"'))
    model = server.chat(server_profile="generic").bind_tools([WEATHER], tool_choice="get_weather")
    message = run_invoke(model, "Weather in Paris?", mode)
    assert message.tool_calls == []
    assert len(message.invalid_tool_calls) == 1
    invalid = message.invalid_tool_calls[0]
    assert invalid["name"] == "get_weather"
    assert "not an object" in (invalid["error"] or "")


def test_streamed_non_object_tool_arguments_are_invalid_calls(
    server: FakeServer, mode: str
) -> None:
    server.stream(tool_stream(['"Par', 'is"']))
    model = server.chat(server_profile="generic").bind_tools([WEATHER], tool_choice="get_weather")
    merged = merge(run_stream(model, "Weather in Paris?", mode))
    assert merged.tool_calls == []
    assert [c["name"] for c in merged.invalid_tool_calls] == ["get_weather"]


def test_text_model_marks_gateway_stream_usage(server: FakeServer, mode: str) -> None:
    usage = {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}
    events = [*completion_chunks(["Par", "is."]), {"choices": [], "usage": usage}]
    server.stream(sse(*events))
    # streaming=True: generate() runs the stream, and its last chunk's info is the result's.
    llm = server.llm(server_profile="litellm", streaming=True)
    result = llm.generate(["q"]) if mode == "sync" else asyncio.run(llm.agenerate(["q"]))
    info = result.generations[0][0].generation_info or {}
    assert info.get("usage_estimated") is True
    assert info["token_usage"]["prompt_tokens"] == 9


# ------------------------------------------------------------- the probe, fixed on vLLM


def test_probe_asks_for_n_sampled_and_gives_tools_room() -> None:
    # vLLM refuses n > 1 under greedy decoding (400), and cuts a forced call into text when
    # max_tokens leaves no room for its `<tool_call>` wrapper.
    sim = replace(VLLM, requests=[])
    run_probe(URL, "smollm2", transport=httpx.MockTransport(sim))
    n_requests = [r for r in sim.requests if r.get("n")]
    assert [r["temperature"] for r in n_requests] == [1.0]
    tool_requests = [r for r in sim.requests if r.get("tools")]
    assert tool_requests
    assert all(r["max_tokens"] == TOOL_MAX_TOKENS for r in tool_requests)


def test_probe_says_what_the_string_arguments_hold() -> None:
    rows = rows_by_key(probe_sim(VLLM))
    assert "a JSON string, holding a JSON object" in rows["tools_named"].evidence
    assert rows["tools_strict"].supported is True
