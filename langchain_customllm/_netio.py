"""One client connection on asyncio: the protocol that buffers what the server sends.

The async transport (`_h1`) reads and writes through an `asyncio.Protocol` per connection
rather than asyncio streams or anyio: received bytes wait in one ``bytearray`` that the
HTTP/1.1 reader parses in place (reading pauses above `_HIGH_WATER` until it catches up),
writes go straight to the transport (waiting only while asyncio's write buffer is full), and
every timeout is one timer on one future. On the 2-core bench machine anyio's cancel scopes
and stream wrappers cost more CPU per request than the HTTP/1.1 exchange itself
(``bench/RESULTS.md``, the gateway section); this package's async clients only run on
asyncio, so that layer bought nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

__all__ = ["Connection", "wait"]

_HIGH_WATER = 1 << 18  # bytes kept unread before the socket stops being read
_TIMED_OUT = object()


def _expire(waiter: asyncio.Future[Any]) -> None:
    if not waiter.done():
        waiter.set_result(_TIMED_OUT)


class Connection(asyncio.Protocol):
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

    def consumed(self) -> None:
        """The reader took bytes from `buffer`: resume reading once it is half empty."""
        if self.reading_paused and len(self.buffer) <= _HIGH_WATER // 2:
            self.reading_paused = False
            if self.transport is not None:
                self.transport.resume_reading()

    async def more(self, timeout: float | None, error: Callable[[str], Exception]) -> None:
        """Wait until bytes arrive or the connection ends (``error`` after ``timeout`` s)."""
        self.waiter = asyncio.get_running_loop().create_future()
        try:
            await wait(self.waiter, timeout, error)
        finally:
            self.waiter = None

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


async def wait(
    future: asyncio.Future[Any], timeout: float | None, error: Callable[[str], Exception]
) -> None:
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
