"""The ASGI application: `create_app` puts the endpoints behind one small guard.

The guard is plain ASGI (no per-request objects of its own) and does, for every request:

- names it: the client's ``x-request-id`` if it is a short token, else a new one; the id is
  sent to the backend (`request_headers`) and back to the client;
- checks the client key (``Authorization: Bearer <key>`` or ``x-api-key``) in constant
  time, except for ``/health``;
- caps the body: a ``content-length`` over the cap is refused at once, and a body without
  one (chunked) is counted as it is read;
- when the request ends, counts it in the metrics and logs a failure (the id, the model,
  the status and the message; never a header).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from types import FrameType
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from langchain_customllm._request import request_headers
from langchain_customllm.config import load_models
from langchain_customllm.serve.errors import GatewayError, gateway_error
from langchain_customllm.serve.options import GatewayOptions
from langchain_customllm.serve.routes import Exchange, Gateway
from langchain_customllm.serve.streaming import ClientGoneError

__all__ = ["create_app"]

logger = logging.getLogger("langchain_customllm.serve")

_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:\-]{1,128}")
_OPEN_PATHS = frozenset({"/health"})
_CLIENT_GONE = GatewayError(
    499, "The client closed the request before its answer was ready", type="client_closed"
)
# OpenAI's own wording and type: clients that read the message (LiteLLM's SDK maps an
# "invalid_request_error" without it to a 400) see a refused key as one.
_UNAUTHORIZED = GatewayError(
    401,
    "Incorrect API key provided, or none: send one of this gateway's client keys as "
    "'Authorization: Bearer <key>'",
    type="authentication_error",
    code="invalid_api_key",
    headers={"www-authenticate": "Bearer"},
)


async def _send_error(send: Send, error: GatewayError, request_id: str) -> None:
    headers = [(b"content-type", b"application/json"), (b"x-request-id", request_id.encode())]
    headers += [(k.encode(), v.encode()) for k, v in error.headers.items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": error.json()})


def _presented_key(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    for name, value in headers:
        if name == b"authorization":
            scheme, _, key = value.partition(b" ")
            if scheme.lower() == b"bearer":
                return key.strip()
        elif name == b"x-api-key":
            return value.strip()
    return None


class _Guard:
    """Names, authenticates, caps and counts every request (see the module docstring)."""

    def __init__(self, app: ASGIApp, gateway: Gateway) -> None:
        self.app = app
        self.gateway = gateway
        self.keys = gateway.options.client_keys
        self.max_body = gateway.options.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        request_id = ""
        length = None
        for name, value in headers:
            if name == b"x-request-id" and _REQUEST_ID.fullmatch(value):
                request_id = value.decode()
            elif name == b"content-length":
                length = value
        request_id = request_id or uuid.uuid4().hex
        path: str = scope["path"]
        exchange = scope["customllm"] = Exchange(request_id)
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            error = None
            if path not in _OPEN_PATHS and not self.keys.accepts(_presented_key(headers)):
                error = _UNAUTHORIZED
            elif length is not None and (not length.isdigit() or int(length) > self.max_body):
                error = self._too_large()
            if error is not None:
                exchange.error = error
                status = error.status
                await _send_error(send, error, request_id)
                return
            with request_headers({"x-request-id": request_id}):
                await self.app(scope, self._capped(receive), send_with_id)
        finally:
            self._count(path, exchange, status, time.perf_counter() - started)

    def _too_large(self) -> GatewayError:
        return GatewayError(
            413,
            f"The request body is over this gateway's limit of {self.max_body} bytes",
            code="request_too_large",
        )

    def _capped(self, receive: Receive) -> Receive:
        """``receive``, refusing a body (chunked, without a length) once it is too large."""
        seen = 0

        async def capped() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise self._too_large()
            return message

        return capped

    def _count(self, path: str, exchange: Exchange, status: int, seconds: float) -> None:
        error = exchange.error
        if error is not None:
            logger.warning(
                "request %s model=%r %s -> %s %s: %s",
                exchange.request_id,
                exchange.model,
                path,
                error.status,
                error.type,
                error.message,
            )
        if not path.startswith("/v1/") or path == "/v1/models":
            return
        tally = exchange.tally
        self.gateway.metrics.observe(
            model=exchange.model,
            route=path if path in _ROUTES else "other",
            status=status,
            seconds=seconds,
            error_type=error.type if error is not None else None,
            prompt_tokens=tally.prompt_tokens,
            completion_tokens=tally.completion_tokens,
            cost=tally.cost,
        )


_ROUTES = frozenset({"/v1/chat/completions", "/v1/completions", "/v1/embeddings"})


async def _gateway_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, ClientGoneError):  # no one to answer: counted as nginx does, 499
        error = _CLIENT_GONE
    elif isinstance(exc, HTTPException):  # Starlette's own: unknown path (404), method (405)
        error = GatewayError(exc.status_code, f"{exc.detail}: {request.method} {request.url.path}")
    else:
        error = gateway_error(exc)
    exchange: Exchange | None = request.scope.get("customllm")
    if exchange is not None:
        exchange.error = error
    return Response(error.json(), error.status, error.headers, media_type="application/json")


@contextlib.contextmanager
def _drain_on_signals(gateway: Gateway) -> Iterator[None]:
    """While serving, SIGTERM and SIGINT also start the gateway's `Gateway.drain`.

    The server's own handlers (uvicorn's graceful shutdown) still run: ours are chained in
    front of them, and the previous ones are put back on exit. Signal handlers belong to
    the main thread; elsewhere (tests, embedded servers) nothing is installed.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    grace = gateway.options.grace_seconds
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def handler(signum: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(gateway.drain, grace)
        chained = previous[signal.Signals(signum)]
        if callable(chained):
            chained(signum, frame)

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def create_app(
    models: Mapping[str, Any] | str | os.PathLike[str],
    options: GatewayOptions | None = None,
) -> Starlette:
    """The gateway as an ASGI application (serve it with uvicorn, or test it in-process).

    Args:
        models: The models by the name clients call them, as `load_models` returns them,
            or the path of a ``models.yaml`` to load. Chat, text, embeddings and image
            models are served; anything else is left out with a warning.
        options: Keys, caps and CORS; the defaults bind no key and cap bodies at 8 MiB and
            answers at 4096 tokens.

    Returns:
        The Starlette application.

    Raises:
        ConfigurationError: For a configuration file that cannot be loaded.
    """
    if not isinstance(models, Mapping):
        models = load_models(models)
    options = options or GatewayOptions()
    gateway = Gateway(models, options)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        files = gateway.worker_files
        writer = asyncio.ensure_future(files.run()) if files is not None else None
        try:
            with _drain_on_signals(gateway):
                yield
        finally:
            if writer is not None:
                writer.cancel()  # it writes the last counts as it stops
                await asyncio.gather(writer, return_exceptions=True)
            await gateway.aclose()

    routes = [
        Route("/v1/chat/completions", gateway.chat, methods=["POST"]),
        Route("/v1/completions", gateway.completions, methods=["POST"]),
        Route("/v1/embeddings", gateway.embeddings, methods=["POST"]),
        Route("/v1/images/generations", gateway.images, methods=["POST"]),
        Route("/v1/models", gateway.models, methods=["GET"]),
        Route("/health", gateway.health, methods=["GET"]),
        Route("/metrics", gateway.prometheus, methods=["GET"]),
    ]
    middleware = []
    if options.cors_origins:
        # Outside the guard: a browser's preflight (OPTIONS) carries no key.
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(options.cors_origins),
                allow_methods=["GET", "POST"],
                allow_headers=["authorization", "content-type", "x-api-key", "x-request-id"],
                expose_headers=["x-request-id", "x-customllm-cost"],
            )
        )
    middleware.append(Middleware(_Guard, gateway=gateway))
    # Exception: a bug; answered as OpenAI's JSON too, then logged with its traceback.
    handlers: dict[Any, Any] = {
        GatewayError: _gateway_error,
        HTTPException: _gateway_error,
        ClientGoneError: _gateway_error,
        Exception: _gateway_error,
    }
    app = Starlette(
        routes=routes, middleware=middleware, exception_handlers=handlers, lifespan=lifespan
    )
    app.state.gateway = gateway
    return app
