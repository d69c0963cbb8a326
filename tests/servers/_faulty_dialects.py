"""Wire dialects for `tests.servers.faulty`: per-format answer bodies and stream events.

Re-exported by `tests.servers.faulty`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tests.servers._faulty_wire import Request
from tests.servers.torchserve import TORCHSERVE_FORMAT

# --------------------------------------------------------------------------- dialects


@dataclass(frozen=True)
class Dialect:
    """What one wire format's answers look like on the wire, for building scripts.

    Attributes:
        name: An id for test names.
        family: ``openai``, ``ollama`` or ``custom``.
        chat: Chat endpoint (`ChatCustomLLM`) or text completion (`CustomLLM`).
        path: The request path the client must use (``/v1/...`` for OpenAI).
        wire_format: The ``wire_format`` setting for the model.
        framing: ``sse`` or ``ndjson``.

    """

    name: str
    family: str
    chat: bool
    path: str
    wire_format: Any
    framing: str

    @property
    def content_type(self) -> str:
        return "text/event-stream" if self.framing == "sse" else "application/x-ndjson"

    def base_url(self, root: str) -> str:
        return root + "/v1" if self.family == "openai" else root

    # whole answers ----------------------------------------------------------

    def whole(self, text: str) -> dict[str, Any]:
        """A complete non-streamed answer with ``text``."""
        if self.family == "openai":
            if self.chat:
                return {
                    "id": "chatcmpl-1",
                    "object": "chat.completion",
                    "model": "m",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
                }
            return {
                "id": "cmpl-1",
                "object": "text_completion",
                "model": "m",
                "choices": [{"index": 0, "text": text, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
            }
        if self.family == "ollama":
            base = {"model": "m", "created_at": "2024-01-01T00:00:00Z", "done": True}
            base["done_reason"] = "stop"
            base["prompt_eval_count"] = 5
            base["eval_count"] = 7
            if self.chat:
                return {**base, "message": {"role": "assistant", "content": text}}
            return {**base, "response": text}
        return {
            "outputs": [{"text": text, "finish_reason": "stop"}],
            "usage": {"in": 5, "out": 7},
        }

    def error_body(self, message: str, code: int = 500) -> dict[str, Any]:
        """This format's error body."""
        if self.family == "ollama":
            return {"error": message}
        if self.family == "custom":
            return {"error": {"message": message, "code": code}}
        return {"error": {"message": message, "type": "server_error", "code": code}}

    # stream events -----------------------------------------------------------

    def _frame(self, obj: Any) -> bytes:
        data = obj if isinstance(obj, bytes) else json.dumps(obj, ensure_ascii=False).encode()
        return b"data: " + data + b"\n\n" if self.framing == "sse" else data + b"\n"

    def piece_event(self, text: str | bytes) -> bytes:
        """One stream event carrying ``text`` (bytes: raw, possibly invalid, UTF-8)."""
        marker = "\x00TEXT\x00"
        obj: Any
        if self.family == "openai":
            base = {"id": "chatcmpl-1" if self.chat else "cmpl-1", "model": "m"}
            if self.chat:
                obj = {
                    **base,
                    "object": "chat.completion.chunk",
                    "choices": [{"index": 0, "delta": {"content": marker}, "finish_reason": None}],
                }
            else:
                obj = {
                    **base,
                    "object": "text_completion",
                    "choices": [{"index": 0, "text": marker, "finish_reason": None}],
                }
        elif self.family == "ollama":
            obj = {"model": "m", "created_at": "2024-01-01T00:00:00Z", "done": False}
            if self.chat:
                obj["message"] = {"role": "assistant", "content": marker}
            else:
                obj["response"] = marker
        else:
            obj = {"token": {"text": marker}, "done": False}
        rendered = json.dumps(obj, ensure_ascii=False).encode()
        raw = text if isinstance(text, bytes) else json.dumps(text, ensure_ascii=False)[1:-1]
        raw_bytes = raw if isinstance(raw, bytes) else raw.encode()
        return self._frame(rendered.replace(b"\\u0000TEXT\\u0000", raw_bytes))

    def piece_events(self, pieces: Iterable[str]) -> list[bytes]:
        return [self.piece_event(p) for p in pieces]

    def finish_event(self) -> bytes:
        """The event that says why generation ended (OpenAI: finish_reason)."""
        if self.family == "openai":
            choice: dict[str, Any] = {"index": 0, "finish_reason": "stop"}
            if self.chat:
                choice["delta"] = {}
            else:
                choice["text"] = ""
            return self._frame({"id": "x", "model": "m", "choices": [choice]})
        return self.done_event()

    def done_event(self) -> bytes:
        """The end-of-stream marker (OpenAI: ``[DONE]``; NDJSON: the ``done`` line)."""
        if self.family == "openai":
            return b"data: [DONE]\n\n"
        if self.family == "ollama":
            obj: dict[str, Any] = {"model": "m", "done": True, "done_reason": "stop"}
            obj["prompt_eval_count"] = 5
            obj["eval_count"] = 7
            if self.chat:
                obj["message"] = {"role": "assistant", "content": ""}
            else:
                obj["response"] = ""
            return self._frame(obj)
        return self._frame(
            {"done": True, "outputs": [{"finish_reason": "stop"}], "usage": {"in": 5, "out": 7}}
        )

    def end_events(self) -> list[bytes]:
        """Everything that closes a complete stream."""
        if self.family == "openai":
            return [self.finish_event(), self.done_event()]
        return [self.done_event()]

    def full_stream(self, pieces: Iterable[str]) -> list[bytes]:
        return self.piece_events(pieces) + self.end_events()

    def error_event(self, message: str, code: int = 500) -> bytes:
        """An error reported inside a stream whose status was already 200."""
        return self._frame(self.error_body(message, code))

    def keepalive(self) -> bytes:
        """Something a server sends to keep an idle stream open (SSE comment, blank line)."""
        return b": ping\n\n" if self.framing == "sse" else b"\n"

    # requests ---------------------------------------------------------------

    def prompt_of(self, request: Request) -> str:
        """The user text of a request (the last message, or the prompt)."""
        body = request.json()
        if self.family == "custom":
            return str(body["inputs"])
        if self.chat:
            return str(body["messages"][-1]["content"])
        return str(body["prompt"])

    def is_stream(self, request: Request) -> bool:
        return bool(request.json().get("stream"))


OPENAI_CHAT = Dialect("openai-chat", "openai", True, "/v1/chat/completions", "openai", "sse")
OPENAI_COMPLETION = Dialect("openai-text", "openai", False, "/v1/completions", "openai", "sse")
OLLAMA_CHAT = Dialect("ollama-chat", "ollama", True, "/api/chat", "ollama", "ndjson")
OLLAMA_GENERATE = Dialect("ollama-text", "ollama", False, "/api/generate", "ollama", "ndjson")
CUSTOM_CHAT = Dialect(
    "custom-chat", "custom", True, "/predictions/my-model", TORCHSERVE_FORMAT, "ndjson"
)
CUSTOM_TEXT = Dialect(
    "custom-text", "custom", False, "/predictions/my-model", TORCHSERVE_FORMAT, "ndjson"
)
CUSTOM = CUSTOM_CHAT

DIALECTS: dict[tuple[str, bool], Dialect] = {
    (d.family, d.chat): d
    for d in (
        OPENAI_CHAT,
        OPENAI_COMPLETION,
        OLLAMA_CHAT,
        OLLAMA_GENERATE,
        CUSTOM_CHAT,
        CUSTOM_TEXT,
    )
}
