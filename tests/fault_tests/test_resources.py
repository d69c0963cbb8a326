"""Nothing leaks: abandoned, failed and completed streams give their connections back.

A keep-alive server holds each stream open mid-answer (as a model still generating does);
the client walks away 1,000 times -- ``break`` out of ``stream``, ``break`` out of
``astream``, cancelling the task that iterates ``astream`` -- and neither the sockets the
server sees open nor the client's connection pool may grow. A connection whose response was
abandoned must be closed (its body was not read to the end, so it cannot be reused); one
whose response completed must go back to the pool and be reused.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from langchain_customllm import CustomLLMError
from tests._calls import text_of
from tests.fault_tests._helpers import (
    MODEL_CLASSES,
    PIECES,
    PROMPT,
    TEXT,
    Recorder,
    build_model,
    within_watchdog,
)
from tests.servers.faulty import (
    DIALECTS,
    FaultyServer,
    json_answer,
    status_error,
    stream,
)

N = 1000
CHECK_EVERY = 100
# Between calls nothing is in flight: once the abandoned stream is closed (at once for
# `stream`; for `astream`, when the loop runs the generator's finalizer) the server must see
# no open socket. Peak: the next stream may open before the server notices the last close.
SETTLED_OPEN = 0
PEAK_OPEN = 4
SETTLE_S = 3.0


def sync_pool(model: Any) -> Any:
    client = model._runtime().client.pools._sync
    assert client is not None, "the model made no sync client"
    return client._transport._pool


class _AsyncPool:
    """Our async transport (`_h1.H1Transport`), seen through the sync pool's questions."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport

    def open_count(self) -> int:
        return int(self.transport.open)

    def busy(self) -> int:
        return int(self.transport.in_use)


class _SyncPool:
    """httpcore's sync pool: its connections, busy unless idle or closed."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    def open_count(self) -> int:
        return len(list(self.pool.connections))

    def busy(self) -> int:
        return sum(1 for c in list(self.pool.connections) if not (c.is_idle() or c.is_closed()))


def async_pool(model: Any) -> Any:
    entry = model._runtime().client.pools._async.get(asyncio.get_running_loop())
    assert entry is not None, "the model made no async client for this loop"
    return _AsyncPool(entry[0]._transport)


def assert_pool_settled(pool: Any) -> None:
    """At most one connection, and none still carrying an abandoned response."""
    if not isinstance(pool, _AsyncPool):
        pool = _SyncPool(pool)
    assert pool.open_count() <= 1, f"the pool holds {pool.open_count()} connections"
    assert not pool.busy(), f"{pool.busy()} connections still busy with an abandoned response"


def hold_open(server: FaultyServer, chat: bool) -> None:
    """Every request: two pieces of a stream, then silence until the client leaves."""
    dialect = DIALECTS[("openai", chat)]
    server.default = stream(dialect.piece_events(PIECES[:2]), end="hang")


def check_server(server: FaultyServer) -> None:
    open_now = server.wait_for_open_connections(SETTLED_OPEN, SETTLE_S)
    assert open_now <= SETTLED_OPEN, f"{open_now} connections still open on the server"


@pytest.mark.parametrize("cls_name", ["chat", "text"])
def test_break_out_of_stream(server: FaultyServer, cls_name: str) -> None:
    hold_open(server, cls_name == "chat")
    model = build_model(
        MODEL_CLASSES[cls_name], DIALECTS[("openai", cls_name == "chat")], server.url, timeout=5
    )
    n = N if cls_name == "chat" else N // 10

    def run() -> None:
        for i in range(n):
            for chunk in model.stream(PROMPT):
                assert text_of(chunk) == PIECES[0]
                break
            if (i + 1) % CHECK_EVERY == 0:
                assert_pool_settled(sync_pool(model))
                check_server(server)

    within_watchdog(run, limit=60)
    assert server.attempts == n
    assert server.peak_open_connections <= PEAK_OPEN
    assert not server.handler_errors


@pytest.mark.parametrize("cls_name", ["chat", "text"])
def test_break_out_of_astream(server: FaultyServer, cls_name: str) -> None:
    hold_open(server, cls_name == "chat")
    model = build_model(
        MODEL_CLASSES[cls_name], DIALECTS[("openai", cls_name == "chat")], server.url, timeout=5
    )
    n = N if cls_name == "chat" else N // 10

    async def run() -> None:
        for i in range(n):
            async for chunk in model.astream(PROMPT):
                assert text_of(chunk) == PIECES[0]
                break
            if (i + 1) % CHECK_EVERY == 0:
                await settle(server, model)
        await settle(server, model)
        await model.aclose()

    within_watchdog(lambda: asyncio.run(run()), limit=60)
    assert server.attempts == n
    assert server.peak_open_connections <= PEAK_OPEN


def _busy(pool: Any) -> int:
    return int(pool.busy())


async def settle(server: FaultyServer, model: Any) -> None:
    """Let abandoned async generators finalize (their aclose runs as a loop task), then
    check that the server and the pool are back to rest."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE_S
    pool = async_pool(model)
    while (server.open_connections > SETTLED_OPEN or _busy(pool)) and loop.time() < deadline:
        await asyncio.sleep(0.01)
    assert server.open_connections <= SETTLED_OPEN, (
        f"{server.open_connections} connections still open on the server"
    )
    assert_pool_settled(pool)


@pytest.mark.parametrize("cls_name", ["chat", "text"])
def test_cancel_astream_task(server: FaultyServer, cls_name: str) -> None:
    hold_open(server, cls_name == "chat")
    model = build_model(
        MODEL_CLASSES[cls_name], DIALECTS[("openai", cls_name == "chat")], server.url, timeout=5
    )
    n = N if cls_name == "chat" else N // 10

    async def one() -> None:
        first = asyncio.Event()

        async def consume() -> None:
            async for _chunk in model.astream(PROMPT):
                first.set()  # then wait inside the stream for more: the server is silent

        task = asyncio.create_task(consume())
        await asyncio.wait_for(first.wait(), 5)
        await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert task.cancelled()

    async def run() -> None:
        for i in range(n):
            await one()
            if (i + 1) % CHECK_EVERY == 0:
                await settle(server, model)
        await settle(server, model)
        await model.aclose()

    within_watchdog(lambda: asyncio.run(run()), limit=60)
    assert server.attempts == n
    assert server.peak_open_connections <= PEAK_OPEN


def test_failed_streams_release_their_connections(server: FaultyServer) -> None:
    """Streams that end in errors (mid-stream error, cut, no end, 5xx) leak nothing."""
    dialect = DIALECTS[("openai", True)]
    faults = [
        stream([*dialect.piece_events(PIECES[:2]), dialect.error_event("boom")]),
        stream(dialect.piece_events(PIECES[:2]), end="close"),
        stream(dialect.piece_events(PIECES)),
        status_error(500),
        stream(dialect.piece_events(PIECES[:2]), end="reset"),
    ]
    rounds = 20
    for _ in range(rounds):
        server.script(*faults)
    model = build_model(MODEL_CLASSES["chat"], dialect, server.url, Recorder(), max_retries=0)

    def run() -> int:
        errors = 0
        for i in range(rounds * len(faults)):
            try:
                list(model.stream(PROMPT))
            except CustomLLMError:
                errors += 1
            if (i + 1) % 10 == 0:
                assert_pool_settled(sync_pool(model))
                check_server(server)
        return errors

    assert within_watchdog(run, limit=60) == rounds * len(faults)
    assert server.peak_open_connections <= PEAK_OPEN


@pytest.mark.parametrize("method", ["invoke", "ainvoke", "stream", "astream"])
def test_completed_answers_reuse_one_connection(server: FaultyServer, method: str) -> None:
    """Keep-alive: 50 complete answers in a row travel over one TCP connection.

    A stream that ended with ``[DONE]`` is complete; its connection must go back to the
    pool, not be closed and replaced (a new TCP, and with https a new TLS, handshake on
    every streamed call).
    """
    dialect = DIALECTS[("openai", True)]
    streamed = method in ("stream", "astream")
    answer = stream(dialect.full_stream(PIECES)) if streamed else json_answer(dialect.whole(TEXT))
    server.default = answer
    model = build_model(MODEL_CLASSES["chat"], dialect, server.url, timeout=5)
    n = 50

    def run_sync() -> list[str]:
        if method == "invoke":
            return [text_of(model.invoke(PROMPT)) for _ in range(n)]
        return ["".join(text_of(c) for c in model.stream(PROMPT)) for _ in range(n)]

    async def run_async() -> list[str]:
        out: list[str] = []
        for _ in range(n):
            if method == "ainvoke":
                out.append(text_of(await model.ainvoke(PROMPT)))
            else:
                out.append("".join([text_of(c) async for c in model.astream(PROMPT)]))
        await model.aclose()
        return out

    runner = run_sync if method in ("invoke", "stream") else lambda: asyncio.run(run_async())
    texts = within_watchdog(runner, limit=30)
    assert texts == [TEXT] * n
    assert server.attempts == n
    assert server.accepted == 1, (
        f"{n} complete {'streams' if streamed else 'answers'} opened {server.accepted} "
        "connections; keep-alive should have reused one"
    )
