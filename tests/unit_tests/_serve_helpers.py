"""The gateway in-process, on `httpx.ASGITransport` (no sockets), over `FakeServer` models."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx

from langchain_customllm.serve import GatewayOptions, create_app

USER = [{"role": "user", "content": "What is the capital of France?"}]
CLIENT_KEY = "gw-client-key-0123456789"


@contextlib.asynccontextmanager
async def gateway(models: Mapping[str, Any], **options: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the gateway serving ``models`` (options: `GatewayOptions` fields)."""
    app = create_app(models, GatewayOptions(**options))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
        yield client


def events(response: httpx.Response) -> list[Any]:
    """The data of each server-sent event: parsed JSON, or the text (``[DONE]``)."""
    out: list[Any] = []
    for block in response.text.split("\n\n"):
        if not block.strip():
            continue
        assert block.startswith("data: "), block
        data = block[len("data: ") :]
        out.append(data if data == "[DONE]" else json.loads(data))
    return out


def deltas(response: httpx.Response) -> list[dict[str, Any]]:
    """The choice deltas of a streamed chat answer, in order."""
    return [
        choice["delta"]
        for event in events(response)
        if isinstance(event, dict)
        for choice in event.get("choices", [])
    ]
