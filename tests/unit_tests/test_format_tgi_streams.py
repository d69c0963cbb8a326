"""The TGI wire format (`wire_format="tgi"`): streams, stop sequences, errors, text model."""

from __future__ import annotations

import pytest

from langchain_customllm import (
    APIStatusError,
    BadRequestError,
    RateLimitError,
    ResponseError,
    StreamError,
)
from langchain_customllm._framing import SSEEvent
from langchain_customllm.formats.tgi import TGIFormat
from tests._calls import merge, run_invoke, run_stream
from tests.unit_tests._tgi_helpers import (
    DOCS_STREAM,
    GENERATION,
    LLAMA_STOP,
    LLAMA_WHOLE,
    OPEA_STREAM,
    OVERLOADED,
    STOP_STREAM,
    URL,
    VALIDATION,
    chat,
    stream_of,
    stream_response,
    tgi_sse,
    token,
    wire,
)
from tests.unit_tests.fakes import FakeServer

# ------------------------------------------------------------------ streams


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 10_000])
def test_stream_split_at_any_byte_boundary(server: FakeServer, mode: str, size: int) -> None:
    server.stream([OPEA_STREAM[i : i + size] for i in range(0, len(OPEA_STREAM), size)])
    chunks = run_stream(chat(server), "What is Deep Learning?", mode)
    assert [c.content for c in chunks] == [" Deep", " Learning", " is", " a", ""]
    # Usage and finish_reason once, on the last chunk: nothing doubles when merged.
    assert [c.usage_metadata for c in chunks if c.usage_metadata] == [
        {"input_tokens": 6, "output_tokens": 5, "total_tokens": 11}
    ]
    assert chunks[-1].chunk_position == "last"
    full = merge(chunks)
    assert full.content == " Deep Learning is a"  # the special </s> is not answer text
    assert full.response_metadata["finish_reason"] == "stop"  # eos_token


def test_docs_stream_without_input_length(server: FakeServer, mode: str) -> None:
    server.stream(tgi_sse(*DOCS_STREAM))
    full = merge(run_stream(chat(server), "How do you make cheese?", mode))
    assert full.content == "\nTo make cheese, you need to start with milk."
    assert full.response_metadata["finish_reason"] == "length"
    # StreamDetails of that version had no input_length: the usage is an estimate, marked so.
    assert full.usage_metadata is not None
    assert full.response_metadata["usage_source"] == "estimated"


def test_final_event_without_details_still_ends_the_stream(server: FakeServer, mode: str) -> None:
    events = stream_of(["Fuji", "."], eos=None)
    events[-1]["details"] = None  # parameters.details false: generated_text alone marks the end
    server.stream(tgi_sse(*events))
    model = chat(server, extra_body={"details": False}, missing_usage="none")
    full = merge(run_stream(model, "q", mode))
    assert full.content == "Fuji."
    assert full.response_metadata["finish_reason"] is None
    assert full.usage_metadata is None


def test_special_tokens_are_skipped(server: FakeServer, mode: str) -> None:
    events = [
        stream_response(1, token("<|im_start|>", 1, special=True)),
        stream_response(2, token("Hi")),
        stream_response(3, token("!")),
        stream_response(
            4,
            token("<|im_end|>", 2, special=True),
            "Hi!",
            {"finish_reason": "eos_token", "generated_tokens": 4, "seed": 42, "input_length": 9},
        ),
    ]
    server.stream(tgi_sse(*events))
    chunks = run_stream(chat(server), "q", mode)
    assert [c.content for c in chunks] == ["Hi", "!", ""]
    assert chunks[-1].response_metadata["seed"] == 42


def test_events_after_the_final_one_are_not_read(server: FakeServer, mode: str) -> None:
    body = OPEA_STREAM + tgi_sse(stream_response(6, token(" ghost")))
    stream = server.stream(body)
    full = merge(run_stream(chat(server), "q", mode))
    assert full.content == " Deep Learning is a"
    assert stream.closed


def test_stream_equals_invoke(server: FakeServer, mode: str) -> None:
    whole = {
        "generated_text": "Paris.",
        "details": {
            "finish_reason": "eos_token",
            "generated_tokens": 3,
            "seed": None,
            "prefill": [{"id": i, "text": "t", "logprob": None} for i in range(7)],
            "tokens": [token("Paris"), token("."), token("</s>", 2, special=True)],
        },
    }
    server.json(whole)
    server.stream(tgi_sse(*stream_of(["Paris", "."], input_length=7)))
    llm = chat(server)
    a = run_invoke(llm, "q", mode)
    b = merge(run_stream(llm, "q", mode))
    assert a.content == b.content == "Paris."
    assert a.usage_metadata == b.usage_metadata
    assert a.response_metadata["finish_reason"] == b.response_metadata["finish_reason"] == "stop"


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ("not json", "not JSON"),
        ("[1]", "unexpected stream event"),
        ('{"index":1,"generated_text":null}', "without a `token.text`"),
        ('{"index":1,"token":{"id":1,"special":false}}', "without a `token.text`"),
    ],
)
def test_parse_event_rejects_garbage(data: str, match: str) -> None:
    with pytest.raises(ResponseError, match=match) as info:
        TGIFormat().parse_event(SSEEvent(data=data), chat=True)
    assert "tgi" in info.value.message


def test_parse_event_ignores_empty_data() -> None:
    assert TGIFormat().parse_event(SSEEvent(data=""), chat=True) is None


def test_parse_event_reads_lorax_prompt_tokens() -> None:
    event = stream_response(
        1,
        token("x"),
        "x",
        {"finish_reason": "length", "prompt_tokens": 4, "generated_tokens": 1, "seed": None},
    )
    parsed = TGIFormat().parse_event(SSEEvent(data=wire(event)), chat=True)
    assert parsed is not None
    assert parsed.done
    assert parsed.usage is not None
    assert (parsed.usage.input_tokens, parsed.usage.total_tokens) == (4, 5)


def test_stream_cut_before_the_final_event_is_incomplete(server: FakeServer, mode: str) -> None:
    server.stream(tgi_sse(*stream_of(["Once", " upon"])[:-1]))
    with pytest.raises(StreamError, match="ended before") as info:
        run_stream(chat(server), "q", mode)
    assert info.value.partial_text == "Once upon"


# ------------------------------------------------------------------ stop sequences


def test_stop_sequence_returned_by_tgi_is_cut_for_invoke_and_stream(
    server: FakeServer, mode: str
) -> None:
    server.json(LLAMA_STOP)
    server.stream(tgi_sse(*STOP_STREAM))
    llm = chat(server, stop=["test"])
    whole = run_invoke(llm, "Test request", mode)
    chunks = run_stream(llm, "Test request", mode)
    streamed = merge(chunks)
    assert whole.content == streamed.content == " failed: Error in "
    assert not any("test" in c.content for c in chunks)
    assert whole.response_metadata["finish_reason"] == "stop"
    assert streamed.response_metadata["finish_reason"] == "stop"
    assert whole.usage_metadata == {"input_tokens": 2, "output_tokens": 5, "total_tokens": 7}
    assert streamed.usage_metadata == whole.usage_metadata
    for body in server.bodies:
        assert body["parameters"]["stop"] == ["test"]


def test_include_stop_sequence_keeps_it(server: FakeServer, mode: str) -> None:
    server.json(LLAMA_STOP)
    server.stream(tgi_sse(*STOP_STREAM))
    llm = chat(server, stop=["test"], include_stop_sequence=True)
    assert run_invoke(llm, "q", mode).content == " failed: Error in test"
    assert merge(run_stream(llm, "q", mode)).content == " failed: Error in test"


# ------------------------------------------------------------------ errors


def test_error_event_mid_stream_keeps_partial_text(server: FakeServer, mode: str) -> None:
    events = stream_of(["Once", " upon", " a"])[:2]
    server.stream(tgi_sse(*events, GENERATION))
    with pytest.raises(StreamError, match="CUDA out of memory") as info:
        run_stream(chat(server), "q", mode)
    assert "generation" in info.value.message
    assert info.value.partial_text == "Once upon"
    assert info.value.body == GENERATION
    assert len(server.requests) == 1  # never retried once output began


def test_validation_error_in_a_stream_arrives_as_an_event(server: FakeServer, mode: str) -> None:
    # /generate_stream answers 200 and sends the validation error as its only event.
    server.stream(tgi_sse(VALIDATION))
    with pytest.raises(StreamError, match="strictly positive") as info:
        run_stream(chat(server), "q", mode)
    assert info.value.partial_text == ""


def test_422_is_a_bad_request(server: FakeServer, mode: str) -> None:
    server.json(VALIDATION, status=422)
    with pytest.raises(BadRequestError, match="strictly positive") as info:
        run_invoke(chat(server), "q", mode)
    assert info.value.status_code == 422
    assert len(server.requests) == 1


def test_error_message_reads_error_response() -> None:
    fmt = TGIFormat()
    assert fmt.error_message(OVERLOADED) == "Model is overloaded (error_type overloaded)"
    assert fmt.error_message("Failed to deserialize the JSON body") is None
    assert fmt.error_message({"error": {"message": "x"}}) is None


def test_424_generation_error_is_not_retried(server: FakeServer, mode: str) -> None:
    server.json(GENERATION, status=424)
    with pytest.raises(APIStatusError, match="CUDA out of memory") as info:
        run_invoke(chat(server), "q", mode)
    assert info.value.status_code == 424
    assert len(server.requests) == 1


def test_429_overloaded_is_retried(server: FakeServer, mode: str) -> None:
    for _ in range(3):
        server.json(OVERLOADED, status=429)
    with pytest.raises(RateLimitError, match=r"Model is overloaded \(error_type overloaded\)"):
        run_invoke(chat(server, max_retries=2), "q", mode)
    assert len(server.requests) == 3
    assert len(server.sleeps) == 2


def test_429_then_success(server: FakeServer, mode: str) -> None:
    server.json(OVERLOADED, status=429)
    server.json(LLAMA_WHOLE)
    assert run_invoke(chat(server), "q", mode).content == " for /api/v1/projects/1"
    assert len(server.requests) == 2


def test_500_incomplete_generation_is_retried(server: FakeServer, mode: str) -> None:
    server.json({"error": "Incomplete generation", "error_type": "incomplete_generation"}, 500)
    server.stream(OPEA_STREAM)
    assert merge(run_stream(chat(server), "q", mode)).content == " Deep Learning is a"
    assert len(server.requests) == 2


# ------------------------------------------------------------------ the text model


def test_custom_llm_sends_the_prompt_verbatim(server: FakeServer, mode: str) -> None:
    server.json(LLAMA_WHOLE)
    server.stream(OPEA_STREAM)
    llm = server.llm(base_url=URL, wire_format="tgi", max_tokens=10)
    assert run_invoke(llm, "Test request", mode) == " for /api/v1/projects/1"
    assert "".join(run_stream(llm, "What is Deep Learning?", mode)) == " Deep Learning is a"
    assert server.bodies[0]["inputs"] == "Test request"  # no chat template for text
    assert server.requests[0].url == f"{URL}/generate"
    assert server.requests[1].url == f"{URL}/generate_stream"


def test_custom_llm_stop_and_stream_error(server: FakeServer, mode: str) -> None:
    server.json(LLAMA_STOP)
    server.stream(tgi_sse(*stream_of(["Once"])[:1], GENERATION))
    llm = server.llm(base_url=URL, wire_format="tgi")
    assert run_invoke(llm, "q", mode, stop=["test"]) == " failed: Error in "
    with pytest.raises(StreamError, match="CUDA") as info:
        run_stream(llm, "q", mode)
    assert info.value.partial_text == "Once"
