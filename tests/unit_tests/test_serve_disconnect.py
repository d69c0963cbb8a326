"""`unless_client_leaves`: a whole answer is cancelled when its client disconnects (no socket)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import Any

import pytest

from langchain_customllm.serve.streaming import ClientGoneError, unless_client_leaves


class _Client:
    """An ASGI ``receive`` whose next message is the disconnect, once ``leave()`` is called."""

    def __init__(self) -> None:
        self.left = asyncio.Event()
        self.asked = 0

    async def receive(self) -> dict[str, Any]:
        self.asked += 1
        await self.left.wait()
        return {"type": "http.disconnect"}


def _cancel_count() -> int:
    task = asyncio.current_task()
    assert task is not None
    return task.cancelling() if sys.version_info >= (3, 11) else 0


async def test_the_answer_is_returned_and_the_watcher_stops() -> None:
    client = _Client()

    async def work() -> str:
        await asyncio.sleep(0)
        return "answer"

    assert await unless_client_leaves(client.receive, work()) == "answer"
    await asyncio.sleep(0)
    assert client.asked == 1  # the watcher listened, then was stopped
    assert len(asyncio.all_tasks()) == 1  # only this test's task is left


async def test_a_client_that_leaves_cancels_the_work() -> None:
    client = _Client()
    cancelled = asyncio.Event()

    async def work() -> str:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    asyncio.get_running_loop().call_later(0.01, client.left.set)
    with pytest.raises(ClientGoneError):
        await unless_client_leaves(client.receive, work())
    assert cancelled.is_set()
    assert _cancel_count() == 0  # the watcher's cancellation was taken back
    await asyncio.sleep(0)  # and this task can still await


async def test_work_that_swallows_the_cancellation_still_counts_as_gone() -> None:
    client = _Client()

    async def stubborn() -> str:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(30)
        return "late"

    asyncio.get_running_loop().call_later(0.01, client.left.set)
    with pytest.raises(ClientGoneError):
        await unless_client_leaves(client.receive, stubborn())
    assert _cancel_count() == 0


async def test_a_cancellation_from_outside_is_not_swallowed() -> None:
    client = _Client()
    started = asyncio.Event()

    async def work() -> None:
        started.set()
        await asyncio.sleep(30)

    task = asyncio.ensure_future(unless_client_leaves(client.receive, work()))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
