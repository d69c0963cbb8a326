"""Environment proxies (HTTP_PROXY, NO_PROXY) apply to every call path, async included.

httpx reads them only when it builds its own transport; our async client has a transport
of its own (the sharded pools), so it mounts them itself. A real forward proxy on loopback
answers for an upstream host that does not exist: a call that reaches it went through it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from langchain_customllm import APIConnectionError, ChatCustomLLM, CustomLLM
from tests.fault_tests._helpers import METHODS, call
from tests.servers.base import Handler, LoopbackServer

CHAT = {
    "id": "c1",
    "object": "chat.completion",
    "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "via proxy"},
                 "finish_reason": "stop"}],
}  # fmt: skip
TEXT = {
    "id": "t1",
    "object": "text_completion",
    "model": "m",
    "choices": [{"index": 0, "text": "via proxy", "finish_reason": "stop"}],
}


class _ForwardProxy(Handler):
    """Answers as the upstream server for absolute-URI requests (a forward proxy's view)."""

    def do_POST(self) -> None:
        body = self.read_json()
        self.server.requests[-1]["target"] = self.path  # absolute URI: a proxied request
        whole = CHAT if self.path.endswith("/chat/completions") else TEXT
        if not body.get("stream"):
            self.send_json(200, whole)
            return
        choice = dict(whole["choices"][0])
        if "message" in choice:
            choice["delta"] = choice.pop("message")
        self.start_chunked(200, "text/event-stream")
        event = {**whole, "choices": [choice]}
        self.write_chunk(f"data: {json.dumps(event)}\n\ndata: [DONE]\n\n".encode())
        self.end_chunked()


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackServer]:
    with LoopbackServer(_ForwardProxy) as server:
        for name in ("HTTP_PROXY", "http_proxy"):
            monkeypatch.setenv(name, server.url)
        for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.delenv(name, raising=False)
        yield server


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("cls", [ChatCustomLLM, CustomLLM])
def test_calls_go_through_the_environment_proxy(
    proxy: LoopbackServer, cls: type, method: str
) -> None:
    model = cls(model="m", base_url="http://upstream.invalid/v1", max_retries=0)
    outcome = call(model, method, "q")
    assert outcome.error is None
    assert outcome.text == "via proxy"
    assert proxy.requests[-1]["target"].startswith("http://upstream.invalid/v1/")


@pytest.mark.parametrize("method", METHODS)
def test_no_proxy_hosts_are_reached_directly(
    proxy: LoopbackServer, method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_PROXY", "upstream.invalid")
    model = ChatCustomLLM(model="m", base_url="http://upstream.invalid/v1", max_retries=0)
    outcome = call(model, method, "q")
    assert isinstance(outcome.error, APIConnectionError)
    assert proxy.requests == []  # never went to the proxy
