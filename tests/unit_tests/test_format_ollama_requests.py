"""The native Ollama wire format on both twins: registration, requests, whole answers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain_core.messages import (
    AIMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

import langchain_customllm.formats.ollama  # noqa: F401 (registers wire_format="ollama")
from langchain_customllm import (
    BadRequestError,
    ConfigurationError,
    NotFoundError,
    ResponseError,
    get_format,
)
from langchain_customllm.formats.ollama import OllamaFormat, messages_to_ollama
from tests._calls import run_invoke, run_stream
from tests.unit_tests._ollama_helpers import (
    CHAT_ANSWER,
    CHAT_STREAM,
    PNG,
    answer,
    chat,
    final,
    line,
    llm,
    ndjson,
)
from tests.unit_tests.fakes import FakeServer

# ---------------------------------------------------------------- the format itself


def test_registered_by_name() -> None:
    fmt = get_format("ollama")
    assert isinstance(fmt, OllamaFormat)
    assert (fmt.name, fmt.framing) == ("ollama", "ndjson")


# ---------------------------------------------------------------- what is sent


def test_chat_request_bytes_with_every_option(server: FakeServer, mode: str) -> None:
    # Shape: docs/api.md "Chat request (Reproducible outputs)" / "(No streaming)"; option
    # names: api.Options in api/types.go (max_tokens is num_predict).
    server.add(answer(CHAT_ANSWER))
    model = chat(server, model="llama3.2", temperature=0.5, max_tokens=100, top_p=0.9, seed=101)
    run_invoke(model, [SystemMessage("Be brief."), HumanMessage("Hello!")], mode, stop=["\n"])
    (request,) = server.requests
    assert str(request.url) == "http://fake.test/api/chat"
    assert request.content == (
        b'{"model":"llama3.2","messages":[{"role":"system","content":"Be brief."},'
        b'{"role":"user","content":"Hello!"}],"stream":false,"options":{"temperature":0.5,'
        b'"top_p":0.9,"seed":101,"num_predict":100,"stop":["\\n"]}}'
    )


def test_stream_is_always_sent_and_options_omitted_when_empty(
    server: FakeServer, mode: str
) -> None:
    # Ollama streams unless told {"stream": false}, so the flag goes out both ways.
    ndjson(server, CHAT_STREAM)
    server.add(answer(CHAT_ANSWER))
    model = chat(server, model="llama3.2")
    run_stream(model, "why is the sky blue?", mode)
    run_invoke(model, "why is the sky blue?", mode)
    streamed, whole = server.bodies
    assert streamed == {
        "model": "llama3.2",
        "messages": [{"role": "user", "content": "why is the sky blue?"}],
        "stream": True,
    }
    assert whole["stream"] is False
    assert "options" not in whole
    assert "application/x-ndjson" in server.requests[0].headers["accept"]


def test_generate_request(server: FakeServer, mode: str) -> None:
    # docs/api.md "Generate request (With options)" / "Request (No streaming)".
    server.add(
        answer(
            b'{"model":"llama3.2","created_at":"2023-08-04T19:22:45.499127Z",'
            b'"response":"Blue.","done":true,"done_reason":"stop"}'
        )
    )
    run_invoke(llm(server, model="llama3.2", seed=42, max_tokens=100), "Why is the sky blue?", mode)
    assert str(server.requests[0].url) == "http://fake.test/api/generate"
    assert server.requests[0].content == (
        b'{"model":"llama3.2","prompt":"Why is the sky blue?","stream":false,'
        b'"options":{"seed":42,"num_predict":100}}'
    )


def test_extra_body_top_level_and_option_names_into_options(server: FakeServer) -> None:
    server.add(answer(CHAT_ANSWER))
    model = chat(
        server,
        temperature=0.1,
        extra_body={"format": "json", "keep_alive": "5m", "options": {"num_ctx": 4096}},
    )
    model.invoke("hi", think=False, top_k=20, raw=True)
    body = server.bodies[0]
    # Ollama ignores unknown top-level fields: a bare top_k is routed into options.
    assert body["options"] == {"temperature": 0.1, "num_ctx": 4096, "top_k": 20}
    assert (body["format"], body["keep_alive"], body["think"], body["raw"]) == (
        "json",
        "5m",
        False,
        True,
    )


def test_images_are_base64_and_text_parts_joined(server: FakeServer, mode: str) -> None:
    # docs/api.md "Chat request (with images)": base64 strings in message.images.
    server.add(answer(CHAT_ANSWER))
    message = HumanMessage(
        content=[
            {"type": "text", "text": "what is in this image?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
            {"type": "image", "base64": PNG, "mime_type": "image/png"},
            {"type": "image", "source_type": "base64", "data": PNG, "mime_type": "image/png"},
            "and this?",
        ]
    )
    run_invoke(chat(server, model="llava"), [message], mode)
    assert server.bodies[0]["messages"] == [
        {"role": "user", "content": "what is in this image?\nand this?", "images": [PNG] * 3}
    ]


@pytest.mark.parametrize(
    "block",
    [
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        {"type": "image", "url": "https://example.com/cat.png"},
        {"type": "audio", "base64": "AAAA", "mime_type": "audio/wav"},
    ],
)
def test_content_ollama_cannot_take_is_refused(block: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match="ollama"):
        messages_to_ollama([HumanMessage(content=[block])])


def test_tool_call_history_round_trips(server: FakeServer, mode: str) -> None:
    # docs/api.md "Chat request (with tools)" (tool_calls with object arguments) and
    # api.Message's tool_name / tool_call_id for results (api/types.go).
    server.add(answer(CHAT_ANSWER))
    history = [
        HumanMessage("What is the weather today in Paris?"),
        AIMessage(
            "",
            tool_calls=[
                {
                    "name": "get_current_weather",
                    "args": {"format": "celsius", "location": "Paris, FR"},
                    "id": "call_1",
                }
            ],
        ),
        ToolMessage("22 degrees", tool_call_id="call_1"),
    ]
    run_invoke(chat(server), history, mode)
    assert server.bodies[0]["messages"][1:] == [
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "call_1",
                    "function": {
                        "name": "get_current_weather",
                        "arguments": {"format": "celsius", "location": "Paris, FR"},
                    },
                }
            ],
        },
        {
            "role": "tool",
            "content": "22 degrees",
            "tool_name": "get_current_weather",
            "tool_call_id": "call_1",
        },
    ]


def test_roles() -> None:
    out = messages_to_ollama(
        [SystemMessage("s"), HumanMessage("u"), AIMessage("a"), ChatMessage("x", role="critic")]
    )
    assert [m["role"] for m in out] == ["system", "user", "assistant", "critic"]


# ---------------------------------------------------------------- whole answers


def test_invoke_parses_the_docs_answer(server: FakeServer, mode: str) -> None:
    server.add(answer(CHAT_ANSWER))
    result = run_invoke(chat(server, model="llama3.2"), "hi", mode)
    assert isinstance(result, AIMessage)
    assert result.content == "Hello! How are you today?"
    assert result.usage_metadata == {"input_tokens": 26, "output_tokens": 298, "total_tokens": 324}
    meta = result.response_metadata
    assert (meta["finish_reason"], meta["model_name"]) == ("stop", "llama3.2")
    assert meta["total_duration"] == 5191566416
    assert meta["load_duration"] == 2154458
    assert meta["prompt_eval_duration"] == 383809000
    assert meta["eval_duration"] == 4799921000


def test_invoke_thinking_and_length(server: FakeServer, mode: str) -> None:
    # api.Message.thinking (api/types.go); done_reason "length" from llm/server.go.
    server.add(answer(line(final("Par", "length", thinking="France -> Paris")).strip()))
    result = run_invoke(chat(server), "q", mode)
    assert result.content == "Par"
    assert result.additional_kwargs["reasoning_content"] == "France -> Paris"
    assert result.response_metadata["finish_reason"] == "length"


def test_generate_invoke(server: FakeServer, mode: str) -> None:
    # docs/api.md "Request (No streaming)" for /api/generate, `context` and all.
    server.add(
        answer(
            b'{"model":"llama3.2","created_at":"2023-08-04T19:22:45.499127Z","response":'
            b'"The sky is blue because it is the color of the sky.","done":true,'
            b'"context":[1,2,3],"total_duration":5043500667,"load_duration":5025959,'
            b'"prompt_eval_count":26,"prompt_eval_duration":325953000,"eval_count":290,'
            b'"eval_duration":4709213000}'
        )
    )
    text = run_invoke(llm(server, model="llama3.2"), "Why is the sky blue?", mode)
    assert text == "The sky is blue because it is the color of the sky."


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b'{"error":"the model failed to generate a response"}', "failed to generate"),
        (b'{"model":"llama3.2","created_at":"2023-12-12T14:13:43Z","done":true}', "`message`"),
        (b'{"model":"llama3.2","message":"Hello","done":true}', "`message` is not an object"),
        (b'["not", "an", "object"]', "'ollama'"),
    ],
)
def test_whole_answers_that_are_not_ollama_answers(
    server: FakeServer, mode: str, body: bytes, match: str
) -> None:
    server.add(answer(body))
    with pytest.raises(ResponseError, match=match):
        run_invoke(chat(server), "q", mode)


def test_generate_without_response_is_an_error(server: FakeServer, mode: str) -> None:
    server.add(answer(CHAT_ANSWER))  # a chat answer where a generate answer belongs
    with pytest.raises(ResponseError, match="`response`"):
        run_invoke(llm(server), "q", mode)


def test_error_excerpt_is_short() -> None:
    with pytest.raises(ResponseError) as info:
        OllamaFormat().parse_response(["x" * 1000], chat=True)
    assert "'ollama'" in info.value.message
    assert len(info.value.message) < 320


@pytest.mark.parametrize(
    "body",
    [
        # server/routes.go ChatHandler / GenerateHandler today ...
        b'{"error":"model \'llama3\' not found"}',
        # ... and handleScheduleError, the wording of servers before 2025.
        b'{"error":"model \\"llama3\\" not found, try pulling it first"}',
    ],
)
def test_unknown_model_is_not_found(server: FakeServer, mode: str, body: bytes) -> None:
    server.add(answer(body, status=404))
    with pytest.raises(NotFoundError, match="llama3") as info:
        run_invoke(chat(server, model="llama3"), "q", mode)
    assert info.value.status_code == 404
    assert info.value.body == json.loads(body)


def test_bad_request(server: FakeServer, mode: str) -> None:
    server.add(answer(b'{"error":"\\"smollm2\\" does not support thinking"}', status=400))
    with pytest.raises(BadRequestError, match="does not support thinking"):
        run_invoke(chat(server), "q", mode, think=True)
