"""HTTPS end to end on loopback: our async transport's TLS (and httpx's sync one) against a
real TLS server with a throwaway CA (trustme): verified, refused, and verification off."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from langchain_customllm import APIConnectionError, ChatCustomLLM

trustme = pytest.importorskip("trustme", reason="trustme generates throwaway certificates")

_ANSWER = {
    "id": "c1",
    "object": "chat.completion",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "over TLS"},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
}  # fmt: skip


def _chunk(text: str) -> bytes:
    choice = {"index": 0, "delta": {"content": text}, "finish_reason": None}
    event = {"id": "c1", "object": "chat.completion.chunk", "choices": [choice]}
    return b"data: " + json.dumps(event).encode() + b"\n\n"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._send(200, b'{"object": "list", "data": []}')

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        self.server.seen.append(body)  # type: ignore[attr-defined]
        if not body.get("stream"):
            self._send(200, json.dumps(_ANSWER).encode())
            return
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for event in (_chunk("over "), _chunk("TLS"), b"data: [DONE]\n\n"):
            self.wfile.write(b"%x\r\n%b\r\n" % (len(event), event))
        self.wfile.write(b"0\r\n\r\n")

    def _send(self, status: int, data: bytes) -> None:
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def ca() -> Any:
    return trustme.CA()


@pytest.fixture(scope="module")
def tls_server(ca: Any) -> Iterator[tuple[str, ThreadingHTTPServer]]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.seen = []  # type: ignore[attr-defined]
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"https://localhost:{server.server_address[1]}/v1", server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def bundle(ca: Any, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def _model(url: str, **settings: Any) -> ChatCustomLLM:
    return ChatCustomLLM(
        model="m", base_url=url, server_profile="generic", max_retries=0, timeout=10, **settings
    )


async def test_async_calls_over_verified_tls(tls_server: Any, bundle: str) -> None:
    url, server = tls_server
    with _model(url, verify=bundle) as model:
        assert (await model.ainvoke("hi")).content == "over TLS"
        assert "".join([str(c.content) async for c in model.astream("hi")]) == "over TLS"
        assert (await model.ainvoke("again")).content == "over TLS"  # kept-alive connection
        transport = model._runtime().client.pools.async_()._transport
        assert transport.open == 1
        await model.aclose()
    assert model.invoke("sync").content == "over TLS"  # httpx's own transport, same context
    assert server.seen[-1]["messages"][0]["content"] == "sync"


async def test_an_unknown_ca_is_refused_and_verify_false_is_not(tls_server: Any) -> None:
    url, _ = tls_server
    with _model(url) as model, pytest.raises(APIConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
        await model.ainvoke("hi")
    with _model(url, verify=False) as model:
        assert (await model.ainvoke("hi")).content == "over TLS"
