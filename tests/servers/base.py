"""Loopback HTTP servers for tests that need a real socket but not a real vendor server.

Ollama and TGI cannot run on this machine; emulators built on `LoopbackServer` reproduce
their wire protocol (framing, field names, headers, error bodies) and get real text from the
llama.cpp server through `Backend`, so the answers are a real model's. Only ever binds
127.0.0.1 on a free port.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import httpx


class Backend:
    """A minimal OpenAI-API client to the real llama.cpp server (test-side, not our package)."""

    def __init__(self, base_url: str, model: str = "smollm2") -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self._http = httpx.Client(timeout=120)

    def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /chat/completions or /completions (by presence of ``messages``), whole."""
        path = "/chat/completions" if "messages" in body else "/completions"
        response = self._http.post(self.base_url + path, json={**body, "stream": False})
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def count_tokens(self, text: str) -> int:
        """Prompt token count from llama-cpp-python's ``POST /extras/tokenize/count``.

        llama.cpp sends no usage in streams, so emulators count prompt tokens this way and
        generated tokens as streamed chunks (llama.cpp streams one token per chunk).
        """
        root = self.base_url.removesuffix("/v1")
        response = self._http.post(root + "/extras/tokenize/count", json={"input": text})
        response.raise_for_status()
        return int(response.json()["count"])

    def stream(self, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Stream the same request; yields the decoded OpenAI chunks (no [DONE])."""
        path = "/chat/completions" if "messages" in body else "/completions"
        with self._http.stream("POST", self.base_url + path, json={**body, "stream": True}) as r:
            r.raise_for_status()
            for line in r.iter_lines():
                if line.startswith("data: ") and line[6:].strip() != "[DONE]":
                    yield json.loads(line[6:])


class Handler(BaseHTTPRequestHandler):
    """Base request handler: JSON in, JSON or chunked streams out. Subclass per protocol."""

    protocol_version = "HTTP/1.1"
    server: LoopbackHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    def handle(self) -> None:
        # A client closing a keep-alive connection (or hanging up mid-answer, as a
        # cancelled stream does) is not a server error worth a traceback.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            super().handle()

    @property
    def backend(self) -> Backend:
        return self.server.backend

    def read_json(self) -> Any:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length)
        self.server.requests.append({"path": self.path, "headers": dict(self.headers), "raw": raw})
        return json.loads(raw)

    def send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def start_chunked(
        self, status: int, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("transfer-encoding", "chunked")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()

    def write_chunk(self, data: bytes) -> None:
        if data:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

    def end_chunked(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class LoopbackHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, handler: type[Handler], backend: Backend | None) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self._backend = backend
        self.requests: list[dict[str, Any]] = []

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            raise RuntimeError("this emulator was started without a backend")
        return self._backend


class LoopbackServer:
    """Run a handler class on 127.0.0.1:<free port> in a thread (a context manager)."""

    def __init__(self, handler: type[Handler], backend: Backend | None = None) -> None:
        self.httpd = LoopbackHTTPServer(handler, backend)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def requests(self) -> list[dict[str, Any]]:
        return self.httpd.requests

    def __enter__(self) -> LoopbackServer:
        self.thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)
