"""A MockTransport embeddings server for the unit tests: answers are computed from the inputs.

Each text's vector is ``[len(text), position-free marker, 1.0]``, so a test can tell from the
vectors alone whether the order survived batching, halving and concurrency.
"""

from __future__ import annotations

import asyncio
import base64
import json
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from langchain_customllm import CustomLLMEmbeddings
from tests._waits import no_waits

KEY = "sk-embed-secret-4242"
URL = "http://fake.test/v1"


def vector_of(text: str) -> list[float]:
    """The vector the fake server gives ``text`` (exact in float32)."""
    return [float(len(text)), float(sum(map(ord, text)) % 97), 1.0]


def as_base64(vector: list[float]) -> str:
    """A vector as OpenAI's API sends it for ``encoding_format: base64``."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def openai_answer(texts: list[str], *, shuffle: bool = True, b64: bool = False) -> dict[str, Any]:
    """An OpenAI ``/embeddings`` answer, items in reverse order (``index`` says where)."""
    data = [
        {
            "object": "embedding",
            "index": i,
            "embedding": as_base64(vector_of(t)) if b64 else vector_of(t),
        }
        for i, t in enumerate(texts)
    ]
    return {
        "object": "list",
        "data": data[::-1] if shuffle else data,
        "model": "served-model",
        "usage": {"prompt_tokens": 2 * len(texts), "total_tokens": 2 * len(texts)},
    }


Handler = Callable[[dict[str, Any]], httpx.Response]


def _default(body: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, json=openai_answer(body["input"]))


@dataclass
class EmbedServer:
    """Records every request; ``handler`` answers from the decoded body."""

    handler: Handler = _default
    delay: float = 0.0
    bodies: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)
    in_flight: int = 0
    peak: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _enter(self, request: httpx.Request) -> dict[str, Any]:
        body = json.loads(request.content)
        with self._lock:
            self.bodies.append(body)
            self.paths.append(request.url.path)
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        return body

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def sync(self, request: httpx.Request) -> httpx.Response:
        body = self._enter(request)
        try:
            if self.delay:
                time.sleep(self.delay)
            return self.handler(body)
        finally:
            self._leave()

    async def async_(self, request: httpx.Request) -> httpx.Response:
        body = self._enter(request)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            return self.handler(body)
        finally:
            self._leave()

    def model(self, **kwargs: Any) -> CustomLLMEmbeddings:
        params: dict[str, Any] = {
            "model": "embedder",
            "base_url": URL,
            "api_key": KEY,
            "http_client": httpx.Client(transport=httpx.MockTransport(self.sync)),
            "http_async_client": httpx.AsyncClient(transport=httpx.MockTransport(self.async_)),
        }
        params.update(kwargs)
        return no_waits(CustomLLMEmbeddings(**params), self.sleeps)


def documents(model: CustomLLMEmbeddings, mode: str, texts: list[str]) -> list[list[float]]:
    """``embed_documents`` on the sync or the async twin."""
    if mode == "sync":
        return model.embed_documents(texts)
    return asyncio.run(model.aembed_documents(texts))


def query(model: CustomLLMEmbeddings, mode: str, text: str) -> list[float]:
    """``embed_query`` on the sync or the async twin."""
    if mode == "sync":
        return model.embed_query(text)
    return asyncio.run(model.aembed_query(text))
