"""The async clients' transport: HTTP/1.1 keep-alive connections on asyncio protocols.

httpx's own async transport goes through httpcore and h11; on the 2-core bench machine that
layer cost ~0.45 ms of CPU per pooled request where the exchange on a plain asyncio
connection costs 0.08 ms, and httpcore 1.0's pool does work proportional to (connections x
idle connections) each time a request starts or ends, so 64 kept-alive connections needed
16 small pools side by side (``bench/RESULTS.md``). `H1Transport` is one pool: idle
connections per origin in a list (the most recent reused first), a cap on open connections
with a queue of waiters, and the reading and writing of `_h1wire` on `_netio.Connection`.

It stays behind ``httpx.AsyncClient``, so requests, responses, decoding and proxies are
httpx's (environment proxies are mounted on httpx's own transports), and every failure is
httpx's exception with httpx's meaning: ``ConnectError``/``ConnectTimeout`` before anything
was sent, ``PoolTimeout``, ``WriteError``/``WriteTimeout``, ``ReadTimeout``, ``ReadError``
(reset), ``RemoteProtocolError`` (closed early, or bytes that are not HTTP/1.1).

A connection goes back to the pool only when its answer was read to the end and both sides
allow keep-alive; an answer closed early, a cancelled request or any error closes it.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from typing import Any

import httpx

from langchain_customllm._h1wire import (
    MAX_HEAD,
    Chunked,
    Head,
    LocalWireError,
    WireError,
    head_end,
    parse_head,
    request_head,
)
from langchain_customllm._netio import Connection, wait

__all__ = ["H1Transport"]

_DEFAULT_PORTS = {b"http": 80, b"https": 443}


class _Conn:
    """A pooled connection: the protocol, its origin and when it went idle."""

    __slots__ = ("idle_since", "origin", "proto", "transport")

    def __init__(self, origin: tuple[bytes, str, int], proto: Connection, transport: Any) -> None:
        self.origin = origin
        self.proto = proto
        self.transport = transport
        self.idle_since = 0.0

    def reusable(self, now: float, expiry: float) -> bool:
        # Closed by the server, bytes nobody asked for, or idle too long: a new one is safer.
        proto = self.proto
        return not (proto.closed or proto.buffer or now - self.idle_since > expiry)


class _Body(httpx.AsyncByteStream):
    """A response body read from its connection as it arrives; frees the connection at the end."""

    __slots__ = ("_chunked", "_conn", "_done", "_head", "_left", "_owner", "_request", "_timeouts")

    def __init__(
        self,
        owner: H1Transport,
        conn: _Conn,
        head: Head,
        request: httpx.Request,
        timeouts: dict[str, Any],
    ) -> None:
        self._owner = owner
        self._conn: _Conn | None = conn
        self._head = head
        self._request = request
        # Read at each wait, not now: the caller may bound the body's reads after the head
        # came (``stream_chunk_timeout``), as httpcore allows.
        self._timeouts = timeouts
        self._left = head.length
        self._chunked = Chunked() if head.framing == "chunked" else None
        self._done = head.framing == "none" or (head.framing == "length" and not head.length)
        if self._done:
            self._finish()

    def __aiter__(self) -> _Body:
        return self

    def _take(self, buffer: bytearray) -> bytes:
        if self._chunked is not None:
            data = self._chunked.take(buffer)
            self._done = self._chunked.done
            return data
        if self._head.framing == "length":
            data = bytes(buffer[: self._left])
            self._left -= len(data)
            self._done = not self._left
        else:
            data = bytes(buffer)
        del buffer[: len(data)]
        return data

    async def __anext__(self) -> bytes:
        conn = self._conn
        if conn is None:
            raise StopAsyncIteration
        proto = conn.proto
        try:
            while True:
                data = self._take(proto.buffer) if proto.buffer else b""
                proto.consumed()
                if self._done:
                    self._finish()
                if data:
                    return data
                if self._done:
                    raise StopAsyncIteration
                if proto.closed:
                    if self._head.framing == "close" and proto.error is None:
                        self._done = True
                        self._finish()
                        raise StopAsyncIteration
                    raise _broken(proto, "peer closed connection without sending complete body")
                await proto.more(self._timeouts.get("read"), httpx.ReadTimeout)
        except (StopAsyncIteration, httpx.HTTPError):
            self._abandon()
            raise
        except WireError as exc:
            self._abandon()
            raise httpx.RemoteProtocolError(str(exc), request=self._request) from exc
        except BaseException:
            self._abandon()
            raise

    def _finish(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            extra = bool(conn.proto.buffer)  # bytes after the answer's end: not reusable
            self._owner._release(conn, self._head.keep_alive and not extra)

    def _abandon(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._owner._release(conn, False)

    async def aclose(self) -> None:
        """Close the body: its connection is closed unless the body was read to the end."""
        self._abandon()


def _broken(proto: Connection, what: str) -> httpx.HTTPError:
    if proto.error is not None:
        return httpx.ReadError(str(proto.error) or type(proto.error).__name__)
    return httpx.RemoteProtocolError(what)


def _unverified() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class H1Transport(httpx.AsyncBaseTransport):
    """One HTTP/1.1 connection pool for ``httpx.AsyncClient`` (see the module docstring).

    Args:
        verify: The TLS context for ``https`` origins, or False to skip verification.
        max_connections: Open connections at most, in use or idle; a request beyond that
            waits (``pool`` timeout, then ``httpx.PoolTimeout``).
        max_keepalive: Idle connections kept at most; the oldest beyond it are closed.
        keepalive_expiry: Seconds an idle connection is kept before it is not used again.
    """

    def __init__(
        self,
        *,
        verify: ssl.SSLContext | bool = False,
        max_connections: int = 256,
        max_keepalive: int = 64,
        keepalive_expiry: float = 5.0,
    ) -> None:
        if max_connections < 1 or max_keepalive < 0:
            raise ValueError("max_connections must be at least 1 and max_keepalive at least 0")
        self._tls = verify if isinstance(verify, ssl.SSLContext) else None
        self._verify = bool(verify)
        self._max = max_connections
        self._max_idle = max_keepalive
        self._expiry = keepalive_expiry
        self._idle: dict[tuple[bytes, str, int], list[_Conn]] = {}
        self._idle_count = 0
        self.open = 0
        """Connections open now, in use or idle (read by tests and the benchmark)."""
        self._waiters: deque[asyncio.Future[Any]] = deque()
        self._woken = 0  # waiters woken that have not looked yet: newcomers queue behind them
        self._busy: set[_Conn] = set()  # handed out, not yet released (aclose closes them)
        self._closed = False

    @property
    def in_use(self) -> int:
        """Connections carrying a request or an unread answer now."""
        return self.open - self._idle_count

    def _context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = ssl.create_default_context() if self._verify else _unverified()
        return self._tls

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` on a pooled connection; the answer's body streams from it."""
        timeouts: dict[str, Any] = request.extensions.get("timeout") or {}
        url = request.url
        scheme = url.raw_scheme
        if scheme not in _DEFAULT_PORTS:
            raise httpx.UnsupportedProtocol(f"cannot send to a {scheme.decode()!r} URL")
        host = url.raw_host.decode("ascii")
        origin = (scheme, host, url.port or _DEFAULT_PORTS[scheme])
        try:
            head_bytes = request_head(request.method, url.raw_path, request.headers.raw)
        except LocalWireError as exc:
            raise httpx.LocalProtocolError(str(exc), request=request) from exc
        conn = await self._acquire(origin, timeouts)
        try:
            try:
                await self._send(conn, request, head_bytes, timeouts.get("write"))
            except httpx.WriteError as exc:
                # The server may have answered before taking the whole body (a 413, a 401)
                # and closed: its answer says more than the broken write.
                head = await self._answer_after(conn, request.method, exc)
            else:
                head = await self._read_head(conn, request.method, timeouts.get("read"))
        except WireError as exc:
            self._release(conn, False)
            raise httpx.RemoteProtocolError(str(exc), request=request) from exc
        except BaseException:
            self._release(conn, False)
            raise
        if request.headers.get("connection", "").lower() == "close":
            head.keep_alive = False
        body = _Body(self, conn, head, request, timeouts)
        return httpx.Response(
            head.status,
            headers=head.headers,
            stream=body,
            extensions={"http_version": head.version, "reason_phrase": head.reason},
        )

    async def _acquire(self, origin: tuple[bytes, str, int], timeouts: dict[str, Any]) -> _Conn:
        loop = asyncio.get_running_loop()
        pool = timeouts.get("pool")
        deadline = None if pool is None else loop.time() + pool  # one limit for all the waiting
        woken = False
        while True:
            if self._closed:
                raise RuntimeError("the transport was closed")
            # In turn: a newcomer queues behind requests already waiting or just woken.
            if woken or not (self._waiters or self._woken):
                conn = self._take_idle(origin, loop.time())
                if conn is not None:
                    self._busy.add(conn)
                    return conn
                if self.open < self._max:
                    break
                if self._idle_count:
                    self._close(self._oldest_idle())  # make room: another origin's idle one
                    break
            waiter = loop.create_future()
            if woken:
                self._waiters.appendleft(waiter)  # woken but beaten to it: first in line again
            else:
                self._waiters.append(waiter)
            remaining = None if deadline is None else max(0.0, deadline - loop.time())
            try:
                await wait(waiter, remaining, httpx.PoolTimeout)
            except BaseException:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                elif waiter.done() and not waiter.cancelled():
                    # Woken, then cancelled or timed out before its turn: pass the turn on.
                    self._woken -= 1
                    self._wake()
                raise
            self._woken -= 1
            woken = True
        self.open += 1
        try:
            conn = await self._connect(origin, timeouts.get("connect"))
        except BaseException:
            self.open -= 1
            self._wake()
            raise
        self._busy.add(conn)
        return conn

    def _take_idle(self, origin: tuple[bytes, str, int], now: float) -> _Conn | None:
        idle = self._idle.get(origin)
        while idle:
            conn = idle.pop()
            self._idle_count -= 1
            if conn.reusable(now, self._expiry):
                return conn
            self._close(conn)
        return None

    async def _connect(self, origin: tuple[bytes, str, int], timeout: float | None) -> _Conn:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        tls: dict[str, Any] = {}
        if scheme == b"https":
            tls = {"ssl": self._context(), "server_hostname": host}
            tls["ssl_handshake_timeout"] = timeout
        try:
            transport, proto = await asyncio.wait_for(
                loop.create_connection(Connection, host, port, **tls), timeout
            )
        except (asyncio.TimeoutError, TimeoutError) as exc:
            raise httpx.ConnectTimeout(
                str(exc) or f"connecting timed out after {timeout} s"
            ) from exc
        except (OSError, ssl.SSLError) as exc:
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from exc
        # asyncio sets TCP_NODELAY on TCP connections itself.
        return _Conn(origin, proto, transport)

    async def _write(self, conn: _Conn, data: bytes, timeout: float | None) -> None:
        transport = conn.transport
        if transport.is_closing() or conn.proto.closed:
            raise _write_error(conn.proto)
        transport.write(data)
        writable = conn.proto.writable
        if writable is not None:
            await wait(writable, timeout, httpx.WriteTimeout)
            if transport.is_closing():
                raise _write_error(conn.proto)

    async def _send(
        self, conn: _Conn, request: httpx.Request, head: bytes, timeout: float | None
    ) -> None:
        stream = request.stream
        if isinstance(stream, httpx.ByteStream):
            await self._write(conn, head + request.content, timeout)
            return
        await self._write(conn, head, timeout)
        chunked = "chunked" in request.headers.get("transfer-encoding", "").lower()
        async for part in stream:  # type: ignore[union-attr]
            if part:
                framed = b"%x\r\n%b\r\n" % (len(part), part) if chunked else part
                await self._write(conn, framed, timeout)
        if chunked:
            await self._write(conn, b"0\r\n\r\n", timeout)

    async def _read_head(self, conn: _Conn, method: str, timeout: float | None) -> Head:
        proto = conn.proto
        while True:
            end = head_end(proto.buffer)
            if end < 0:
                if len(proto.buffer) > MAX_HEAD:
                    raise WireError(f"the answer's head is longer than {MAX_HEAD} bytes")
                if proto.closed:
                    raise _broken(proto, "Server disconnected without sending a response.")
                await proto.more(timeout, httpx.ReadTimeout)
                continue
            data = bytes(proto.buffer[:end])
            del proto.buffer[:end]
            proto.consumed()
            head = parse_head(data, method)
            if head.status == 101:
                raise WireError("the server switched protocols (101), which this client cannot")
            if head.status >= 200:
                return head
            # 1xx (100 Continue, 103 Early Hints): the final answer follows.

    async def _answer_after(self, conn: _Conn, method: str, error: httpx.WriteError) -> Head:
        if not conn.proto.buffer:
            raise error
        try:
            head = await self._read_head(conn, method, 0.0)
        except (httpx.HTTPError, WireError):
            raise error from None
        head.keep_alive = False
        return head

    def _release(self, conn: _Conn, reuse: bool) -> None:
        self._busy.discard(conn)
        if reuse and not self._closed and not conn.proto.closed and self._max_idle:
            conn.idle_since = asyncio.get_running_loop().time()
            self._idle.setdefault(conn.origin, []).append(conn)
            self._idle_count += 1
            if self._idle_count > self._max_idle:
                self._close(self._oldest_idle())
        else:
            self._close(conn)
        self._wake()

    def _oldest_idle(self) -> _Conn:
        lists = [idle for idle in self._idle.values() if idle]
        oldest = min(lists, key=lambda idle: idle[0].idle_since)
        self._idle_count -= 1
        return oldest.pop(0)

    def _close(self, conn: _Conn) -> None:
        self.open -= 1
        conn.transport.close()

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                self._woken += 1
                return

    async def aclose(self) -> None:
        """Close every connection, in use or idle; requests waiting for one fail."""
        self._closed = True
        for idle in self._idle.values():
            while idle:
                self._close(idle.pop())
        self._idle_count = 0
        for conn in self._busy:
            # Its answer's next read fails (the connection is lost); releasing it then
            # counts it closed.
            conn.transport.close()
        while self._waiters:  # each looks again, sees the transport closed and raises
            self._wake()


def _write_error(proto: Connection) -> httpx.WriteError:
    detail = str(proto.error) if proto.error is not None else "the server closed the connection"
    return httpx.WriteError(detail)
