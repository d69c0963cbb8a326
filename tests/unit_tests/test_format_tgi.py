"""The TGI wire format (`wire_format="tgi"`) against transcripts from TGI's source and docs.

Transcript sources (huggingface/text-generation-inference unless noted):

- DOCS_STREAM: docs/source/conceptual/streaming.md, the ``details=True`` stream of "How do you
  make cheese?" (the tokens the page prints, ids/logprobs where it shows them).
- OPEA_STREAM: raw ``curl -N /generate_stream`` output quoted in opea-project/GenAIInfra
  manifests/DocSum/README.md (TGI 1.4), byte for byte; its last event is built to
  ``lib.rs`` ``StreamResponse``/``StreamDetails`` (newer TGI adds ``input_length``).
- LLAMA_WHOLE: integration-tests/models/__snapshots__/test_flash_llama/test_flash_llama.json
  (TGI 2.x, ``decoder_input_details=True``: prefill has one entry per prompt token).
- LLAMA_WHOLE_V3: .../test_flash_llama_simple.json and issue #2973 (TGI 3.x: ``prefill: []``).
- LLAMA_STOP: .../test_flash_llama_all_params.json (``stop_sequences=["test"]``: TGI's
  generated_text *ends with* the stop text, finish_reason ``stop_sequence``).
- Errors: router/src/server.rs (``ErrorResponse``, 422/424/429, ``impl From<InferError> for
  Event``) and router/src/validation.rs / infer/mod.rs for the messages.

The wire is written as axum writes it: ``data:`` + compact JSON + ``\\n\\n``, no space.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from langchain_customllm import (
    APIStatusError,
    BadRequestError,
    ChatCustomLLM,
    RateLimitError,
    ResponseError,
    StreamError,
)
from langchain_customllm._exceptions import ConfigurationError
from langchain_customllm._framing import SSEEvent
from langchain_customllm.formats.base import GenerationParams, get_format
from langchain_customllm.formats.prompt import ChatTemplate
from langchain_customllm.formats.tgi import TGIFormat, tgi_parameters
from tests._calls import merge, run_invoke, run_stream
from tests.unit_tests.fakes import FakeServer

URL = "http://fake.test"
CHATML = (
    "<|im_start|>system\nBe brief.<|im_end|>\n"
    "<|im_start|>user\nCapital of France?<|im_end|>\n"
    "<|im_start|>assistant\n"
)


def wire(obj: dict[str, Any]) -> str:
    """serde_json's compact form (no spaces, UTF-8 as is)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def tgi_sse(*events: dict[str, Any] | str) -> bytes:
    """An axum SSE body: ``data:{json}\\n\\n`` per event (strings are sent verbatim)."""
    return "".join(f"data:{e if isinstance(e, str) else wire(e)}\n\n" for e in events).encode()


def token(
    text: str, token_id: int = 0, logprob: float | None = -0.5, special: bool = False
) -> dict[str, Any]:
    return {"id": token_id, "text": text, "logprob": logprob, "special": special}


def stream_response(
    index: int,
    tok: dict[str, Any],
    generated_text: str | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {"index": index, "token": tok, "generated_text": generated_text, "details": details}


def stream_of(
    texts: list[str],
    *,
    finish: str = "eos_token",
    input_length: int | None = 7,
    eos: str | None = "</s>",
) -> list[dict[str, Any]]:
    """A newer TGI's token stream; the last event carries generated_text and details."""
    tokens = [token(t, i + 10) for i, t in enumerate(texts)]
    if eos is not None:
        tokens.append(token(eos, 2, special=True))
    events = [stream_response(i, t) for i, t in enumerate(tokens[:-1], start=1)]
    details: dict[str, Any] = {
        "finish_reason": finish,
        "generated_tokens": len(tokens),
        "seed": None,
    }
    if input_length is not None:
        details["input_length"] = input_length
    events.append(stream_response(len(tokens), tokens[-1], "".join(texts), details))
    return events


def chat(server: FakeServer, **kwargs: Any) -> ChatCustomLLM:
    return server.chat(base_url=URL, wire_format="tgi", **kwargs)


def params(**kwargs: Any) -> GenerationParams:
    return GenerationParams(model="smollm2", **kwargs)


# ------------------------------------------------------------------ transcripts

# streaming.md: 12 tokens, max_new_tokens=12, StreamDetails before input_length existed.
DOCS_TEXTS = ["\n", "To", " make", " cheese", ",", " you", " need", " to", " start", " with"]
DOCS_STREAM = [
    stream_response(1, token("\n", 193, -0.007358551)),
    stream_response(2, token("To", 2044, -1.1357422)),
    stream_response(3, token(" make", 717, -0.009841919)),
    *[stream_response(i, token(t)) for i, t in enumerate(DOCS_TEXTS[3:], start=4)],
    stream_response(11, token(" milk")),
    stream_response(
        12,
        token(".", 25, -1.3408203),
        "\nTo make cheese, you need to start with milk.",
        {"finish_reason": "length", "generated_tokens": 12, "seed": None},
    ),
]

OPEA_STREAM = (
    b'data:{"index":1,"token":{"id":89554,"text":" Deep","logprob":-0.9719473,"special":false},'
    b'"generated_text":null,"details":null}\n\n'
    b'data:{"index":2,"token":{"id":89950,"text":" Learning","logprob":-0.39028463,'
    b'"special":false},"generated_text":null,"details":null}\n\n'
    b'data:{"index":3,"token":{"id":632,"text":" is","logprob":-0.56862223,"special":false},'
    b'"generated_text":null,"details":null}\n\n'
    b'data:{"index":4,"token":{"id":267,"text":" a","logprob":-0.7765873,"special":false},'
    b'"generated_text":null,"details":null}\n\n'
    # axum's KeepAlive::default() comment, sent when no token came for 15 s.
    b":\n\n"
    b'data:{"index":5,"token":{"id":2,"text":"</s>","logprob":-0.1,"special":true},'
    b'"generated_text":" Deep Learning is a","details":{"finish_reason":"eos_token",'
    b'"generated_tokens":5,"seed":null,"input_length":6}}\n\n'
)

LLAMA_TOKENS = [" for", " /", "api", "/", "v", "1", "/", "projects", "/", "1"]
LLAMA_WHOLE = {
    "generated_text": " for /api/v1/projects/1",
    "details": {
        "finish_reason": "length",
        "generated_tokens": 10,
        "seed": None,
        "prefill": [
            {"id": 1, "text": "<s>", "logprob": None},
            {"id": 4321, "text": "Test", "logprob": -8.6875},
            {"id": 2009, "text": "request", "logprob": -11.546875},
        ],
        "tokens": [token(t) for t in LLAMA_TOKENS],
    },
}
LLAMA_WHOLE_V3 = {
    "generated_text": " for /api/v1/projects/1",
    "details": {
        "finish_reason": "length",
        "generated_tokens": 10,
        "seed": 9305067545921572115,
        "prefill": [],
        "tokens": [token(t) for t in LLAMA_TOKENS],
    },
}
STOP_TOKENS = [" failed", ":", " Error", " in", " test"]
LLAMA_STOP = {
    "generated_text": " failed: Error in test",
    "details": {
        "finish_reason": "stop_sequence",
        "generated_tokens": 5,
        "seed": 0,
        "prefill": [
            {"id": 1, "text": "<s>", "logprob": None},
            {"id": 4321, "text": "Test", "logprob": -8.6875},
        ],
        "tokens": [token(t) for t in STOP_TOKENS],
    },
}
STOP_STREAM = stream_of(STOP_TOKENS, finish="stop_sequence", input_length=2, eos=None)

VALIDATION = {
    "error": "Input validation error: `temperature` must be strictly positive",
    "error_type": "validation",
}
OVERLOADED = {"error": "Model is overloaded", "error_type": "overloaded"}
GENERATION = {
    "error": "Request failed during generation: Server error: CUDA out of memory",
    "error_type": "generation",
}


# ------------------------------------------------------------------ requests (pure)


def test_registered_by_name() -> None:
    assert isinstance(get_format("tgi"), TGIFormat)
    assert ChatCustomLLM(model="m", base_url=URL, wire_format="tgi")._runtime().wire.name == "tgi"


def test_chat_request_renders_chatml_into_inputs() -> None:
    request = TGIFormat().chat_request(
        [SystemMessage("Be brief."), HumanMessage("Capital of France?")],
        params(temperature=0.2, max_tokens=7, top_p=0.9, seed=3, stop=("END",)),
        stream=False,
    )
    assert request.path == "/generate"
    assert request.method == "POST"
    assert request.body == {
        "inputs": CHATML,
        "parameters": {
            "max_new_tokens": 7,
            "do_sample": True,
            "temperature": 0.2,
            "top_p": 0.9,
            "seed": 3,
            "stop": ["END"],
            "details": True,
            "return_full_text": False,
            "decoder_input_details": True,
        },
    }


def test_stream_request_goes_to_generate_stream_without_prefill_details() -> None:
    request = TGIFormat().completion_request("Hello", params(), stream=True)
    assert request.path == "/generate_stream"
    # validation.rs PrefillDetailsStream: decoder_input_details on a stream is a 422.
    assert request.body == {
        "inputs": "Hello",
        "parameters": {"do_sample": False, "details": True, "return_full_text": False},
    }


@pytest.mark.parametrize(
    ("temperature", "top_p", "expected"),
    [
        # Greedy: temperature 0 is a 422 in TGI, and top_p < 1 would re-enable sampling.
        (0.0, None, {"do_sample": False}),
        (0.0, 0.9, {"do_sample": False}),
        # None: TGI's own default is greedy, unless a top_p makes it sample.
        (None, None, {"do_sample": False}),
        (None, 0.9, {"do_sample": True, "top_p": 0.9}),
        (0.7, None, {"do_sample": True, "temperature": 0.7}),
        # top_p 1.0 means "no nucleus filtering" but TGI rejects it: sent by omission.
        (0.7, 1.0, {"do_sample": True, "temperature": 0.7}),
        # Invalid values reach the server, which answers with a clear 422.
        (-1.0, None, {"do_sample": True, "temperature": -1.0}),
    ],
)
def test_sampling_mapping(
    temperature: float | None, top_p: float | None, expected: dict[str, Any]
) -> None:
    sent = tgi_parameters(params(temperature=temperature, top_p=top_p), stream=True)
    sampling = {k: v for k, v in sent.items() if k in ("do_sample", "temperature", "top_p")}
    assert sampling == expected


def test_extra_body_goes_into_parameters_and_wins() -> None:
    extra = {"repetition_penalty": 1.1, "top_k": 50, "watermark": True, "details": False}
    request = TGIFormat().completion_request("x", params(extra_body=extra), stream=False)
    assert set(request.body) == {"inputs", "parameters"}  # GenerateRequest has nothing else
    parameters = request.body["parameters"]
    assert parameters["repetition_penalty"] == 1.1
    assert parameters["top_k"] == 50
    assert parameters["watermark"] is True
    assert parameters["details"] is False


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("plain", "User: hi\nAssistant:"),
        ({"default": "[{role}] {content}\n", "generation_prompt": "[assistant] "}, None),
        (ChatTemplate(default="<{role}>{content}", generation_prompt="<assistant>"), None),
    ],
)
def test_chat_template_choices(template: Any, expected: str | None) -> None:
    fmt = TGIFormat(chat_template=template)
    inputs = fmt.chat_request([HumanMessage("hi")], params(), stream=False).body["inputs"]
    if expected is not None:
        assert inputs == expected
    assert "hi" in inputs


def test_options_from_a_mapping_spec() -> None:
    # wire_format={"kind": "tgi", ...} (e.g. from a YAML model file) passes the options on.
    fmt = get_format({"kind": "tgi", "chat_template": "plain"})
    assert isinstance(fmt, TGIFormat)
    assert fmt.chat_template.generation_prompt == "Assistant:"
    with pytest.raises(ConfigurationError, match="bad options"):
        get_format({"kind": "tgi", "template": "plain"})


def test_unknown_chat_template_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="Unknown chat template"):
        TGIFormat(chat_template="vicuna-9000")


# ------------------------------------------------------------------ requests over HTTP


def test_http_requests(server: FakeServer, mode: str) -> None:
    server.json(LLAMA_WHOLE)
    server.stream(OPEA_STREAM)
    llm = chat(server, temperature=0, max_tokens=20)
    run_invoke(llm, "What is Deep Learning?", mode)
    run_stream(llm, "What is Deep Learning?", mode)
    whole, streamed = server.requests
    assert whole.url == f"{URL}/generate"
    assert streamed.url == f"{URL}/generate_stream"
    assert streamed.headers["accept"].startswith("text/event-stream")
    prompt = "<|im_start|>user\nWhat is Deep Learning?<|im_end|>\n<|im_start|>assistant\n"
    assert server.bodies[0] == {
        "inputs": prompt,
        "parameters": {
            "max_new_tokens": 20,
            "do_sample": False,
            "details": True,
            "return_full_text": False,
            "decoder_input_details": True,
        },
    }
    assert server.bodies[1]["inputs"] == prompt
    assert "decoder_input_details" not in server.bodies[1]["parameters"]


def test_per_call_kwargs_become_parameters(server: FakeServer, mode: str) -> None:
    server.json(LLAMA_WHOLE)
    run_invoke(chat(server), "q", mode, top_k=10, extra_body={"typical_p": 0.9})
    parameters = server.bodies[0]["parameters"]
    assert parameters["top_k"] == 10
    assert parameters["typical_p"] == 0.9
    assert "top_k" not in server.bodies[0]


# ------------------------------------------------------------------ whole answers


def test_invoke_reads_text_finish_and_prefill_usage(server: FakeServer, mode: str) -> None:
    server.json(LLAMA_WHOLE)
    result = run_invoke(chat(server), "Test request", mode)
    assert isinstance(result, AIMessage)
    assert result.content == " for /api/v1/projects/1"
    assert result.response_metadata["finish_reason"] == "length"
    # One prefill entry per prompt token (BOS included), as TGI's own /v1 routes count.
    assert result.usage_metadata == {"input_tokens": 3, "output_tokens": 10, "total_tokens": 13}


def test_invoke_with_empty_prefill_reports_no_usage(server: FakeServer, mode: str) -> None:
    # TGI 3.x returns prefill: [] (issue #2973): the input count is unknown, not zero.
    server.json(LLAMA_WHOLE_V3)
    result = run_invoke(chat(server), "Test request", mode)
    assert result.content == " for /api/v1/projects/1"
    assert result.usage_metadata is None
    assert result.response_metadata["finish_reason"] == "length"
    assert result.response_metadata["seed"] == 9305067545921572115


def test_parse_response_shapes() -> None:
    fmt = TGIFormat()
    # compat_generate (POST /) wraps the answer in a one-element list.
    parsed = fmt.parse_response([LLAMA_WHOLE], chat=True)
    assert parsed.text == " for /api/v1/projects/1"
    assert parsed.usage is not None
    assert parsed.usage.input_tokens == 3
    # details left out (details: false): text only, nothing invented.
    bare = fmt.parse_response({"generated_text": "hi"}, chat=False)
    assert (bare.text, bare.finish_reason, bare.usage) == ("hi", None, None)
    # LoRAX (a TGI fork) reports Details.prompt_tokens directly.
    lorax = {
        "generated_text": "x",
        "details": {"finish_reason": "eos_token", "prompt_tokens": 9, "generated_tokens": 2},
    }
    parsed = fmt.parse_response(lorax, chat=True)
    assert parsed.finish_reason == "stop"
    assert parsed.usage is not None
    assert (parsed.usage.input_tokens, parsed.usage.output_tokens) == (9, 2)


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("x" * 1000, "tgi: expected a JSON object"),
        ([1, 2], "tgi: expected a JSON object"),
        ([], "tgi: expected a JSON object"),
        ({"outputs": "hi"}, "no `generated_text`"),
        ({"generated_text": None, "details": None}, "no `generated_text`"),
        (OVERLOADED, "Model is overloaded"),
    ],
)
def test_parse_response_rejects_what_is_not_an_answer(body: Any, match: str) -> None:
    with pytest.raises(ResponseError, match=match) as info:
        TGIFormat().parse_response(body, chat=True)
    assert len(info.value.message) < 400  # a short excerpt, never the whole body


def test_non_tgi_200_is_a_typed_error(server: FakeServer, mode: str) -> None:
    server.json({"choices": [{"message": {"content": "hi"}}]})  # an OpenAI answer
    with pytest.raises(ResponseError, match="tgi: the answer has no `generated_text`"):
        run_invoke(chat(server), "q", mode)


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
    # StreamDetails of that version had no input_length: no usage rather than a guess.
    assert full.usage_metadata is None


def test_final_event_without_details_still_ends_the_stream(server: FakeServer, mode: str) -> None:
    events = stream_of(["Fuji", "."], eos=None)
    events[-1]["details"] = None  # parameters.details false: generated_text alone marks the end
    server.stream(tgi_sse(*events))
    full = merge(run_stream(chat(server, extra_body={"details": False}), "q", mode))
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
