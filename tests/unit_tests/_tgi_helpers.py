"""Shared by the TGI format tests: transcripts from TGI's source and docs, and builders.

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

from langchain_customllm import (
    ChatCustomLLM,
)
from langchain_customllm.formats.base import GenerationParams
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
