"""ChatCustomLLM over a scripted server, the happy path: what is sent, what comes back,
and stop sequences; every case on both twins (sync and async).

Errors, retries and identity are in test_chat_models_errors.py.
"""

from __future__ import annotations

import inspect
import json

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from langchain_customllm import ChatCustomLLM, CustomLLM
from tests._calls import merge, run_invoke, run_stream
from tests.unit_tests.fakes import (
    KEY,
    FakeServer,
    chat_body,
    chat_chunks,
    sse,
)

USAGE = {"prompt_tokens": 11, "completion_tokens": 4, "total_tokens": 15}


# ---------------------------------------------------------------- what is sent


def test_request_body_and_headers(server: FakeServer, mode: str) -> None:
    server.json(chat_body())
    llm = server.chat(temperature=0.2, max_tokens=7, top_p=0.9, seed=3, stop=["END"])
    run_invoke(llm, [SystemMessage("Be brief."), HumanMessage("Capital of France?")], mode)
    (request,) = server.requests
    assert request.url == "http://fake.test/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert server.bodies[0] == {
        "model": "smollm2",
        "temperature": 0.2,
        "max_tokens": 7,  # never renamed to max_completion_tokens
        "top_p": 0.9,
        "seed": 3,
        "stop": ["END"],
        "messages": [
            {"role": "system", "content": "Be brief."},  # never rewritten to "developer"
            {"role": "user", "content": "Capital of France?"},
        ],
    }


def test_stream_requests_usage_on_every_server(server: FakeServer, mode: str) -> None:
    server.stream(sse(*chat_chunks(["Hi"], usage=USAGE)))
    run_stream(server.chat(), "hello", mode)
    body = server.bodies[0]
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert server.requests[0].headers["accept"].startswith("text/event-stream")


def test_stream_usage_can_be_turned_off(server: FakeServer, mode: str) -> None:
    server.stream(sse(*chat_chunks(["Hi"])))
    run_stream(server.chat(stream_usage=False), "hello", mode)
    assert "stream_options" not in server.bodies[0]


def test_extra_body_and_per_call_overrides(server: FakeServer, mode: str) -> None:
    server.json(chat_body())
    llm = server.chat(extra_body={"repetition_penalty": 1.1, "top_k": 5}, temperature=0.5)
    run_invoke(
        llm,
        "hi",
        mode,
        model="other",
        temperature=0.0,
        extra_body={"top_k": 9},
        min_p=0.05,
    )
    body = server.bodies[0]
    assert body["model"] == "other"
    assert body["temperature"] == 0.0
    assert body["repetition_penalty"] == 1.1
    assert body["top_k"] == 9  # per-call extra_body wins over the field
    assert body["min_p"] == 0.05  # unknown per-call kwargs go verbatim into the body


def test_tracing_hints_never_reach_the_body() -> None:
    llm = ChatCustomLLM(model="m")
    params, include = llm._params(
        llm._runtime(), None, {"ls_structured_output_format": {}, "top_k": 2}
    )
    assert params.extra_body == {"top_k": 2}
    assert include is False


@pytest.mark.parametrize(
    ("settings", "header", "value"),
    [
        ({}, "authorization", f"Bearer {KEY}"),
        ({"api_key_header": "x-api-key", "api_key_scheme": None}, "x-api-key", KEY),
        ({"api_key_header": "x-litellm-api-key"}, "x-litellm-api-key", f"Bearer {KEY}"),
    ],
)
def test_auth_header_styles(
    server: FakeServer, settings: dict[str, object], header: str, value: str
) -> None:
    server.json(chat_body())
    server.chat(**settings).invoke("hi")
    assert server.requests[0].headers[header] == value


def test_no_key_no_auth_header(server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUSTOMLLM_API_KEY", raising=False)
    server.json(chat_body())
    server.chat(api_key=None).invoke("hi")
    assert "authorization" not in server.requests[0].headers


def test_default_headers_are_sent(server: FakeServer) -> None:
    server.json(chat_body())
    server.chat(default_headers={"x-tenant": "blue"}).invoke("hi")
    assert server.requests[0].headers["x-tenant"] == "blue"


def test_tool_history_messages_are_converted(server: FakeServer) -> None:
    from langchain_core.messages import ToolMessage

    server.json(chat_body())
    history = [
        HumanMessage("weather?"),
        AIMessage("", tool_calls=[{"name": "w", "args": {"city": "Oslo"}, "id": "c1"}]),
        ToolMessage("sunny", tool_call_id="c1"),
    ]
    server.chat().invoke(history)
    messages = server.bodies[0]["messages"]
    assert messages[1]["role"] == "assistant"
    assert messages[1]["content"] == ""  # llama.cpp answers 500 to content: null
    assert json.loads(messages[1]["tool_calls"][0]["function"]["arguments"]) == {"city": "Oslo"}
    assert messages[2] == {"role": "tool", "tool_call_id": "c1", "content": "sunny"}


# ---------------------------------------------------------------- what comes back


def test_invoke_result(server: FakeServer, mode: str) -> None:
    usage = {
        "prompt_tokens": 20,
        "completion_tokens": 9,
        "total_tokens": 29,
        "prompt_tokens_details": {"cached_tokens": 16},
        "completion_tokens_details": {"reasoning_tokens": 5},
    }
    server.json(chat_body("Paris.", usage=usage, reasoning_content="France -> Paris"))
    result = run_invoke(server.chat(), "Capital of France?", mode)
    assert isinstance(result, AIMessage)
    assert result.content == "Paris."
    assert result.additional_kwargs["reasoning_content"] == "France -> Paris"
    assert result.usage_metadata == {
        "input_tokens": 20,
        "output_tokens": 9,
        "total_tokens": 29,
        "input_token_details": {"cache_read": 16},
        "output_token_details": {"reasoning": 5},
    }
    meta = result.response_metadata
    assert meta["model_name"] == "smollm2"
    assert meta["finish_reason"] == "stop"
    assert meta["id"] == "chatcmpl-9"
    assert meta["system_fingerprint"] == "fp-1"
    assert result.id == "chatcmpl-9"


def test_reasoning_field_named_reasoning(server: FakeServer) -> None:
    server.json(chat_body("4", reasoning="2+2"))
    assert server.chat().invoke("2+2?").additional_kwargs["reasoning_content"] == "2+2"


def test_v1_output_has_reasoning_block(server: FakeServer) -> None:
    server.json(chat_body("Paris.", reasoning_content="think"))
    result = server.chat(output_version="v1").invoke("q")
    assert result.content == [
        {"type": "reasoning", "reasoning": "think"},
        {"type": "text", "text": "Paris."},
    ]


def test_stream_chunks_usage_once_and_last_marker(server: FakeServer, mode: str) -> None:
    server.stream(sse(*chat_chunks(["The ", "capital", " is Paris."], usage=USAGE)))
    chunks = run_stream(server.chat(), "q", mode)
    assert [c.content for c in chunks[:-1]] == ["The ", "capital", " is Paris."]
    with_usage = [c for c in chunks if c.usage_metadata]
    assert len(with_usage) == 1
    assert chunks[-1].chunk_position == "last"
    full = merge(chunks)
    assert full.content == "The capital is Paris."
    assert full.usage_metadata == {"input_tokens": 11, "output_tokens": 4, "total_tokens": 15}
    assert full.response_metadata["finish_reason"] == "stop"
    assert full.response_metadata["model_name"] == "smollm2"


def test_stream_without_usage_from_server(server: FakeServer, mode: str) -> None:
    # No usage from the server and no tokenizer in the profile: estimated, and said so.
    server.stream(sse(*chat_chunks(["Hi"])))
    chunks = run_stream(server.chat(), "q", mode)
    assert chunks[-1].usage_metadata is not None
    assert merge(chunks).response_metadata["usage_source"] == "estimated"


def test_stream_without_usage_left_out_when_asked(server: FakeServer, mode: str) -> None:
    server.stream(sse(*chat_chunks(["Hi"])))
    chunks = run_stream(server.chat(missing_usage="none"), "q", mode)
    assert all(c.usage_metadata is None for c in chunks)
    assert "usage_source" not in merge(chunks).response_metadata


def test_stream_reasoning_is_kept(server: FakeServer, mode: str) -> None:
    server.stream(sse(*chat_chunks(["Paris"], reasoning=["Fr", "ance"])))
    full = merge(run_stream(server.chat(), "q", mode))
    assert full.additional_kwargs["reasoning_content"] == "France"
    assert full.content == "Paris"


def test_stream_survives_any_byte_split(server: FakeServer, mode: str) -> None:
    body = sse(*chat_chunks(["Caf\u00e9 ", "\u00fcber ", "\U0001f600"], usage=USAGE))
    server.stream([body[i : i + 1] for i in range(len(body))])  # one byte per read
    full = merge(run_stream(server.chat(), "q", mode))
    assert full.content == "Caf\u00e9 \u00fcber \U0001f600"
    assert full.usage_metadata is not None


def test_stream_equals_invoke(server: FakeServer, mode: str) -> None:
    server.json(chat_body("Hello there.", usage=USAGE))
    server.stream(sse(*chat_chunks(["Hello", " there."], usage=USAGE)))
    llm = server.chat()
    whole = run_invoke(llm, "q", mode)
    streamed = merge(run_stream(llm, "q", mode))
    assert streamed.content == whole.content
    assert streamed.usage_metadata == whole.usage_metadata
    assert streamed.response_metadata["finish_reason"] == whole.response_metadata["finish_reason"]


# ---------------------------------------------------------------- stop sequences


def test_stop_enforced_client_side_on_invoke(server: FakeServer, mode: str) -> None:
    server.json(chat_body("one two STOP three", finish="length"))
    result = run_invoke(server.chat(stop=["STOP"]), "q", mode)
    assert result.content == "one two "
    assert result.response_metadata["finish_reason"] == "stop"


def test_stop_split_across_chunks_is_never_emitted(server: FakeServer, mode: str) -> None:
    server.stream(sse(*chat_chunks(["one two S", "T", "OP three"], finish="length", usage=USAGE)))
    chunks = run_stream(server.chat(), "q", mode, stop=["STOP"])
    emitted = [c.content for c in chunks]
    assert "".join(emitted) == "one two "
    assert not any("S" in piece for piece in emitted)
    full = merge(chunks)
    assert full.response_metadata["finish_reason"] == "stop"
    # The stream is read to its end after the stop, so usage matches invoke's.
    assert full.usage_metadata == {"input_tokens": 11, "output_tokens": 4, "total_tokens": 15}


def test_partial_stop_prefix_is_released_when_not_a_stop(server: FakeServer, mode: str) -> None:
    server.stream(sse(*chat_chunks(["a ST", "ART b"])))
    chunks = run_stream(server.chat(), "q", mode, stop=["STOP"])
    assert [c.content for c in chunks] == ["a ", "START b", ""]


@pytest.mark.parametrize("where", ["field", "call"])
def test_include_stop_sequence(server: FakeServer, mode: str, where: str) -> None:
    server.json(chat_body("x STOP y"))
    server.stream(sse(*chat_chunks(["x ST", "OP y"])))
    if where == "field":
        llm, kwargs = server.chat(stop=["STOP"], include_stop_sequence=True), {}
    else:
        llm, kwargs = server.chat(stop=["STOP"]), {"include_stop_sequence": True}
    assert run_invoke(llm, "q", mode, **kwargs).content == "x STOP"
    assert merge(run_stream(llm, "q", mode, **kwargs)).content == "x STOP"
    for body in server.bodies:
        assert "include_stop_sequence" not in body
        # The server would cut the stop away, so it is enforced on our side only.
        assert "stop" not in body


def test_per_call_stop_overrides_field(server: FakeServer) -> None:
    server.json(chat_body("a b c"))
    result = server.chat(stop=["a"]).invoke("q", stop=["c"])
    assert server.bodies[0]["stop"] == ["c"]
    assert result.content == "a b "


@pytest.mark.parametrize(
    "method",
    [ChatCustomLLM._generate, ChatCustomLLM._agenerate, CustomLLM._call, CustomLLM._acall,
     CustomLLM._generate, CustomLLM._agenerate],
)  # fmt: skip
def test_the_methods_core_inspects_on_every_call_carry_their_signature(method: object) -> None:
    # langchain-core passes run_manager only to methods whose signature names it.
    assert "__signature__" in vars(method)
    assert "run_manager" in inspect.signature(method).parameters  # type: ignore[arg-type]
