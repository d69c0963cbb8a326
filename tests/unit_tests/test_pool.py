"""The sharded async transport: which pool a request goes to, and when it is released."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from langchain_customllm import ChatCustomLLM
from langchain_customllm._pool import ShardedAsyncTransport


class _Pool(httpx.AsyncBaseTransport):
    """A fake pool: answers with a streamed body, or fails, and records what it served."""

    def __init__(self, name: int, fail: bool = False) -> None:
        self.name = name
        self.fail = fail
        self.served = 0
        self.closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.served += 1
        if self.fail:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, stream=httpx.ByteStream(b"body"), request=request)

    async def aclose(self) -> None:
        self.closed = True


def _transport(shards: int = 3, per_shard: int = 2) -> tuple[ShardedAsyncTransport, list[_Pool]]:
    pools: list[_Pool] = []

    def factory(limits: httpx.Limits) -> httpx.AsyncBaseTransport:
        pools.append(_Pool(len(pools)))
        return pools[-1]

    return ShardedAsyncTransport(shards, per_shard, factory=factory), pools


def _request() -> httpx.Request:
    return httpx.Request("POST", "http://fake.test/v1/chat/completions")


def test_sequential_requests_reuse_the_first_pool() -> None:
    transport, pools = _transport()

    async def run() -> None:
        for _ in range(5):
            response = await transport.handle_async_request(_request())
            assert await response.aread() == b"body"
            await response.aclose()

    asyncio.run(run())
    assert [p.served for p in pools] == [5, 0, 0]
    assert transport.in_flight == [0, 0, 0]


def test_concurrent_requests_fill_pools_in_order_then_the_least_busy() -> None:
    transport, pools = _transport(shards=3, per_shard=2)

    async def run() -> list[httpx.Response]:
        return [await transport.handle_async_request(_request()) for _ in range(8)]

    responses = asyncio.run(run())
    # 2 + 2 + 2 up to per_shard, then the least busy (the first of equals) takes each next.
    assert [p.served for p in pools] == [3, 3, 2]
    assert transport.in_flight == [3, 3, 2]

    async def close(which: list[httpx.Response]) -> None:
        for response in which:
            await response.aclose()

    asyncio.run(close(responses[2:4]))  # two of the second pool's three
    assert transport.in_flight == [3, 1, 2]
    asyncio.run(close(responses))  # closing twice releases once
    assert transport.in_flight == [0, 0, 0]


def test_a_failed_request_is_released() -> None:
    transport, pools = _transport()
    pools[0].fail = True

    async def run() -> None:
        with pytest.raises(httpx.ConnectError):
            await transport.handle_async_request(_request())

    asyncio.run(run())
    assert transport.in_flight == [0, 0, 0]


def test_aclose_closes_every_pool() -> None:
    transport, pools = _transport()
    asyncio.run(transport.aclose())
    assert all(p.closed for p in pools)


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ShardedAsyncTransport(0, 4)


def test_our_async_clients_use_it_and_a_users_does_not() -> None:
    ours = ChatCustomLLM(model="m")._runtime().client.pools
    users = httpx.AsyncClient()
    theirs = ChatCustomLLM(model="m", http_async_client=users)._runtime().client.pools

    async def grab() -> tuple[httpx.AsyncClient, httpx.AsyncClient]:
        return ours.async_(), theirs.async_()

    mine, given = asyncio.run(grab())
    assert isinstance(mine._transport, ShardedAsyncTransport)
    assert given is users
