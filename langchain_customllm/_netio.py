"""httpcore's network layer on plain asyncio, for the async clients this package builds.

httpcore reaches sockets through a "network backend"; on asyncio its default goes through
anyio, whose cancel scopes, stream wrappers and attribute lookups cost more CPU per request
than the HTTP/1.1 exchange itself on a small machine: measured on the 2-core bench machine,
a pooled ``httpcore.AsyncConnectionPool`` POST to a loopback stub took about 1.5 ms through
anyio and 1.05 ms on this backend (``bench/RESULTS.md``, the gateway section). This package
runs its async clients on asyncio only (they are tied to the running asyncio loop), so the
anyio layer buys nothing here.

`AsyncioBackend` is an `asyncio.Protocol` per connection: received bytes wait in a buffer
(reading pauses above `_HIGH_WATER` until the reader catches up), writes go straight to
the transport (waiting only while asyncio's write buffer is full), and timeouts are one
timer per wait. Errors are httpcore's own (`httpcore.ReadTimeout`, `httpcore.ConnectError`,
...), which httpx maps to its exceptions as it does for its default backend.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

__all__ = ["AsyncioBackend", "use_asyncio_backend"]

_HIGH_WATER = 1 << 18  # bytes kept unread before the socket stops being read
_TIMED_OUT = object()


def _expire(waiter: asyncio.Future[Any]) -> None:
    if not waiter.done():
        waiter.set_result(_TIMED_OUT)


class _Connection(asyncio.Protocol):
    """One connection's received bytes and state, filled by the event loop."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.closed = False  # the peer sent EOF, or the connection is lost
        self.error: Exception | None = None
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[Any] | None = None
        self.writable: asyncio.Future[Any] | None = None  # set while writing is paused
        self.reading_paused = False

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > _HIGH_WATER and self.transport is not None:
            self.transport.pause_reading()
            self.reading_paused = True
        self._wake()

    def eof_received(self) -> bool:
        self.closed = True
        self._wake()
        return False  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.error = exc
        self._wake()
        self.resume_writing()

    def pause_writing(self) -> None:
        if self.writable is None:
            self.writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        writable, self.writable = self.writable, None
        if writable is not None and not writable.done():
            writable.set_result(None)


async def _wait(future: asyncio.Future[Any], timeout: float | None, error: type[Exception]) -> None:
    """Await ``future``, raising ``error`` after ``timeout`` seconds (None: no limit)."""
    timer = None
    if timeout is not None:
        timer = asyncio.get_running_loop().call_later(timeout, _expire, future)
    try:
        if await future is _TIMED_OUT:
            raise error(f"timed out after {timeout} s")
    finally:
        if timer is not None:
            timer.cancel()


class _Stream(httpcore.AsyncNetworkStream):
    def __init__(self, transport: asyncio.Transport, connection: _Connection) -> None:
        self._transport = transport
        self._connection = connection

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        conn = self._connection
        if not conn.buffer and not conn.closed:
            conn.waiter = asyncio.get_running_loop().create_future()
            try:
                await _wait(conn.waiter, timeout, httpcore.ReadTimeout)
            finally:
                conn.waiter = None
        buffer = conn.buffer
        if buffer:
            data = bytes(buffer[:max_bytes])
            del buffer[:max_bytes]
            if conn.reading_paused and len(buffer) <= _HIGH_WATER // 2:
                conn.reading_paused = False
                self._transport.resume_reading()
            return data
        if conn.error is not None:
            raise httpcore.ReadError(str(conn.error) or type(conn.error).__name__)
        return b""  # the peer closed the connection: httpcore decides what that means

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        if self._transport.is_closing():
            raise httpcore.WriteError("the connection is closed")
        self._transport.write(buffer)
        writable = self._connection.writable
        if writable is not None:
            await _wait(writable, timeout, httpcore.WriteTimeout)
            if self._transport.is_closing():
                raise httpcore.WriteError("the connection was closed while writing")

    async def aclose(self) -> None:
        self._transport.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            transport = await asyncio.wait_for(
                loop.start_tls(
                    self._transport,
                    self._connection,
                    ssl_context,
                    server_hostname=server_hostname,
                    ssl_handshake_timeout=timeout,
                ),
                timeout,
            )
        except (asyncio.TimeoutError, TimeoutError) as exc:
            self._transport.close()
            raise httpcore.ConnectTimeout(str(exc) or "TLS handshake timed out") from exc
        except (OSError, ssl.SSLError) as exc:
            self._transport.close()
            raise httpcore.ConnectError(str(exc)) from exc
        if transport is None:  # pragma: no cover - the loop closed the connection
            raise httpcore.ConnectError("the connection closed during the TLS handshake")
        return _Stream(transport, self._connection)

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            # Idle and readable means the server closed it (or sent stray bytes): httpcore
            # then drops the connection instead of reusing it.
            return self._connection.closed or bool(self._connection.buffer)
        names = {
            "socket": "socket",
            "client_addr": "sockname",
            "server_addr": "peername",
            "ssl_object": "ssl_object",
        }
        return self._transport.get_extra_info(names[info]) if info in names else None


def _apply(transport: asyncio.BaseTransport, options: Iterable[Any] | None) -> None:
    sock = transport.get_extra_info("socket")
    for option in options or ():
        sock.setsockopt(*option)


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend on asyncio protocols (see the module docstring)."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        local = (local_address, 0) if local_address is not None else None
        opening = loop.create_connection(_Connection, host, port, local_addr=local)
        transport, connection = await self._connect(opening, timeout)
        # asyncio sets TCP_NODELAY on TCP connections itself; the caller's options go on top.
        _apply(transport, socket_options)
        return _Stream(transport, connection)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        transport, connection = await self._connect(
            loop.create_unix_connection(_Connection, path), timeout
        )
        _apply(transport, socket_options)
        return _Stream(transport, connection)

    @staticmethod
    async def _connect(opening: Any, timeout: float | None) -> tuple[Any, _Connection]:
        try:
            return await asyncio.wait_for(opening, timeout)
        except (asyncio.TimeoutError, TimeoutError) as exc:
            raise httpcore.ConnectTimeout(str(exc) or "connecting timed out") from exc
        except (OSError, socket.gaierror) as exc:
            raise httpcore.ConnectError(str(exc)) from exc

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def use_asyncio_backend(transport: httpx.AsyncHTTPTransport) -> httpx.AsyncHTTPTransport:
    """``transport`` with its direct connection pool on `AsyncioBackend`.

    httpx takes no network backend as an argument, so the pool's is replaced; a transport
    through a proxy (another httpcore class) is left as httpx built it.
    """
    pool = getattr(transport, "_pool", None)
    if type(pool) is httpcore.AsyncConnectionPool and hasattr(pool, "_network_backend"):
        pool._network_backend = AsyncioBackend()
    return transport
