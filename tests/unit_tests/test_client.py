"""The provider client's own behaviour: pooling per event loop, closing."""

from __future__ import annotations

import asyncio

import httpx
from pydantic import SecretStr

from langchain_customllm._client import ProviderClient


def make() -> ProviderClient:
    return ProviderClient(base_url="http://fake.test/v1/", api_key=SecretStr("k"))


def test_one_sync_client_reused() -> None:
    client = make()
    first = client._client()
    assert client._client() is first
    client.close()
    assert client._sync_client is None


def test_one_async_client_per_event_loop() -> None:
    # An httpx.AsyncClient is bound to the loop that opened its connections; asyncio.run()
    # twice must not reuse a client from a closed loop.
    client = make()

    async def grab() -> tuple[httpx.AsyncClient, httpx.AsyncClient]:
        return client._aclient(), client._aclient()

    a1, a2 = asyncio.run(grab())
    b1, _ = asyncio.run(grab())
    assert a1 is a2
    assert b1 is not a1


def test_user_clients_are_used_as_given() -> None:
    sync = httpx.Client()
    asyn = httpx.AsyncClient()
    client = ProviderClient(
        base_url="http://x/v1", api_key=None, http_client=sync, http_async_client=asyn
    )
    assert client._client() is sync

    async def grab() -> httpx.AsyncClient:
        return client._aclient()

    assert asyncio.run(grab()) is asyn
    client.close()
    assert not sync.is_closed  # not ours to close


def test_base_url_trailing_slash_and_timeout() -> None:
    client = ProviderClient(base_url="http://x/v1/", api_key=None, timeout=7.5)
    assert client.base_url == "http://x/v1"
    assert client.timeout.read == 7.5
