"""A MockTransport images server for the unit tests: answers are computed from the request.

Image ``i`` of a prompt is the emulator's own PNG (`tests.servers.images.png`): solid
``colour_of(prompt, i)``, 4x4 pixels, so a test can tell from the bytes alone which image
it got.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from langchain_customllm import CustomImageGenerator
from tests._waits import no_waits
from tests.servers.images import colour_of, png

KEY = "sk-image-secret-8080"
URL = "http://fake.test/v1"


def b64_of(prompt: str, index: int = 0) -> str:
    """The base64 the fake server sends for image ``index`` of ``prompt``."""
    return base64.b64encode(png(4, 4, colour_of(prompt, index))).decode()


def openai_answer(body: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """An OpenAI ``/images/generations`` answer for a request body."""
    prompt, n = body["prompt"], body.get("n", 1)
    if body.get("response_format") == "url":
        data = [{"url": f"https://img.test/{i}.png"} for i in range(n)]
    else:
        data = [{"b64_json": b64_of(prompt, i)} for i in range(n)]
    return {"created": 1700000000, "data": data, **extra}


Handler = Callable[[dict[str, Any]], httpx.Response]


def _default(body: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, json=openai_answer(body))


@dataclass
class ImageServer:
    """Records every request; ``handler`` answers from the decoded body."""

    handler: Handler = _default
    bodies: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    headers: list[httpx.Headers] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)

    def _answer(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.bodies.append(body)
        self.paths.append(request.url.path)
        self.headers.append(request.headers)
        return self.handler(body)

    async def _aanswer(self, request: httpx.Request) -> httpx.Response:
        return self._answer(request)

    def model(self, **kwargs: Any) -> CustomImageGenerator:
        params: dict[str, Any] = {
            "model": "painter",
            "base_url": URL,
            "api_key": KEY,
            "http_client": httpx.Client(transport=httpx.MockTransport(self._answer)),
            "http_async_client": httpx.AsyncClient(transport=httpx.MockTransport(self._aanswer)),
        }
        params.update(kwargs)
        return no_waits(CustomImageGenerator(**params), self.sleeps)


def generate(model: CustomImageGenerator, mode: str, prompt: Any, **kwargs: Any) -> Any:
    """``invoke`` on the sync or the async twin."""
    if mode == "sync":
        return model.invoke(prompt, **kwargs)
    return asyncio.run(model.ainvoke(prompt, **kwargs))
