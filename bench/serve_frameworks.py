"""Starlette or FastAPI under the gateway? The per-request cost of each, measured in-process.

The same minimal JSON endpoint (read the body, parse it, answer JSON) on each framework,
called directly as an ASGI app (no sockets, no server: only the framework's own work), as
the gateway uses it: Starlette with a plain ``Route``; FastAPI with a pydantic body model,
as FastAPI code is usually written, and with a raw ``Request`` (FastAPI's routing and
dependency layer without validation). Prints microseconds per request (median of 5 runs).

FastAPI is not a dependency of this project; run with a Python that has both, e.g. the
LiteLLM venv the matrix installs: ``~/.cache/langchain-customllm/litellm-server/bin/python
bench/serve_frameworks.py``.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from typing import Any

import fastapi
import pydantic
import starlette
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

BODY = json.dumps(
    {"model": "m", "messages": [{"role": "user", "content": "What is the capital of France?"}]}
).encode()
REQUESTS = 5000


async def _starlette_endpoint(request: Request) -> Response:
    data = json.loads(await request.body())
    return Response(json.dumps({"model": data["model"]}), media_type="application/json")


def starlette_app() -> Any:
    """The endpoint on Starlette."""
    return Starlette(routes=[Route("/v1/chat/completions", _starlette_endpoint, methods=["POST"])])


class Message(pydantic.BaseModel):
    """One chat message."""

    role: str
    content: str


class Chat(pydantic.BaseModel):
    """The request body."""

    model: str
    messages: list[Message]


def fastapi_app() -> Any:
    """The endpoint on FastAPI, with a pydantic body."""
    app = fastapi.FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(body: Chat) -> dict[str, str]:
        return {"model": body.model}

    return app


def fastapi_raw_app() -> Any:
    """The endpoint on FastAPI, reading the raw request."""
    app = fastapi.FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: fastapi.Request) -> Response:
        data = json.loads(await request.body())
        return Response(json.dumps({"model": data["model"]}), media_type="application/json")

    return app


async def _one(app: Any) -> None:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/chat/completions",
        "raw_path": b"/v1/chat/completions",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(BODY))],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 2),
    }
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": BODY, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    status = 0

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    assert status == 200, status


async def _time(app: Any) -> float:
    for _ in range(200):  # warm up
        await _one(app)
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(REQUESTS):
            await _one(app)
        runs.append((time.perf_counter() - start) / REQUESTS * 1e6)
    return statistics.median(runs)


async def main() -> None:
    """Time each app and print the table."""
    print(f"starlette {starlette.__version__}, fastapi {fastapi.__version__}")
    for name, app in (
        ("Starlette Route", starlette_app()),
        ("FastAPI, raw Request", fastapi_raw_app()),
        ("FastAPI, pydantic body", fastapi_app()),
    ):
        print(f"{name:24s} {await _time(app):6.1f} us/request")


if __name__ == "__main__":
    asyncio.run(main())
