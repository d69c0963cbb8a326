"""The native Ollama wire format on both twins: streams and parse_event."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.messages import (
    AIMessageChunk,
)

import langchain_customllm.formats.ollama  # noqa: F401 (registers wire_format="ollama")
from langchain_customllm import (
    ResponseError,
    StreamError,
)
from langchain_customllm._framing import SSEEvent
from langchain_customllm.formats.ollama import OllamaFormat
from tests._calls import merge, run_invoke, run_stream
from tests.unit_tests._ollama_helpers import (
    CHAT_STREAM,
    GENERATE_ERROR_STREAM,
    GENERATE_STREAM,
    answer,
    chat,
    chat_line,
    done_line,
    final,
    line,
    llm,
    ndjson,
)
from tests.unit_tests.fakes import FakeServer

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
