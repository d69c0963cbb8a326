"""The network under our *own* pools, replaced by a recorder (no sockets).

`FakeServer` hands the model user-provided httpx clients; these tests need the clients the
model builds itself (they are what copies, pickles and reassignment must rebuild), so the
recorder patches httpx's two transports: every request the model's pools send lands here,
with its URL, headers, body and timeouts, and gets a canned OpenAI-style answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from langchain_customllm._h1 import H1Transport
from tests._calls import PATHS
from tests._calls import call as call_path
from tests.unit_tests.fakes import chat_body, chat_chunks, completion_chunks, sse

METHODS = PATHS


@dataclass
class Sent:
    """One request as it left the model."""

    url: str
    headers: dict[str, str]
    body: dict[str, Any]
    timeout: dict[str, float]

    def comparable(self) -> tuple[str, dict[str, str], dict[str, Any], dict[str, float]]:
        return self.url, self.headers, self.body, self.timeout


_COMPLETION = {
    "id": "cmpl-1",
    "object": "text_completion",
    "model": "smollm2",
    "choices": [{"index": 0, "text": "ok", "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14},
}


def _answer(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    chat = request.url.path.endswith("/chat/completions")
    if body.get("stream"):
        usage = {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}
        events = chat_chunks(["ok"], usage=usage) if chat else completion_chunks(["ok"])
        return httpx.Response(
            200, content=sse(*events), headers={"content-type": "text/event-stream"}
        )
    return httpx.Response(200, json=chat_body("ok") if chat else _COMPLETION)


_CALL = {
    "index": 0,
    "id": "call_1",
    "type": "function",
    "function": {"name": "f", "arguments": "{}"},
}


def tool_call_answer(request: httpx.Request) -> httpx.Response:
    """An answer that calls the tool ``f`` (whole or streamed)."""
    if json.loads(request.content).get("stream"):
        delta = {"choices": [{"index": 0, "delta": {"tool_calls": [_CALL]}, "finish_reason": None}]}
        end = {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}
        return httpx.Response(
            200, content=sse(delta, end), headers={"content-type": "text/event-stream"}
        )
    body = chat_body(None, finish="tool_calls", tool_calls=[_CALL])
    return httpx.Response(200, json=body)


@dataclass
class Wire:
    """What was sent, and how to answer (tests may swap ``answer``)."""

    sent: list[Sent] = field(default_factory=list)
    answer: Callable[[httpx.Request], httpx.Response] = _answer
    # Server detection's GET /models, kept apart from `sent` (404: a generic server).
    detections: list[Sent] = field(default_factory=list)
    models: Callable[[httpx.Request], httpx.Response] = lambda _: httpx.Response(404)

    def record(self, request: httpx.Request) -> httpx.Response:
        request.read()
        if request.method == "GET":
            headers = {k.lower(): v for k, v in request.headers.items()}
            timeout = dict(request.extensions.get("timeout", {}))
            self.detections.append(Sent(str(request.url), headers, {}, timeout))
            return self.models(request)
        self.sent.append(
            Sent(
                str(request.url),
                {k.lower(): v for k, v in request.headers.items()},
                json.loads(request.content),
                dict(request.extensions.get("timeout", {})),
            )
        )
        return self.answer(request)


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> Wire:
    """Every request of the model's own pools is recorded and answered here."""
    recorder = Wire()

    def handle(self: Any, request: httpx.Request) -> httpx.Response:
        return recorder.record(request)

    async def ahandle(self: Any, request: httpx.Request) -> httpx.Response:
        return recorder.record(request)

    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", handle)
    monkeypatch.setattr(httpx.AsyncHTTPTransport, "handle_async_request", ahandle)
    monkeypatch.setattr(H1Transport, "handle_async_request", ahandle)
    return recorder


def call(model: Any, method: str, value: Any = "q", **kwargs: Any) -> Any:
    """`tests._calls.call` with a default input: one of the four paths."""
    return call_path(model, method, value, **kwargs)
