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

# One pooled client for the tokenizer routes (a new client per call costs ~90 ms).
_TOKENIZER = httpx.Client(timeout=60)


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

    def tokenize(self, text: str) -> list[int]:
        """Token ids of ``text`` from llama-server's ``POST /tokenize`` (no BOS added).

        Its own client: llama-server answers it while a stream of ``_http`` is running.
        """
        root = self.base_url.removesuffix("/v1")
        response = _TOKENIZER.post(root + "/tokenize", json={"content": text})
        response.raise_for_status()
        ids: list[int] = response.json()["tokens"]
        return ids

    def detokenize(self, ids: list[int]) -> str:
        """The text of token ``ids`` from llama-server's ``POST /detokenize``."""
        root = self.base_url.removesuffix("/v1")
        response = _TOKENIZER.post(root + "/detokenize", json={"tokens": ids})
        response.raise_for_status()
        return str(response.json()["content"])

    def context(self) -> int | None:
        """Tokens one request may fill on the llama.cpp server (``meta.n_ctx`` of /models)."""
        response = _TOKENIZER.get(self.base_url + "/models")
        response.raise_for_status()
        for entry in response.json().get("data", []):
            n_ctx = (entry.get("meta") or {}).get("n_ctx")
            if isinstance(n_ctx, int):
                return n_ctx
        return None

    def count_tokens(self, text: str) -> int:
        """Prompt token count of ``text``: emulators count generated tokens as streamed chunks
        (llama.cpp streams one token per chunk) and prompts this way."""
        return len(self.tokenize(text))

    def stream(
        self, body: dict[str, Any], usage: dict[str, Any] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Stream the same request; yields the decoded OpenAI chunks that have choices.

        Args:
            body: The OpenAI request.
            usage: Filled with the backend's own usage of the stream (llama-server sends it
                in a last chunk without choices when asked), for emulators whose protocol
                reports counts: counting chunks misses the end-of-generation token.

        """
        path = "/chat/completions" if "messages" in body else "/completions"
        request = {**body, "stream": True}
        if usage is not None:
            request["stream_options"] = {"include_usage": True}
        with self._http.stream("POST", self.base_url + path, json=request) as r:
            r.raise_for_status()
            for line in r.iter_lines():
                if not line.startswith("data: ") or line[6:].strip() == "[DONE]":
                    continue
                chunk = json.loads(line[6:])
                if chunk.get("usage") and usage is not None:
                    usage.update(chunk["usage"])
                if chunk.get("choices"):
                    yield chunk


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

    def send_cut(self, data: bytes) -> None:
        """A 200 JSON answer that announces all of ``data``, sends half, then hangs up."""
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        self.wfile.flush()
        self.close_connection = True

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
