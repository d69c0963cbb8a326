"""A slow OpenAI-compatible streaming server that records how each stream ended.

``POST /v1/chat/completions`` with ``"stream": true`` sends ``chunks`` content events,
``delay`` seconds apart, then a finish event and ``[DONE]``; without it, it waits as long
(watching the connection) and answers ``ok``. If the client hangs up first, the next write
fails (or the connection reads closed), and the server records it:
`SlowStreamServer.outcomes` has one ``{"ended": "complete" | "closed", "sent": n, "at":
time.monotonic()}`` per request. The gateway's lifecycle tests use it to prove that a client
leaving closes the backend request.
"""

from __future__ import annotations

import json
import select
import socket
import time
from typing import Any

from tests.servers.base import Handler, LoopbackServer

_BASE = {"id": "chatcmpl-slow", "object": "chat.completion.chunk", "model": "slow"}


def _event(delta: dict[str, Any], finish: str | None = None) -> bytes:
    payload = {**_BASE, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


class SlowStreamHandler(Handler):
    """The slow streams of the module docstring."""

    server: Any

    def do_GET(self) -> None:
        self.send_json(404, {"error": {"message": "not here"}})

    def do_POST(self) -> None:
        body = self.read_json()
        settings: SlowStreamServer = self.server.settings
        if not body.get("stream"):
            for waited in range(settings.chunks):
                time.sleep(settings.delay)
                if self._client_closed():
                    settings.outcomes.append(
                        {"ended": "closed", "sent": waited, "at": time.monotonic()}
                    )
                    return
            answer = {
                "id": "chatcmpl-slow",
                "object": "chat.completion",
                "model": "slow",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "ok"},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
            self.send_json(200, answer)
            settings.outcomes.append(
                {"ended": "complete", "sent": settings.chunks, "at": time.monotonic()}
            )
            return
        self.start_chunked(200, "text/event-stream")
        sent = 0
        try:
            self.write_chunk(_event({"role": "assistant", "content": ""}))
            for index in range(settings.chunks):
                time.sleep(settings.delay)
                self.write_chunk(_event({"content": f"w{index} "}))
                sent += 1
            self.write_chunk(_event({}, "stop") + b"data: [DONE]\n\n")
            self.end_chunked()
        except (BrokenPipeError, ConnectionResetError):
            settings.outcomes.append({"ended": "closed", "sent": sent, "at": time.monotonic()})
            raise
        settings.outcomes.append({"ended": "complete", "sent": sent, "at": time.monotonic()})

    def _client_closed(self) -> bool:
        """Whether the client has closed the connection (it reads as end-of-file)."""
        readable, _, _ = select.select([self.connection], [], [], 0)
        if not readable:
            return False
        try:
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True


class SlowStreamServer:
    """The server on a free loopback port (a context manager).

    Args:
        chunks: Content events per stream.
        delay: Seconds before each.
    """

    def __init__(self, chunks: int, delay: float) -> None:
        self.chunks = chunks
        self.delay = delay
        self.outcomes: list[dict[str, Any]] = []
        self.loopback = LoopbackServer(SlowStreamHandler)
        self.loopback.httpd.settings = self  # type: ignore[attr-defined]

    @property
    def url(self) -> str:
        """The ``/v1`` root."""
        return self.loopback.url + "/v1"

    def wait_ended(self, count: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The outcomes once ``count`` streams have ended (or what there is at ``timeout``)."""
        deadline = time.monotonic() + timeout
        while len(self.outcomes) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return list(self.outcomes)

    def __enter__(self) -> SlowStreamServer:
        self.loopback.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.loopback.__exit__(None, None, None)
