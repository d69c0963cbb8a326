"""An async transport that spreads requests over several small httpx connection pools.

httpcore 1.0's pool does work proportional to (connections x idle connections) each time a
request starts or ends (`_assign_requests_to_connections` checks every connection's
``is_idle()`` once per idle connection). With the 64 kept-alive connections that
``abatch(max_concurrency=64)`` needs, that bookkeeping costs more CPU than the HTTP itself:
measured here, 59-64 requests/s on loopback with one 256/64 pool, 87 with httpx's default
100/20, and 280-295 with 16-32 pools of 16/4 or 8/2 (`bench/RESULTS.md`).

`ShardedAsyncTransport` keeps httpx's own transport, error types, timeouts and streaming, and
only decides which small pool a request goes to: the first one with fewer than
``per_shard`` requests in flight (so sequential calls always reuse one connection in the
first pool), else the least busy. A request counts as in flight until its response is
closed, which every caller of httpx does (our client closes streams in ``finally``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx

from langchain_customllm._netio import use_asyncio_backend

__all__ = ["ShardedAsyncTransport"]


class _Released(httpx.AsyncByteStream):
    """A response body that tells its pool the request is done when it is closed."""

    __slots__ = ("_release", "_stream")

    def __init__(self, stream: httpx.AsyncByteStream, release: Callable[[], None]) -> None:
        self._stream = stream
        self._release: Callable[[], None] | None = release

    def __aiter__(self) -> AsyncIterator[bytes]:
        # The inner iterator itself: no extra hop per chunk of a stream.
        return self._stream.__aiter__()

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            release, self._release = self._release, None
            if release is not None:
                release()


class ShardedAsyncTransport(httpx.AsyncBaseTransport):
    """Several small `httpx.AsyncHTTPTransport` pools behind one transport (see module).

    Args:
        shards: How many pools.
        per_shard: Requests in flight a pool takes before the next one is used.
        limits: Each pool's limits (its connections and kept-alive connections).
        factory: Builds one pool's transport from ``limits`` (tests pass fakes); by default
            `httpx.AsyncHTTPTransport` with ``transport_options``, its connections on
            asyncio directly (`use_asyncio_backend`).
        **transport_options: Passed to `httpx.AsyncHTTPTransport` (``verify``, ...).
    """

    def __init__(
        self,
        shards: int = 16,
        per_shard: int = 4,
        limits: httpx.Limits | None = None,
        factory: Callable[[httpx.Limits], httpx.AsyncBaseTransport] | None = None,
        **transport_options: object,
    ) -> None:
        if shards < 1 or per_shard < 1:
            raise ValueError("shards and per_shard must be at least 1")
        limits = limits or httpx.Limits(max_connections=16, max_keepalive_connections=4)
        if factory is None:

            def factory(pool_limits: httpx.Limits) -> httpx.AsyncBaseTransport:
                transport = httpx.AsyncHTTPTransport(limits=pool_limits, **transport_options)  # type: ignore[arg-type]
                return use_asyncio_backend(transport)

        self._shards = [factory(limits) for _ in range(shards)]
        self._per_shard = per_shard
        self.in_flight = [0] * shards
        """Requests in flight per pool (read by tests and the benchmark)."""

    def _pick(self) -> int:
        busy = self.in_flight
        for index, count in enumerate(busy):
            if count < self._per_shard:
                return index
        return busy.index(min(busy))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send the request through the chosen pool; it stays counted until closed."""
        index = self._pick()
        self.in_flight[index] += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self.in_flight[index] -= 1

        try:
            response = await self._shards[index].handle_async_request(request)
        except BaseException:
            release()
            raise
        stream = response.stream
        assert isinstance(stream, httpx.AsyncByteStream)
        response.stream = _Released(stream, release)
        return response

    async def aclose(self) -> None:
        """Close every pool."""
        for shard in self._shards:
            await shard.aclose()
