"""The async transport (`_h1`, `_netio`) over fake asyncio connections (no socket)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from langchain_customllm import ChatCustomLLM, _netio
from langchain_customllm._h1 import H1Transport
from langchain_customllm._netio import Connection

OK = b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{"ok":true}'


class _Fake(asyncio.Transport):
    """One fake connection: records writes; ``answer(written)`` bytes arrive after each."""

    def __init__(self, proto: Connection, answer: Callable[[bytes], bytes | None]) -> None:
        super().__init__()
        self.proto = proto
        self.answer = answer
        self.written = bytearray()
        self.closing = False
        self.paused = False
        proto.connection_made(self)

    def write(self, data: Any) -> None:
        self.written += data
        reply = self.answer(bytes(data))
        if reply:
            asyncio.get_running_loop().call_soon(self.proto.data_received, reply)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            asyncio.get_running_loop().call_soon(self.proto.connection_lost, None)

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False


class _Network:
    """Stands in for ``loop.create_connection``: every connection it opens is a `_Fake`."""

    def __init__(self, answer: Callable[[bytes], bytes | None] = lambda data: OK) -> None:
        self.answer = answer
        self.opened: list[_Fake] = []
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    async def create_connection(self, factory: Any, *args: Any, **kwargs: Any) -> Any:
        self.calls.append((args, kwargs))
        proto = factory()
        self.opened.append(_Fake(proto, self.answer))
        return self.opened[-1], proto


@pytest.fixture
def network(monkeypatch: pytest.MonkeyPatch) -> _Network:
    net = _Network()
    monkeypatch.setattr(
        asyncio.BaseEventLoop,
        "create_connection",
        lambda loop, *a, **k: net.create_connection(*a, **k),
    )
    return net


def _client(transport: H1Transport | None = None, **timeouts: float) -> httpx.AsyncClient:
    timeout = httpx.Timeout(timeouts.pop("all", 5.0), **timeouts)
    return httpx.AsyncClient(transport=transport or H1Transport(), timeout=timeout)


async def test_sequential_requests_reuse_one_connection(network: _Network) -> None:
    transport = H1Transport()
    async with _client(transport) as client:
        for _ in range(3):
            answer = await client.post("http://backend:8/v1/chat", content=b"{}")
            assert answer.json() == {"ok": True}
            assert answer.http_version == "HTTP/1.1"
        assert len(network.opened) == 1
        written = bytes(network.opened[0].written)
        assert written.count(b"POST /v1/chat HTTP/1.1\r\n") == 3
        assert b"\r\nHost: backend:8\r\n" in written
        assert (transport.open, transport.in_use) == (1, 0)
        assert network.calls[0][0] == ("backend", 8)
        network.opened[0].proto.eof_received()  # the server closed it while idle
        assert (await client.get("http://backend:8/")).status_code == 200
        assert len(network.opened) == 2
    assert network.opened[1].closing  # aclose closed the idle one


async def test_a_body_closed_early_closes_its_connection(network: _Network) -> None:
    network.answer = lambda data: (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n"
    )
    transport = H1Transport()
    async with _client(transport) as client:
        async with client.stream("POST", "http://b/", content=b"{}") as answer:
            async for part in answer.aiter_raw():
                assert part == b"abc"
                break
        assert network.opened[0].closing
        assert transport.open == 0


async def test_a_stream_arrives_piece_by_piece(network: _Network) -> None:
    network.answer = lambda data: b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
    async with _client() as client:
        async with client.stream("POST", "http://b/", content=b"{}") as answer:
            proto = network.opened[0].proto
            pieces = answer.aiter_raw()
            loop = asyncio.get_running_loop()
            loop.call_soon(proto.data_received, b"5\r\nfirst\r\n")
            assert await pieces.__anext__() == b"first"
            loop.call_soon(proto.data_received, b"6\r\nsecond\r\n0\r\n\r\n")
            assert [part async for part in pieces] == [b"second"]
        assert not network.opened[0].closing  # read to the end: kept


@pytest.mark.parametrize(
    ("end", "error", "match"),
    [
        (lambda proto: proto.eof_received(), httpx.RemoteProtocolError, "complete body"),
        (
            lambda proto: proto.connection_lost(ConnectionResetError("reset by peer")),
            httpx.ReadError,
            "reset by peer",
        ),
    ],
)
async def test_a_body_cut_short_is_an_error(
    network: _Network, end: Callable[[Connection], Any], error: type[Exception], match: str
) -> None:
    network.answer = lambda data: b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc"
    transport = H1Transport()
    async with _client(transport) as client:
        async with client.stream("POST", "http://b/", content=b"{}") as answer:
            end(network.opened[0].proto)
            with pytest.raises(error, match=match):
                await answer.aread()
        assert transport.open == 0


async def test_no_answer_at_all(network: _Network) -> None:
    network.answer = lambda data: None
    async with _client(read=0.02, all=5) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.post("http://b/", content=b"{}")
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(client.post("http://b/", content=b"{}"))
        while len(network.opened) < 2 or not network.opened[1].written:
            await asyncio.sleep(0)
        loop.call_soon(network.opened[1].proto.eof_received)
        with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
            await task
        network.answer = lambda data: b"garbage\r\n\r\n"
        with pytest.raises(httpx.RemoteProtocolError, match="status line"):
            await client.post("http://b/", content=b"{}")
    assert all(fake.closing for fake in network.opened)


async def test_close_delimited_body_and_informational_answers(network: _Network) -> None:
    network.answer = lambda data: b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\nall of it"
    async with _client() as client, client.stream("POST", "http://b/", content=b"{}") as answer:
        assert answer.status_code == 200
        network.opened[0].proto.eof_received()
        assert await answer.aread() == b"all of it"


async def test_connection_close_answers_are_not_reused(network: _Network) -> None:
    network.answer = lambda data: (
        b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"
    )
    async with _client() as client:
        await client.get("http://b/")
        await client.get("http://b/")
    assert len(network.opened) == 2


async def test_connect_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()

    async def refused(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionRefusedError("refused")

    async def hangs(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(10)

    transport = H1Transport()
    async with _client(transport, connect=0.01) as client:
        monkeypatch.setattr(loop, "create_connection", refused)
        with pytest.raises(httpx.ConnectError, match="refused"):
            await client.get("http://b/")
        monkeypatch.setattr(loop, "create_connection", hangs)
        with pytest.raises(httpx.ConnectTimeout):
            await client.get("http://b/")
        with pytest.raises(httpx.UnsupportedProtocol):
            await transport.handle_async_request(httpx.Request("GET", "ftp://b/"))
    assert transport.open == 0


async def test_the_pool_cap_makes_requests_wait(network: _Network) -> None:
    network.answer = lambda data: b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"
    transport = H1Transport(max_connections=1)
    async with _client(transport, pool=0.05) as client:
        first = await client.send(client.build_request("GET", "http://b/"), stream=True)
        with pytest.raises(httpx.PoolTimeout):
            await client.get("http://b/")
        second = asyncio.ensure_future(client.get("http://other/"))
        await asyncio.sleep(0.01)
        assert not second.done()
        network.opened[0].proto.data_received(b"ok")
        assert await first.aread() == b"ok"
        await first.aclose()
        while len(network.opened) < 2 or not network.opened[1].written:
            await asyncio.sleep(0)
        asyncio.get_running_loop().call_soon(network.opened[1].proto.data_received, b"ok")
        assert (await second).text == "ok"
        # The idle connection to b was closed to make room for the other origin.
        assert network.opened[0].closing
        assert transport.open == 1


async def test_idle_limits_and_expiry(network: _Network) -> None:
    transport = H1Transport(max_keepalive=1, keepalive_expiry=0.01)
    async with _client(transport) as client:
        await asyncio.gather(*(client.get("http://b/") for _ in range(3)))
        assert len(network.opened) == 3
        assert transport.open == 1  # two closed: one idle kept
        await asyncio.sleep(0.03)
        await client.get("http://b/")
        assert len(network.opened) == 4  # the idle one had expired


async def test_write_errors_and_timeouts(network: _Network) -> None:
    network.answer = lambda data: None
    async with _client(write=0.01) as client:
        task = asyncio.ensure_future(client.get("http://b/"))
        while not network.opened or not network.opened[0].written:
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert network.opened[0].closing  # a cancelled request's connection is not reused
        original = _Fake.write

        def full(self: _Fake, data: Any) -> None:
            original(self, data)
            self.proto.pause_writing()

        _Fake.write = full  # type: ignore[method-assign]
        try:
            with pytest.raises(httpx.WriteTimeout):
                await client.get("http://b/")
        finally:
            _Fake.write = original  # type: ignore[method-assign]
        with pytest.raises(httpx.LocalProtocolError, match="line break"):
            await client.get("http://b/", headers={"x": "a\nb"})


async def test_a_streamed_request_body_is_sent_chunked(network: _Network) -> None:
    async def parts() -> AsyncIterator[bytes]:
        yield b"ab"
        yield b""
        yield b"cde"

    async with _client() as client:
        answer = await client.post("http://b/", content=parts())
        assert answer.json() == {"ok": True}
    written = bytes(network.opened[0].written)
    assert written.endswith(b"\r\n\r\n2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n")
    assert b"transfer-encoding: chunked" in written.lower()


async def test_https_uses_the_given_context(network: _Network) -> None:
    context = ssl.create_default_context()
    async with _client(H1Transport(verify=context)) as client:
        await client.get("https://secure.example/")
        await client.get("http://plain.example/")
    (args, kwargs), (plain_args, plain_kwargs) = network.calls
    assert args == ("secure.example", 443)
    assert kwargs["ssl"] is context
    assert kwargs["server_hostname"] == "secure.example"
    assert plain_args == ("plain.example", 80)
    assert "ssl" not in plain_kwargs
    unverified = H1Transport(verify=False)._context()
    assert unverified.verify_mode == ssl.CERT_NONE


async def test_reading_pauses_above_the_high_water_mark(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_netio, "_HIGH_WATER", 8)
    proto = Connection()
    fake = _Fake(proto, lambda data: None)
    proto.data_received(b"x" * 12)
    assert fake.paused
    del proto.buffer[:2]
    proto.consumed()
    assert fake.paused  # 10 left: still above half the mark
    del proto.buffer[:8]
    proto.consumed()
    assert not fake.paused
    with pytest.raises(httpx.ReadTimeout):
        await proto.more(0.01, httpx.ReadTimeout)
    assert proto.waiter is None


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        H1Transport(max_connections=0)


def test_our_async_clients_use_it_and_a_users_does_not() -> None:
    ours = ChatCustomLLM(model="m")._runtime().client.pools
    users = httpx.AsyncClient()
    theirs = ChatCustomLLM(model="m", http_async_client=users)._runtime().client.pools

    async def grab() -> tuple[httpx.AsyncClient, httpx.AsyncClient]:
        return ours.async_(), theirs.async_()

    mine, given = asyncio.run(grab())
    assert isinstance(mine._transport, H1Transport)
    assert given is users


async def test_an_answer_before_the_whole_body_is_read_not_the_write_error(
    network: _Network,
) -> None:
    def refuse(data: bytes) -> bytes | None:
        if data.startswith(b"POST"):  # the head: answer at once and hang up
            fake = network.opened[-1]
            asyncio.get_running_loop().call_soon(fake.close)
            return b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 0\r\n\r\n"
        return None

    network.answer = refuse

    async def parts() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b"x" * 10
            await asyncio.sleep(0.001)  # the server's answer arrives between two writes

    transport = H1Transport()
    async with _client(transport) as client:
        answer = await client.post("http://b/", content=parts())
        assert answer.status_code == 413
        network.answer = lambda data: None  # no answer at all: the write error stands

        async def silent() -> AsyncIterator[bytes]:
            yield b"x"
            network.opened[-1].closing = True
            yield b"y"

        with pytest.raises(httpx.WriteError):
            await client.post("http://b/", content=silent())
    assert transport.open == 0


async def test_a_woken_waiter_that_leaves_passes_its_turn_on(network: _Network) -> None:
    network.answer = lambda data: b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"
    transport = H1Transport(max_connections=1)
    async with _client(transport) as client:
        first = await client.send(client.build_request("GET", "http://b/"), stream=True)
        leaving = asyncio.ensure_future(client.get("http://b/"))
        staying = asyncio.ensure_future(client.get("http://b/"))
        await asyncio.sleep(0.01)
        network.opened[0].proto.data_received(b"ok")
        await first.aread()  # its connection goes back: the first waiter is woken ...
        leaving.cancel()  # ... and leaves before it runs
        await asyncio.sleep(0)
        for fake in network.opened:
            asyncio.get_running_loop().call_later(0.01, fake.proto.data_received, b"ok")
        answer = await asyncio.wait_for(staying, 1)
        assert answer.text == "ok"
        with pytest.raises(asyncio.CancelledError):
            await leaving


async def test_waiters_are_served_in_turn_and_the_pool_timeout_is_one_limit(
    network: _Network,
) -> None:
    network.answer = lambda data: b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"
    transport = H1Transport(max_connections=1)
    loop = asyncio.get_running_loop()
    async with _client(transport, pool=5) as client:
        holder = await client.send(client.build_request("GET", "http://b/"), stream=True)
        order: list[str] = []

        async def get(name: str) -> None:
            await client.get("http://b/")
            order.append(name)

        waiting = asyncio.ensure_future(get("waiting"))
        await asyncio.sleep(0.01)
        network.opened[0].proto.data_received(b"ok")
        await holder.aread()  # the connection goes back and wakes the waiting request ...
        newcomer = asyncio.ensure_future(get("newcomer"))  # ... before a newcomer arrives
        for _ in range(3):
            await asyncio.sleep(0.01)
            for fake in network.opened:
                if not fake.closing:
                    loop.call_soon(fake.proto.data_received, b"ok")
        await asyncio.wait_for(asyncio.gather(waiting, newcomer), 2)
        assert order == ["waiting", "newcomer"]
    transport = H1Transport(max_connections=1)
    async with _client(transport, pool=0.2) as client:
        holder = await client.send(client.build_request("GET", "http://b/"), stream=True)
        waiter = asyncio.ensure_future(client.get("http://b/"))
        started = loop.time()
        ended: list[float] = []
        waiter.add_done_callback(lambda _: ended.append(loop.time()))
        for _ in range(10):  # wake-ups with nothing free: the waiter looks and waits again
            await asyncio.sleep(0.05)
            transport._wake()
            transport._woken = 0  # as the woken waiter itself would have counted down
        with pytest.raises(httpx.PoolTimeout):
            await waiter
        assert ended[0] - started < 0.45  # one 0.2 s limit, not 0.2 s per wake-up
        await holder.aclose()


async def test_aclose_closes_connections_in_use_and_fails_waiters(network: _Network) -> None:
    network.answer = lambda data: b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"
    transport = H1Transport(max_connections=1)
    client = _client(transport, pool=5)
    holder = await client.send(client.build_request("GET", "http://b/"), stream=True)
    waiter = asyncio.ensure_future(client.get("http://b/"))
    await asyncio.sleep(0.01)
    await transport.aclose()
    assert network.opened[0].closing  # the connection in use too
    with pytest.raises(RuntimeError, match="closed"):
        await waiter
    with pytest.raises(httpx.RemoteProtocolError):
        await holder.aread()
    assert (transport.open, transport.in_use) == (0, 0)
    await client.aclose()
