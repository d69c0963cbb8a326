"""Shared by the Ollama format tests: scripted transcripts and request/answer builders.

Transcripts are Ollama's own: request and answer objects from ``docs/api.md`` (ollama/ollama),
docs.ollama.com/api/streaming and /api/errors, written the way Go's ``json.Marshal`` writes
them (compact, struct field order from ``api/types.go``, one object plus ``"\\n"`` per line).
"""

from __future__ import annotations

import json
from typing import Any

import httpx

import langchain_customllm.formats.ollama  # noqa: F401 (registers wire_format="ollama")
from langchain_customllm import (
    ChatCustomLLM,
    CustomLLM,
)
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
