"""The provider client's own behaviour: pooling per event loop, closing."""

from __future__ import annotations

import asyncio
import gzip as gzip_module
import logging

import httpx
import pytest

from langchain_customllm import APIConnectionError, ChatCustomLLM
from langchain_customllm._client import ProviderClient
from langchain_customllm._h1 import H1Transport
from langchain_customllm.formats.base import WireRequest


def make(**settings: object) -> ProviderClient:
    """The provider client a model with these settings builds."""
    settings = {"model": "m", "base_url": "http://fake.test/v1/", "api_key": "k", **settings}
    return ChatCustomLLM(**settings)._runtime().client  # type: ignore[arg-type]


def test_one_sync_client_reused() -> None:
    client = make()
    first = client.pools.sync()
    assert client.pools.sync() is first
    client.pools.close()
    assert client.pools._sync is None


def test_one_async_client_per_event_loop() -> None:
    # An httpx.AsyncClient is bound to the loop that opened its connections; asyncio.run()
    # twice must not reuse a client from a closed loop.
    client = make()

    async def grab() -> tuple[httpx.AsyncClient, httpx.AsyncClient]:
        return client.pools.async_(), client.pools.async_()

    a1, a2 = asyncio.run(grab())
    b1, _ = asyncio.run(grab())
    assert a1 is a2
    assert b1 is not a1


def test_user_clients_are_used_as_given() -> None:
    sync = httpx.Client()
    asyn = httpx.AsyncClient()
    client = make(http_client=sync, http_async_client=asyn)
    assert client.pools.sync() is sync

    async def grab() -> httpx.AsyncClient:
        return client.pools.async_()

    assert asyncio.run(grab()) is asyn
    client.pools.close()
    assert not sync.is_closed  # not ours to close


def test_base_url_trailing_slash_and_timeout() -> None:
    client = make(base_url="http://x/v1/", timeout=7.5)
    assert client.base_url == "http://x/v1"
    assert client.encoder.timeout.read == 7.5


# ---------------------------------------------------------------- what goes on the wire
# The clients we create carry our headers and timeout themselves; a client the user passes
# in knows nothing of them, so each request brings them. Both must put the same on the wire.

_OK = {"choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}]}
_SSE = b'data: {"choices":[{"delta":{"content":"hi"}}]}\n\ndata: [DONE]\n\n'


def _recording_transport(seen: list[httpx.Request]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.headers["accept"].startswith("text/event-stream"):
            return httpx.Response(200, content=_SSE, headers={"content-type": "text/event-stream"})
        return httpx.Response(200, json=_OK)

    return httpx.MockTransport(handler)


def _wired(owned: bool, seen: list[httpx.Request]) -> ProviderClient:
    transport = _recording_transport(seen)
    user: dict[str, object] = {}
    if not owned:
        user = {
            "http_client": httpx.Client(transport=transport),
            "http_async_client": httpx.AsyncClient(transport=transport),
        }
    client = make(
        api_key="sk-wire-0123456789", default_headers={"x-team": "search"}, timeout=7.5, **user
    )
    if owned:  # our own clients, with the network swapped for the recorder
        client.pools.sync()._transport = transport

    return client


def _check_sent(request: httpx.Request, *, stream: bool) -> None:
    assert request.headers["authorization"] == "Bearer sk-wire-0123456789"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == "langchain-customllm/0.1"
    assert request.headers["x-team"] == "search"
    expected_accept = "text/event-stream" if stream else "application/json"
    assert request.headers["accept"].startswith(expected_accept)
    assert request.extensions["timeout"] == {
        "connect": 7.5,
        "read": 7.5,
        "write": 7.5,
        "pool": 7.5,
    }


@pytest.mark.parametrize("owned", [True, False], ids=["our-client", "user-client"])
def test_sync_requests_carry_our_headers_and_timeout(owned: bool) -> None:
    seen: list[httpx.Request] = []
    client = _wired(owned, seen)
    request = WireRequest(path="/chat/completions", body={"model": "m"})
    assert client.send(request) == _OK
    assert [e.data for e in client.stream(request, "sse")][-1] == "[DONE]"
    _check_sent(seen[0], stream=False)
    _check_sent(seen[1], stream=True)


@pytest.mark.parametrize("owned", [True, False], ids=["our-client", "user-client"])
def test_async_requests_carry_our_headers_and_timeout(owned: bool) -> None:
    seen: list[httpx.Request] = []
    client = _wired(owned, seen)
    request = WireRequest(path="/chat/completions", body={"model": "m"})

    async def run() -> list[str]:
        if owned:
            client.pools.async_()._transport = _recording_transport(seen)
        assert await client.asend(request) == _OK
        return [e.data async for e in client.astream(request, "sse")]

    assert asyncio.run(run())[-1] == "[DONE]"
    _check_sent(seen[0], stream=False)
    _check_sent(seen[1], stream=True)


def test_format_headers_are_added_to_ours() -> None:
    seen: list[httpx.Request] = []
    client = _wired(True, seen)
    request = WireRequest(path="/x", body={}, headers={"x-format": "1"})
    client.send(request)
    assert seen[0].headers["x-format"] == "1"
    _check_sent(seen[0], stream=False)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_cookies_a_server_sets_are_sent_back(mode: str) -> None:
    # Our clients skip httpx's cookie parsing for responses without Set-Cookie (a cost on
    # every call); a sticky load balancer's cookie must still come back on the next request.
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        headers = {"set-cookie": "lb=node-7; Path=/"} if len(seen) == 1 else {}
        return httpx.Response(200, json=_OK, headers=headers)

    client = make(api_key=None)
    request = WireRequest(path="/chat/completions", body={})
    if mode == "sync":
        client.pools.sync()._transport = httpx.MockTransport(handler)
        for _ in range(3):
            client.send(request)
    else:

        async def run() -> None:
            client.pools.async_()._transport = httpx.MockTransport(handler)
            for _ in range(3):
                await client.asend(request)

        asyncio.run(run())
    assert "cookie" not in seen[0].headers
    assert seen[1].headers["cookie"] == "lb=node-7"
    assert seen[2].headers["cookie"] == "lb=node-7"


class _Direct:
    """Our async transport's requests recorded (no socket); httpx's client ``send`` counted."""

    def __init__(
        self, monkeypatch: pytest.MonkeyPatch, cookie_once: bool = False, gzip: bool = False
    ) -> None:
        self.seen: list[httpx.Request] = []
        self.through_send = 0
        recorder = self

        async def handle(transport: object, request: httpx.Request) -> httpx.Response:
            recorder.seen.append(request)
            headers = (
                {"set-cookie": "lb=node-7; Path=/"}
                if cookie_once and len(recorder.seen) == 1
                else {}
            )
            if request.headers["accept"].startswith("text/event-stream"):
                headers["content-type"] = "text/event-stream"
                return httpx.Response(200, content=_SSE, headers=headers)
            if gzip:
                headers["content-encoding"] = "gzip"
                return httpx.Response(
                    200, content=gzip_module.compress(b'{"n": 1}'), headers=headers
                )
            return httpx.Response(200, json=_OK, headers=headers)

        original_send = httpx.AsyncClient.send

        async def send(client: httpx.AsyncClient, *args: object, **kwargs: object) -> object:
            recorder.through_send += 1
            return await original_send(client, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(H1Transport, "handle_async_request", handle)
        monkeypatch.setattr(httpx.AsyncClient, "send", send)


def test_our_async_requests_go_straight_to_the_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    direct = _Direct(monkeypatch)
    client = make(api_key="sk-wire-0123456789", default_headers={"x-team": "search"}, timeout=7.5)
    request = WireRequest(path="/chat/completions", body={}, headers={"X-Team": "mine"})

    async def run() -> None:
        assert await client.asend(request) == _OK
        plain = WireRequest(path="/chat/completions", body={})
        events = [event async for event in client.astream(plain, framing="sse")]
        assert events
        status, _, body = await client.aonce(WireRequest(path="/models", body={}), 3.0)
        assert (status, body) == (200, _OK)

    asyncio.run(run())
    assert direct.through_send == 0  # no cookie, no proxy: httpx's client layer skipped
    whole, streamed, once = direct.seen
    _check_sent(streamed, stream=True)
    assert whole.headers["authorization"] == "Bearer sk-wire-0123456789"
    assert whole.headers.get_list("x-team") == ["mine"]  # the request's own wins, any case
    assert whole.extensions["timeout"]["read"] == 7.5
    assert once.extensions["timeout"] == {"connect": 3.0, "read": 3.0, "write": 3.0, "pool": 3.0}
    assert b"sk-wire" not in repr(whole).encode()


def test_a_cookie_sends_requests_through_httpx_and_back(monkeypatch: pytest.MonkeyPatch) -> None:
    direct = _Direct(monkeypatch, cookie_once=True)
    client = make(api_key=None)
    request = WireRequest(path="/chat/completions", body={})

    async def run() -> None:
        for _ in range(3):
            await client.asend(request)

    asyncio.run(run())
    assert "cookie" not in direct.seen[0].headers
    assert [r.headers.get("cookie") for r in direct.seen[1:]] == ["lb=node-7", "lb=node-7"]
    assert direct.through_send == 2  # httpx's own client puts the cookie back


def test_an_environment_proxy_keeps_its_requests_on_httpx(monkeypatch: pytest.MonkeyPatch) -> None:
    direct = _Direct(monkeypatch)
    proxied: list[httpx.Request] = []

    async def via_proxy(transport: object, request: httpx.Request) -> httpx.Response:
        proxied.append(request)
        return httpx.Response(200, json=_OK)

    monkeypatch.setattr(httpx.AsyncHTTPTransport, "handle_async_request", via_proxy)
    monkeypatch.setenv("ALL_PROXY", "http://proxy.test:3128")
    monkeypatch.setenv("NO_PROXY", "direct.test")
    proxied_client = make(base_url="http://fake.test/v1")
    excepted = make(base_url="http://direct.test/v1")
    request = WireRequest(path="/chat/completions", body={})

    async def run() -> None:
        assert await proxied_client.asend(request) == _OK
        assert await excepted.asend(request) == _OK

    asyncio.run(run())
    assert [str(r.url) for r in proxied] == ["http://fake.test/v1/chat/completions"]
    assert [str(r.url) for r in direct.seen] == ["http://direct.test/v1/chat/completions"]


def test_direct_requests_log_what_httpx_logs(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _Direct(monkeypatch)
    client = make(api_key="sk-wire-0123456789")
    with caplog.at_level(logging.INFO, logger="httpx"):
        asyncio.run(client.asend(WireRequest(path="/chat/completions", body={})))
    assert (
        'HTTP Request: POST http://fake.test/v1/chat/completions "HTTP/1.1 200 OK"' in caplog.text
    )
    assert "sk-wire" not in caplog.text


@pytest.mark.parametrize("gzip", [False, True])
def test_direct_answers_are_read_whole_and_decoded(
    monkeypatch: pytest.MonkeyPatch, gzip: bool
) -> None:
    direct = _Direct(monkeypatch, gzip=gzip)
    client = make()
    answer = asyncio.run(client.asend(WireRequest(path="/chat/completions", body={"q": 1})))
    assert answer == ({"n": 1} if gzip else _OK)
    (sent,) = direct.seen
    assert sent.content == b'{"q":1}'
    assert sent.headers["content-length"] == "7"
    assert sent.headers["host"] == "fake.test"
    assert next(iter(sent.headers)) == "host"  # where httpx itself puts it


def test_a_streams_chunk_timeout_stays_with_that_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    # The client bounds a stream's reads by changing its request's timeout after the head;
    # the next request must still get the model's own read timeout.
    direct = _Direct(monkeypatch)
    client = (
        ChatCustomLLM(
            model="m", base_url="http://fake.test/v1", timeout=7.5, stream_chunk_timeout=2.0
        )
        ._runtime()
        .client
    )
    request = WireRequest(path="/chat/completions", body={})

    async def run() -> None:
        assert [event async for event in client.astream(request, framing="sse")]
        await client.asend(request)
        assert [event async for event in client.astream(request, framing="sse")]

    asyncio.run(run())
    first, whole, second = (sent.extensions["timeout"]["read"] for sent in direct.seen)
    assert (first, whole, second) == (2.0, 7.5, 2.0)


def test_hosts_and_lengths_are_sent_once_as_httpx_would(monkeypatch: pytest.MonkeyPatch) -> None:
    direct = _Direct(monkeypatch)
    client = make(default_headers={"Host": "api.internal"})
    per_call = make()

    async def run() -> None:
        await client.asend(WireRequest(path="/chat/completions", body={}))
        await per_call.asend(WireRequest(path="/chat/completions", body={}, headers={"HOST": "v"}))
        await client.aonce(WireRequest(path="/models", body={}, method="GET"), 3.0)

    asyncio.run(run())
    default_host, call_host, get = direct.seen
    assert default_host.headers.get_list("host") == ["api.internal"]
    assert call_host.headers.get_list("host") == ["v"]
    assert get.headers.get_list("host") == ["api.internal"]
    assert "content-length" not in get.headers  # httpx sends none on a GET without a body
    assert default_host.headers.get_list("content-length") == ["2"]


def test_transport_errors_on_the_direct_path_name_their_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def refuse(transport: object, request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    monkeypatch.setattr(H1Transport, "handle_async_request", refuse)
    client = make(max_retries=0)
    with pytest.raises(APIConnectionError) as caught:
        asyncio.run(client.asend(WireRequest(path="/chat/completions", body={})))
    cause = caught.value.__cause__
    assert isinstance(cause, httpx.ConnectError)
    assert str(cause.request.url) == "http://fake.test/v1/chat/completions"
