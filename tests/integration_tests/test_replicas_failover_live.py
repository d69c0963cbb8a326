"""Failover on real llama.cpp servers: one replica of three is killed mid-run (issue 18).

A mixed load (invoke and ainvoke, stream and astream, sync ones in threads) runs against
three replicas; one is SIGKILLed while it is generating a stream, then restarted on the
same port. What must hold:

- no non-streamed request fails: those in flight on the dead replica, and those sent to it
  before its first failure was noted, fail before any output and go to another replica;
- a stream it was generating ends with `StreamError` carrying the text so far (it is never
  re-sent); a stream that had no output yet is failed over like a whole request;
- once its first failure is noted, no request is sent to it while it cools down. The issue
  asks for "none within 1 s of the kill"; what is checked is stronger and holds on any
  machine: from the moment the model marks it unavailable until its cooldown (3 s) ends,
  its request counter does not move while the others' do. The time from the kill to that
  moment is bounded only generously (10 s): the reset connections report it at once (tens
  of ms here), and a timing bound tight enough to measure speed would fail on a loaded CI
  runner (speed is the benchmark's job);
- after the restart it rejoins once its cooldown ends and answers requests again.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from langchain_customllm import (
    ChatCustomLLM,
    ReplicasUnavailableError,
    StreamError,
    StreamInterruptedError,
)
from tests.integration_tests._replica_fixtures import REPLICA_PORT, Replica, stats_by_url
from tests.integration_tests.conftest import MODEL

pytestmark = pytest.mark.integration

PROMPT = "Say hi."
STREAM_PROMPT = "Count from one to fifty in words, separated by commas."
STREAM_TOKENS = 64
COOLDOWN = 3.0
NOTICE_BOUND_S = 10.0
REJOIN_BOUND_S = 90.0
# Ports in our range where nothing listens: replicas that refuse every connection.
DEAD_PORTS = (REPLICA_PORT + 11, REPLICA_PORT + 12)


@dataclass
class Outcome:
    """One request of the load: which path, when, who answered, how it ended."""

    path: str
    started: float
    ended: float = 0.0
    replica: str | None = None
    error: BaseException | None = None
    chunks: int = 0


class Load:
    """A mixed load on one model until `stop()`: async workers, and sync ones in threads."""

    def __init__(self, model: ChatCustomLLM) -> None:
        self.model = model
        self.outcomes: list[Outcome] = []  # list.append is atomic: threads append too
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._sync_worker, args=(path,), daemon=True)
            for path in ("invoke", "stream", "invoke", "stream")
        ]
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for thread in self._threads:
            thread.start()
        for path in ("ainvoke", "astream") * 3:
            self._tasks.append(asyncio.create_task(self._async_worker(path)))

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)
        for thread in self._threads:
            await asyncio.to_thread(thread.join, 120)
            assert not thread.is_alive(), "a sync worker did not end"

    def succeeded_on(self, replica: str, since: float) -> int:
        return sum(
            1
            for o in list(self.outcomes)
            if o.error is None and o.replica == replica and o.started >= since
        )

    def _sync_worker(self, path: str) -> None:
        while not self._stop.is_set():
            outcome = Outcome(path, time.monotonic())
            try:
                if path == "invoke":
                    outcome.replica = self.model.invoke(PROMPT).response_metadata["replica"]
                else:
                    for chunk in self.model.stream(STREAM_PROMPT, max_tokens=STREAM_TOKENS):
                        outcome.chunks += 1
                        outcome.replica = chunk.response_metadata.get("replica", outcome.replica)
            except Exception as exc:
                outcome.error = exc
            outcome.ended = time.monotonic()
            self.outcomes.append(outcome)

    async def _async_worker(self, path: str) -> None:
        while not self._stop.is_set():
            outcome = Outcome(path, time.monotonic())
            try:
                if path == "ainvoke":
                    answer = await self.model.ainvoke(PROMPT)
                    outcome.replica = answer.response_metadata["replica"]
                else:
                    async for chunk in self.model.astream(STREAM_PROMPT, max_tokens=STREAM_TOKENS):
                        outcome.chunks += 1
                        outcome.replica = chunk.response_metadata.get("replica", outcome.replica)
            except Exception as exc:
                outcome.error = exc
            outcome.ended = time.monotonic()
            self.outcomes.append(outcome)


async def _until(what: str, check: Callable[[], Any], bound: float, every: float = 0.005) -> Any:
    """Poll ``check()`` until it is truthy (the model has no event to await); its value."""
    deadline = time.monotonic() + bound
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {bound:g} s: {what}")
        await asyncio.sleep(every)
    return value


async def _generating(replica: Replica, client: httpx.AsyncClient, tokens: int = 4) -> bool:
    """Whether llama-server is generating a request that already has ``tokens`` tokens out.

    Its ``/slots`` lists each slot's task; a stream with output on the replica is what the
    kill must cut.
    """
    response = await client.get(replica.root + "/slots")
    response.raise_for_status()
    slots = response.json()
    return any(slot.get("is_processing") and _decoded(slot) >= tokens for slot in slots)


def _decoded(slot: dict[str, Any]) -> int:
    next_token = slot.get("next_token")
    if isinstance(next_token, list):
        next_token = next_token[0] if next_token else {}
    return int((next_token or {}).get("n_decoded", 0))


def test_the_harness_kills_and_restarts_a_replica_on_its_port(
    chat_replicas: list[Replica],
) -> None:
    """What the failover test relies on, without the model: a SIGKILLed replica refuses
    connections at once, and its restart answers on the same port as a new process."""
    replica = chat_replicas[2]
    old_pid = replica.pid
    assert httpx.get(replica.root + "/health", timeout=10, trust_env=False).status_code == 200
    replica.kill()
    with pytest.raises(httpx.ConnectError):
        httpx.get(replica.root + "/health", timeout=10, trust_env=False)
    replica.restart()
    assert replica.pid not in (None, old_pid)
    assert httpx.get(replica.root + "/health", timeout=10, trust_env=False).status_code == 200


async def test_killing_a_replica_mid_run_fails_nothing_but_its_streams(
    chat_replicas: list[Replica], closing: Callable[[Any], Any]
) -> None:
    victim = chat_replicas[1]
    model = closing(
        ChatCustomLLM(
            model=MODEL,
            base_url=[r.base_url for r in chat_replicas],
            replica_cooldown=COOLDOWN,
            max_tokens=2,
            temperature=0,
        )
    )
    others = [r.base_url for r in chat_replicas if r is not victim]
    load = Load(model)
    load.start()
    try:
        async with httpx.AsyncClient(trust_env=False, timeout=10) as client:
            deadline = time.monotonic() + 60
            while not await _generating(victim, client):
                assert time.monotonic() < deadline, "the victim never generated a stream"
                await asyncio.sleep(0.02)
        killed_at = time.monotonic()
        await asyncio.to_thread(victim.kill)

        # The first failure noted: the model marks the replica unavailable.
        def noted() -> Any:
            stats = stats_by_url(model)[victim.base_url]
            return None if stats.available else stats

        first = await _until("the kill noticed", noted, NOTICE_BOUND_S)
        noted_at = time.monotonic()
        others_before = sum(stats_by_url(model)[url].requests for url in others)
        # From now until its cooldown ends, nothing may be sent to it. It is restarted 1 s
        # in, while it still cools: the model cannot know, and must wait all the same; and
        # the one request let through when the rest ends then finds it up.
        sent_while_cooling = []
        restart: asyncio.Future[Replica] | None = None
        restarted_at = 0.0
        while (now := stats_by_url(model)[victim.base_url]).cooling_for > 0.05:
            if now.requests != first.requests:
                sent_while_cooling.append(now)
            if restart is None and time.monotonic() - noted_at >= 1.0:
                restarted_at = time.monotonic()
                restart = asyncio.ensure_future(asyncio.to_thread(victim.restart))
            await asyncio.sleep(0.01)
        cooled_until = time.monotonic()
        others_during = sum(stats_by_url(model)[url].requests for url in others) - others_before
        print(
            f"kill noticed after {(noted_at - killed_at) * 1000:.0f} ms; it cooled "
            f"{cooled_until - noted_at:.2f} s (consecutive failures: "
            f"{stats_by_url(model)[victim.base_url].consecutive_failures}) with "
            f"{others_during} requests to the others and {len(sent_while_cooling)} "
            "samples showing a request to it"
        )
        assert restart is not None, "its cooldown (3 s) ended within 1 s"
        await restart
        assert not sent_while_cooling, sent_while_cooling[:3]
        assert others_during >= 5, "the load stopped: the check above proved nothing"
        assert first.errors >= 1
        assert first.last_error

        await _until(
            "the restarted replica answers again",
            lambda: load.succeeded_on(victim.base_url, cooled_until) >= 3,
            REJOIN_BOUND_S,
            every=0.05,
        )
        rejoined_at = time.monotonic()
        print(
            f"restarted {restarted_at - noted_at:.1f} s after the kill was noticed; answering "
            f"again {rejoined_at - cooled_until:.1f} s after its cooldown ended"
        )
    finally:
        await load.stop()

    outcomes = load.outcomes
    whole = [o for o in outcomes if o.path in ("invoke", "ainvoke")]
    streams = [o for o in outcomes if o.path in ("stream", "astream")]
    failed_whole = [(o.path, repr(o.error)) for o in whole if o.error is not None]
    assert not failed_whole, failed_whole
    cut = [o for o in streams if o.error is not None]
    assert all(isinstance(o.error, StreamError) for o in cut), [repr(o.error) for o in cut]
    cut_errors = [o.error for o in cut if isinstance(o.error, StreamError)]
    assert cut_errors, "the victim was generating a stream, and no stream was cut"
    # Cut after output began: the text so far comes with the error; never re-sent. A broken
    # connection says so by its type (a StreamError and an APIConnectionError).
    assert all(isinstance(e, StreamInterruptedError) for e in cut_errors), cut_errors
    assert all(e.partial_text for e in cut_errors), [e.partial_text for e in cut_errors]
    assert all(o.chunks >= 1 for o in cut)
    # Nothing answered by the victim while it cooled.
    answered_while_cooling = [
        o
        for o in outcomes
        if o.error is None and o.replica == victim.base_url and noted_at < o.started < cooled_until
    ]
    assert not answered_while_cooling
    stats = stats_by_url(model)[victim.base_url]
    assert stats.available
    assert stats.consecutive_failures == 0
    print(
        f"{len(whole)} whole requests, none failed; {len(streams)} streams, {len(cut)} cut "
        f"with partial text; victim stats {stats}"
    )


async def test_every_replica_down_is_one_error_naming_each(
    chat_replicas: list[Replica], closing: Callable[[Any], Any]
) -> None:
    dead = [f"http://127.0.0.1:{port}/v1" for port in DEAD_PORTS]
    model = closing(ChatCustomLLM(model=MODEL, base_url=dead, max_tokens=1, max_retries=1))
    with pytest.raises(ReplicasUnavailableError) as info:
        await model.ainvoke(PROMPT)
    assert set(info.value.failures) == set(dead)
    for url in dead:
        assert url in str(info.value)
    assert all(not s.available for s in model.replica_stats())


def test_active_health_checks_find_the_dead_replica(chat_replicas: list[Replica]) -> None:
    live, dead = chat_replicas[0].base_url, f"http://127.0.0.1:{DEAD_PORTS[0]}/v1"
    with ChatCustomLLM(model=MODEL, base_url=[live, dead], health_check="/health") as model:
        model.check_replicas()
        stats = stats_by_url(model)
        assert stats[live].available
        assert not stats[dead].available
        assert stats[dead].last_error
        # Requests now go to the live one only, without a failed attempt first.
        for _ in range(4):
            answer = model.invoke(PROMPT, max_tokens=1)
            assert answer.response_metadata["replica"] == live
        assert stats_by_url(model)[dead].requests == 0
