"""The native Ollama wire format over a scripted server: every case on both twins.

Transcripts are Ollama's own: request and answer objects from ``docs/api.md`` (ollama/ollama),
docs.ollama.com/api/streaming and /api/errors, written the way Go's ``json.Marshal`` writes
them (compact, struct field order from ``api/types.go``, one object plus ``"\\n"`` per line).
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

import langchain_customllm.formats.ollama  # noqa: F401 (registers wire_format="ollama")
from langchain_customllm import (
    BadRequestError,
    ChatCustomLLM,
    ConfigurationError,
    CustomLLM,
    NotFoundError,
    ResponseError,
    StreamError,
    get_format,
)
from langchain_customllm._framing import SSEEvent
from langchain_customllm.formats.ollama import OllamaFormat, messages_to_ollama
from tests._calls import merge, run_invoke, run_stream
from tests.unit_tests.fakes import FakeServer, PieceStream

ROOT = "http://fake.test"
PNG = "iVBORw0KGgoAAAANSUhEUgAAAG0AAABmCAYAAADBPx+VAAAACXBIWXMAAAsTAAALEwEAmpwYAAAAAXNSR0IArs4c6QAAAARnQU1BAACxjwv8YQUAAA3VSURBVHgB7Z27r0zdG8fX743i1bi1ikMoFMQloXRpKFFIqI7LH4BEQ"  # noqa: E501 (head of the docs/api.md example image)

# docs/api.md "Chat request (No streaming)", with the `done_reason` that
# "Chat request (Structured outputs)" shows in the same position.
CHAT_ANSWER = (
    b'{"model":"llama3.2","created_at":"2023-12-12T14:13:43.416799Z","message":{"role":'
    b'"assistant","content":"Hello! How are you today?"},"done_reason":"stop","done":true,'
    b'"total_duration":5191566416,"load_duration":2154458,"prompt_eval_count":26,'
    b'"prompt_eval_duration":383809000,"eval_count":298,"eval_duration":4799921000}'
)
# docs/api.md "Chat Request (Streaming)": content lines, then the final object. The final
# line is in today's shape (api.ChatResponse: "message" is not omitempty, done_reason
# follows done), as server/routes.go ChatHandler writes it.
CHAT_STREAM = [
    b'{"model":"llama3.2","created_at":"2023-08-04T08:52:19.385406455-07:00",'
    b'"message":{"role":"assistant","content":"The"},"done":false}\n',
    b'{"model":"llama3.2","created_at":"2023-08-04T08:52:19.397406455-07:00",'
    b'"message":{"role":"assistant","content":" sky"},"done":false}\n',
    b'{"model":"llama3.2","created_at":"2023-08-04T08:52:19.409406455-07:00",'
    b'"message":{"role":"assistant","content":" is blue."},"done":false}\n',
    b'{"model":"llama3.2","created_at":"2023-08-04T19:22:45.499127Z","message":{"role":'
    b'"assistant","content":""},"done":true,"done_reason":"stop","total_duration":4883583458,'
    b'"load_duration":1334875,"prompt_eval_count":26,"prompt_eval_duration":342546000,'
    b'"eval_count":282,"eval_duration":4535599000}\n',
]
# docs.ollama.com/api/streaming, verbatim (its last line is hand-edited, spaces included).
GENERATE_STREAM = b"""\
{"model":"gemma3","created_at":"2025-10-26T17:15:24.097767Z","response":"That","done":false}
{"model":"gemma3","created_at":"2025-10-26T17:15:24.109172Z","response":"'","done":false}
{"model":"gemma3","created_at":"2025-10-26T17:15:24.121485Z","response":"s","done":false}
{"model":"gemma3","created_at":"2025-10-26T17:15:24.132802Z","response":" a","done":false}
{"model":"gemma3","created_at":"2025-10-26T17:15:24.143931Z","response":" fantastic","done":false}
{"model":"gemma3","created_at":"2025-10-26T17:15:24.155176Z","response":" question","done":false}
{"model":"gemma3","created_at":"2025-10-26T17:15:24.166576Z","response":"!","done":true, "done_reason": "stop"}
"""  # noqa: E501 (verbatim)
# docs.ollama.com/api/errors, "Errors that occur while streaming", verbatim.
GENERATE_ERROR_STREAM = b"""\
{"model":"gemma3","created_at":"2025-10-26T17:21:21.196249Z","response":" Yes","done":false}
{"model":"gemma3","created_at":"2025-10-26T17:21:21.207235Z","response":".","done":false}
{"model":"gemma3","created_at":"2025-10-26T17:21:21.219166Z","response":"I","done":false}
{"model":"gemma3","created_at":"2025-10-26T17:21:21.231094Z","response":"can","done":false}
{"error":"an error was encountered while running the model"}
"""


def ndjson(server: FakeServer, body: bytes | list[bytes]) -> PieceStream:
    """Serve an NDJSON stream with Ollama's content type (streamResponse in routes.go)."""
    stream = PieceStream(body if isinstance(body, list) else [body])
    server.add(httpx.Response(200, headers={"content-type": "application/x-ndjson"}, stream=stream))
    return stream


def chat(server: FakeServer, **kwargs: Any) -> ChatCustomLLM:
    return server.chat(base_url=ROOT, wire_format="ollama", **kwargs)


def llm(server: FakeServer, **kwargs: Any) -> CustomLLM:
    return server.llm(base_url=ROOT, wire_format="ollama", **kwargs)


def answer(body: bytes, status: int = 200) -> httpx.Response:
    return httpx.Response(
        status, content=body, headers={"content-type": "application/json; charset=utf-8"}
    )


def line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def chat_line(content: str = "", **extra: Any) -> bytes:
    message = {"role": "assistant", "content": content}
    thinking = extra.pop("thinking", None)
    if thinking is not None:
        message["thinking"] = thinking
    obj = {"model": "qwen3", "created_at": "2025-06-01T10:00:00.1Z", "message": message}
    return line({**obj, "done": False, **extra})


def final(content: str = "", reason: str = "stop", **message: str) -> dict[str, Any]:
    """A final api.ChatResponse object: done, done_reason, then the metrics."""
    return {
        "model": "qwen3",
        "created_at": "2025-06-01T10:00:00.9Z",
        "message": {"role": "assistant", "content": content, **message},
        "done": True,
        "done_reason": reason,
        "total_duration": 9,
        "load_duration": 1,
        "prompt_eval_count": 11,
        "prompt_eval_duration": 3,
        "eval_count": 4,
        "eval_duration": 5,
    }


def done_line(reason: str = "stop") -> bytes:
    return line(final(reason=reason))


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


# ---------------------------------------------------------------- streams


def test_stream_docs_transcript(server: FakeServer, mode: str) -> None:
    ndjson(server, CHAT_STREAM)
    chunks = run_stream(chat(server, model="llama3.2"), "why is the sky blue?", mode)
    assert [c.content for c in chunks[:-1]] == ["The", " sky", " is blue."]
    assert [c for c in chunks if c.usage_metadata] == [chunks[-1]]  # usage exactly once
    full = merge(chunks)
    assert full.content == "The sky is blue."
    assert full.usage_metadata == {"input_tokens": 26, "output_tokens": 282, "total_tokens": 308}
    assert full.response_metadata["finish_reason"] == "stop"
    assert full.response_metadata["model_name"] == "llama3.2"
    assert full.response_metadata["eval_duration"] == 4535599000


def test_stream_old_final_object_without_message(server: FakeServer, mode: str) -> None:
    # docs/api.md's final streamed chat object as 2023 servers wrote it: no message, no
    # done_reason. Still the end of the answer, with its counts.
    final = (
        b'{"model":"llama3.2","created_at":"2023-08-04T19:22:45.499127Z","done":true,'
        b'"total_duration":4883583458,"load_duration":1334875,"prompt_eval_count":26,'
        b'"prompt_eval_duration":342546000,"eval_count":282,"eval_duration":4535599000}\n'
    )
    ndjson(server, [*CHAT_STREAM[:3], final])
    full = merge(run_stream(chat(server), "q", mode))
    assert full.content == "The sky is blue."
    assert full.usage_metadata is not None
    assert full.usage_metadata["output_tokens"] == 282


def test_generate_stream_docs_transcript(server: FakeServer, mode: str) -> None:
    ndjson(server, GENERATE_STREAM)
    pieces = run_stream(llm(server), "q", mode)
    assert "".join(pieces) == "That's a fantastic question!"


def _stream_result(body: bytes, pieces: list[bytes], mode: str) -> AIMessageChunk:
    server = FakeServer()
    ndjson(server, pieces)
    full = merge(run_stream(chat(server), "q", mode))
    assert b"".join(pieces) == body
    return full


def test_stream_survives_one_byte_reads(mode: str) -> None:
    body = b"".join(
        [chat_line("Caf\u00e9 "), chat_line("\u00fcber "), chat_line("\U0001f600"), done_line()]
    )
    full = _stream_result(body, [body[i : i + 1] for i in range(len(body))], mode)
    assert full.content == "Caf\u00e9 \u00fcber \U0001f600"
    assert full.usage_metadata == {"input_tokens": 11, "output_tokens": 4, "total_tokens": 15}


SPLIT_BODY = b"".join(CHAT_STREAM)


@settings(max_examples=40, deadline=None)
@given(points=st.lists(st.integers(0, len(SPLIT_BODY)), max_size=12))
def test_stream_survives_any_split(points: list[int]) -> None:
    cuts = sorted({0, len(SPLIT_BODY), *points})
    pieces = [SPLIT_BODY[a:b] for a, b in itertools.pairwise(cuts)]
    for mode in ("sync", "async"):
        full = _stream_result(SPLIT_BODY, pieces, mode)
        assert full.content == "The sky is blue."
        assert full.usage_metadata is not None


def test_stream_thinking(server: FakeServer, mode: str) -> None:
    # Thinking then content, as api.Message carries them (api/types.go).
    ndjson(
        server,
        [
            chat_line(thinking="Fr"),
            chat_line(thinking="ance"),
            chat_line("Paris"),
            done_line(),
        ],
    )
    full = merge(run_stream(chat(server), "q", mode))
    assert full.additional_kwargs["reasoning_content"] == "France"
    assert full.content == "Paris"


def test_generate_stream_thinking(server: FakeServer, mode: str) -> None:
    # GenerateResponse.thinking: lines as a gpt-oss /api/generate stream writes them
    # (attogram/ollama-bash-lib demos/ollama_generate_stream_json.md, compacted).
    ndjson(
        server,
        b'{"model":"gpt-oss:20b","created_at":"2025-08-08T21:34:10.54868145Z","response":"",'
        b'"done":false}\n'
        b'{"model":"gpt-oss:20b","created_at":"2025-08-08T21:34:10.548699167Z","response":"",'
        b'"thinking":"User","done":false}\n'
        b'{"model":"gpt-oss:20b","created_at":"2025-08-08T21:34:10.6Z","response":"Fluffy",'
        b'"done":false}\n'
        b'{"model":"gpt-oss:20b","created_at":"2025-08-08T21:34:10.7Z","response":"",'
        b'"done":true,"done_reason":"stop","prompt_eval_count":9,"eval_count":3}\n',
    )
    chunks = run_stream(llm(server), "q", mode)
    assert "".join(chunks) == "Fluffy"


def test_stream_done_reason_length(server: FakeServer, mode: str) -> None:
    ndjson(server, [chat_line("Once upon"), done_line("length")])
    full = merge(run_stream(chat(server), "q", mode))
    assert full.response_metadata["finish_reason"] == "length"


def test_stop_split_across_lines_same_for_invoke_and_stream(server: FakeServer, mode: str) -> None:
    server.add(answer(line(final("Hello END world")).strip()))
    pieces = ["Hel", "lo E", "ND wor", "ld"]
    ndjson(server, [*(chat_line(p) for p in pieces), done_line()])
    model = chat(server)
    invoked = run_invoke(model, "q", mode, stop=["END"])
    streamed = merge(run_stream(model, "q", mode, stop=["END"]))
    assert invoked.content == streamed.content == "Hello "
    assert invoked.response_metadata["finish_reason"] == "stop"
    assert streamed.response_metadata["finish_reason"] == "stop"
    assert invoked.usage_metadata == streamed.usage_metadata
    assert server.bodies[0]["options"]["stop"] == ["END"]


def test_error_line_mid_stream(server: FakeServer, mode: str) -> None:
    ndjson(server, GENERATE_ERROR_STREAM)
    with pytest.raises(StreamError, match="an error was encountered while running") as info:
        run_stream(llm(server), "q", mode)
    assert info.value.partial_text == " Yes.Ican"
    assert info.value.body == {"error": "an error was encountered while running the model"}


def test_chat_error_line_mid_stream(server: FakeServer, mode: str) -> None:
    ndjson(
        server,
        [*CHAT_STREAM[:2], b'{"error":"an error was encountered while running the model"}\n'],
    )
    with pytest.raises(StreamError) as info:
        run_stream(chat(server), "q", mode)
    assert info.value.partial_text == "The sky"


def test_non_json_line(server: FakeServer, mode: str) -> None:
    ndjson(server, [CHAT_STREAM[0], b"<html>502 Bad Gateway</html>\n"])
    with pytest.raises(ResponseError, match=r"'ollama'.*not JSON.*502 Bad Gateway"):
        run_stream(chat(server), "q", mode)


def test_stream_cut_before_done(server: FakeServer, mode: str) -> None:
    ndjson(server, CHAT_STREAM[:2])
    with pytest.raises(StreamError, match="ended before") as info:
        run_stream(chat(server), "q", mode)
    assert info.value.partial_text == "The sky"


def test_streaming_flag_uses_the_stream_for_invoke(server: FakeServer, mode: str) -> None:
    ndjson(server, CHAT_STREAM)
    result = run_invoke(chat(server, streaming=True), "q", mode)
    assert result.content == "The sky is blue."
    assert server.bodies[0]["stream"] is True


# ---------------------------------------------------------------- parse_event, directly


def test_parse_event_edges() -> None:
    fmt = OllamaFormat()
    assert fmt.parse_event(SSEEvent(data="  "), chat=True) is None
    with pytest.raises(ResponseError, match=r"'ollama'.*JSON object"):
        fmt.parse_event(SSEEvent(data="[1, 2]"), chat=True)
    with pytest.raises(ResponseError, match="`message`"):
        fmt.parse_event(SSEEvent(data='{"model":"m","done":false}'), chat=True)
    # docs/api.md "Load a model" (chat): an empty answer whose done_reason is "load".
    load = fmt.parse_response(
        json.loads(
            '{"model":"llama3.2","created_at":"2024-09-12T21:17:29.110811Z","message":'
            '{"role":"assistant","content":""},"done_reason":"load","done":true}'
        ),
        chat=True,
    )
    assert (load.text, load.finish_reason, load.done, load.usage) == ("", "load", True, None)


def test_only_eval_count_present() -> None:
    # Metrics fields are omitempty: a fully cached prompt has no prompt_eval_count at all.
    parsed = OllamaFormat().parse_response(
        {"model": "m", "response": "x", "done": True, "eval_count": 3}, chat=False
    )
    assert parsed.usage is not None
    assert (parsed.usage.input_tokens, parsed.usage.output_tokens) == (0, 3)
