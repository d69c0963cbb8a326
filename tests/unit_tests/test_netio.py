"""httpcore's network layer on asyncio (`_netio`), driven through fake transports (no socket)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpcore
import httpx
import pytest

from langchain_customllm import _netio
from langchain_customllm._netio import AsyncioBackend, _Connection, _Stream, use_asyncio_backend
from langchain_customllm._pool import ShardedAsyncTransport

_ANSWER = (
    b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{"ok":true}'
)


class _Transport(asyncio.Transport):
    """A fake connection: records writes; ``answer`` (if any) arrives after each request."""

    def __init__(self, connection: _Connection, answer: bytes | None = None) -> None:
        super().__init__()
        self.connection = connection
        self.answer = answer
        self.written = bytearray()
        self.closing = False
        self.paused = False
        connection.connection_made(self)

    def write(self, data: Any) -> None:
        self.written += data
        if self.answer is not None and self.written.endswith(b"\r\n\r\n"):
            asyncio.get_running_loop().call_soon(self.connection.data_received, self.answer)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            asyncio.get_running_loop().call_soon(self.connection.connection_lost, None)

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 80)}.get(name, default)


def _stream(answer: bytes | None = None) -> tuple[_Stream, _Transport, _Connection]:
    connection = _Connection()
    transport = _Transport(connection, answer)
    return _Stream(transport, connection), transport, connection


async def test_read_waits_for_bytes_and_respects_max_bytes() -> None:
    stream, _, connection = _stream()
    asyncio.get_running_loop().call_soon(connection.data_received, b"abcdef")
    assert await stream.read(4, timeout=1) == b"abcd"
    assert await stream.read(4, timeout=1) == b"ef"


async def test_read_times_out_as_httpcore_does() -> None:
    stream, _, connection = _stream()
    with pytest.raises(httpcore.ReadTimeout):
        await stream.read(10, timeout=0.01)
    assert connection.waiter is None  # nothing left to wake later


async def test_end_of_stream_and_a_lost_connection() -> None:
    stream, _, connection = _stream()
    connection.data_received(b"last")
    connection.eof_received()
    assert await stream.read(10) == b"last"  # bytes before the end are still read
    assert await stream.read(10) == b""
    lost, _, conn2 = _stream()
    conn2.connection_lost(ConnectionResetError("reset by peer"))
    with pytest.raises(httpcore.ReadError, match="reset by peer"):
        await lost.read(10)


async def test_reading_pauses_above_the_high_water_mark(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_netio, "_HIGH_WATER", 8)
    stream, transport, connection = _stream()
    connection.data_received(b"x" * 12)
    assert transport.paused
    assert await stream.read(2) == b"xx"  # 10 left: still above half the mark
    assert transport.paused
    assert await stream.read(8) == b"x" * 8
    assert not transport.paused


async def test_write_waits_while_the_buffer_is_full_and_fails_on_a_closed_connection() -> None:
    stream, transport, connection = _stream()
    await stream.write(b"one")
    connection.pause_writing()
    writing = asyncio.ensure_future(stream.write(b"two", timeout=1))
    await asyncio.sleep(0)
    assert not writing.done()
    connection.resume_writing()
    await writing
    assert bytes(transport.written) == b"onetwo"
    connection.pause_writing()
    with pytest.raises(httpcore.WriteTimeout):
        await stream.write(b"three", timeout=0.01)
    await stream.aclose()
    with pytest.raises(httpcore.WriteError):
        await stream.write(b"four")


async def test_an_idle_connection_is_readable_once_the_server_closed_it() -> None:
    stream, _, connection = _stream()
    assert stream.get_extra_info("is_readable") is False
    assert stream.get_extra_info("server_addr") == ("127.0.0.1", 80)
    assert stream.get_extra_info("anything else") is None
    connection.eof_received()
    assert stream.get_extra_info("is_readable") is True


async def test_connect_errors_are_httpcore_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()

    async def refused(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionRefusedError("refused")

    async def hangs(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(10)

    monkeypatch.setattr(loop, "create_connection", refused)
    with pytest.raises(httpcore.ConnectError, match="refused"):
        await AsyncioBackend().connect_tcp("127.0.0.1", 1, timeout=1)
    monkeypatch.setattr(loop, "create_connection", hangs)
    with pytest.raises(httpcore.ConnectTimeout):
        await AsyncioBackend().connect_tcp("127.0.0.1", 1, timeout=0.01)


class _FakeNetwork(AsyncioBackend):
    """The real streams, each over a fake connection that answers every request."""

    def __init__(self) -> None:
        self.opened: list[_Transport] = []

    async def connect_tcp(self, host: str, port: int, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        connection = _Connection()
        self.opened.append(_Transport(connection, _ANSWER))
        return _Stream(self.opened[-1], connection)


async def test_httpx_requests_reuse_one_connection_and_drop_a_closed_one() -> None:
    transport = use_asyncio_backend(httpx.AsyncHTTPTransport())
    network = _FakeNetwork()
    transport._pool._network_backend = network  # type: ignore[attr-defined]
    async with httpx.AsyncClient(transport=transport) as client:
        for _ in range(3):
            answer = await client.post("http://backend/v1/chat", content=b"{}")
            assert answer.json() == {"ok": True}
        assert len(network.opened) == 1  # kept alive and reused
        assert network.opened[0].written.count(b"POST /v1/chat HTTP/1.1") == 3
        network.opened[0].connection.eof_received()  # the server closed it while idle
        assert (await client.get("http://backend/")).status_code == 200
        assert len(network.opened) == 2


def test_the_backend_goes_on_direct_pools_only() -> None:
    direct = use_asyncio_backend(httpx.AsyncHTTPTransport())
    assert isinstance(direct._pool._network_backend, AsyncioBackend)  # type: ignore[attr-defined]
    proxied = use_asyncio_backend(httpx.AsyncHTTPTransport(proxy="http://proxy:3128"))
    assert not isinstance(getattr(proxied._pool, "_network_backend", None), AsyncioBackend)  # type: ignore[attr-defined]
    sharded = ShardedAsyncTransport(2, 1)
    assert all(
        isinstance(shard._pool._network_backend, AsyncioBackend)  # type: ignore[attr-defined]
        for shard in sharded._shards
    )
