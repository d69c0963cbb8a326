"""A scripted OpenAI-compatible server on ``httpx.MockTransport`` (no sockets).

Each test queues answers; the fake records every request it saw, so tests assert on what
was sent and on how many attempts a retry policy made. Streams are served in exactly the
byte pieces a test chooses, to exercise splits across reads.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from langchain_customllm import ChatCustomLLM, CustomLLM
from tests._waits import no_waits

KEY = "sk-unit-secret-0123456789"


class PieceStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """Body served in the given byte pieces, sync or async; records whether it was closed."""

    def __init__(self, pieces: list[bytes], raise_after: Exception | None = None) -> None:
        self.pieces = pieces
        self.raise_after = raise_after
        self.closed = False
        self.served = 0

    def __iter__(self) -> Iterator[bytes]:
        for piece in self.pieces:
            self.served += 1
            yield piece
        if self.raise_after is not None:
            raise self.raise_after

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self.pieces:
            self.served += 1
            yield piece
        if self.raise_after is not None:
            raise self.raise_after

    def close(self) -> None:
        self.closed = True

    async def aclose(self) -> None:
        self.closed = True


def sse(*events: dict[str, Any] | str, done: bool = True) -> bytes:
    """Render events as an SSE body (dicts as JSON), optionally ending with [DONE]."""
    out = []
    for event in events:
        data = event if isinstance(event, str) else json.dumps(event)
        out.append(f"data: {data}\n\n")
    if done:
        out.append("data: [DONE]\n\n")
    return "".join(out).encode()


def chat_chunks(
    pieces: list[str],
    *,
    finish: str | None = "stop",
    usage: dict[str, Any] | None = None,
    reasoning: list[str] | None = None,
    model: str = "smollm2",
) -> list[dict[str, Any]]:
    """OpenAI chat.completion.chunk objects for the given content pieces."""
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": model}
    chunks: list[dict[str, Any]] = [
        {**base, "choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]}
    ]
    for text in reasoning or []:
        chunks.append(
            {
                **base,
                "choices": [
                    {"index": 0, "delta": {"reasoning_content": text}, "finish_reason": None}
                ],
            }
        )
    for text in pieces:
        chunks.append(
            {**base, "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}
        )
    if finish is not None:
        chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    if usage is not None:
        chunks.append({**base, "choices": [], "usage": usage})
    return chunks


def completion_chunks(pieces: list[str], *, finish: str | None = "stop") -> list[dict[str, Any]]:
    """OpenAI text_completion stream objects."""
    base = {"id": "cmpl-1", "object": "text_completion", "model": "smollm2"}
    chunks: list[dict[str, Any]] = [
        {**base, "choices": [{"index": 0, "text": t, "finish_reason": None}]} for t in pieces
    ]
    if finish is not None:
        chunks.append({**base, "choices": [{"index": 0, "text": "", "finish_reason": finish}]})
    return chunks


def chat_body(
    content: str | None = "Paris.",
    *,
    finish: str = "stop",
    usage: dict[str, Any] | None = None,
    **message_extra: Any,
) -> dict[str, Any]:
    """A whole chat.completion answer."""
    return {
        "id": "chatcmpl-9",
        "object": "chat.completion",
        "model": "smollm2",
        "system_fingerprint": "fp-1",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, **message_extra},
                "finish_reason": finish,
            }
        ],
        "usage": usage or {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14},
    }


Answer = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


@dataclass
class FakeServer:
    """Queue answers with `add`; every request is recorded in `requests`."""

    answers: deque[Answer] = field(default_factory=deque)
    requests: list[httpx.Request] = field(default_factory=list)
    streams: list[PieceStream] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)
    # Server detection's GET /models is answered here, apart from the queued answers (a
    # model without server_profile sends it before its first call): 404 is "not a known
    # server", so the model stays generic.
    models: Answer = field(default_factory=lambda: httpx.Response(404))
    # llama.cpp's /props, asked after /models names llama.cpp (its chat template).
    props: Answer = field(default_factory=lambda: httpx.Response(404))
    # Ollama's POST /api/show, asked by a model on its native format for the context size
    # (404: no such model, so no context known).
    show: Answer = field(default_factory=lambda: httpx.Response(404))
    detections: list[httpx.Request] = field(default_factory=list)

    def add(self, *answers: Answer) -> FakeServer:
        self.answers.extend(answers)
        return self

    def json(self, body: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.add(httpx.Response(status, json=body, headers=headers))

    def stream(
        self,
        body: bytes | list[bytes],
        *,
        status: int = 200,
        raise_after: Exception | None = None,
    ) -> PieceStream:
        pieces = body if isinstance(body, list) else [body]
        stream = PieceStream(pieces, raise_after)
        self.streams.append(stream)
        self.add(
            httpx.Response(status, headers={"content-type": "text/event-stream"}, stream=stream)
        )
        return stream

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and request.url.path.endswith(("/models", "/props")):
            self.detections.append(request)
            found = self.models if request.url.path.endswith("/models") else self.props
            return self._answer(found, request)
        if request.method == "POST" and request.url.path == "/api/show":
            self.detections.append(request)
            return self._answer(self.show, request)
        self.requests.append(request)
        if not self.answers:
            raise AssertionError(f"unexpected request #{len(self.requests)}: {request.url}")
        return self._answer(self.answers.popleft(), request)

    @staticmethod
    def _answer(answer: Answer, request: httpx.Request) -> httpx.Response:
        if isinstance(answer, Exception):
            raise answer
        if callable(answer) and not isinstance(answer, httpx.Response):
            return answer(request)
        return answer

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests]

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)

    def chat(self, **kwargs: Any) -> ChatCustomLLM:
        return self._no_sleep(ChatCustomLLM(**_model_kwargs(self, kwargs)))

    def llm(self, **kwargs: Any) -> CustomLLM:
        return self._no_sleep(CustomLLM(**_model_kwargs(self, kwargs)))

    def _no_sleep(self, model: Any) -> Any:
        # Retries record the delay they would have slept instead of sleeping.
        return no_waits(model, self.sleeps)


def _model_kwargs(server: FakeServer, kwargs: dict[str, Any]) -> dict[str, Any]:
    transport = server.transport()
    params: dict[str, Any] = {
        "model": "smollm2",
        "base_url": "http://fake.test/v1",
        "api_key": KEY,
        "http_client": httpx.Client(transport=transport),
        "http_async_client": httpx.AsyncClient(transport=transport),
    }
    params.update(kwargs)
    return params
