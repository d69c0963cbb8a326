"""Replicas behind one model: the routing decisions, cooldowns and the error when all rest.

The pure `ReplicaSet` is driven directly with a hand-moved clock; no I/O anywhere.
"""

from __future__ import annotations

import collections

import pytest

from langchain_customllm import (
    APIConnectionError,
    BadRequestError,
    InternalServerError,
    RateLimitError,
    ReplicasUnavailableError,
)
from langchain_customllm._replicas import Replica, ReplicaSet, is_replica_failure
from langchain_customllm._request import RequestEncoder


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _set(*weights: float, routing: str = "least_busy", **kwargs: object) -> ReplicaSet:
    import httpx

    replicas = [
        Replica(RequestEncoder(f"http://r{i}.test/v1", {}, httpx.Timeout(1.0)), weight)
        for i, weight in enumerate(weights)
    ]
    return ReplicaSet(replicas, routing, clock=Clock(), **kwargs)  # type: ignore[arg-type]


def _clock(replicas: ReplicaSet) -> Clock:
    clock = replicas.clock
    assert isinstance(clock, Clock)
    return clock


def _served(replicas: ReplicaSet, n: int, key: str | None = None) -> collections.Counter[str]:
    """Pick and end ``n`` requests one after another; which replica got each."""
    seen: collections.Counter[str] = collections.Counter()
    for _ in range(n):
        replica, check = replicas.pick(key)
        assert not check
        seen[replica.base_url] += 1
        replicas.end(replica, latency=0.01)
    return seen


def _down() -> APIConnectionError:
    return APIConnectionError("Could not connect (ConnectError: refused)")


def test_round_robin_takes_turns_and_ignores_weights() -> None:
    replicas = _set(1, 5, 1, routing="round_robin")
    assert set(_served(replicas, 300).values()) == {100}


def test_weighted_shares_follow_the_weights_exactly() -> None:
    replicas = _set(2, 1, 1, routing="weighted")
    seen = _served(replicas, 400)
    assert [seen[f"http://r{i}.test/v1"] for i in range(3)] == [200, 100, 100]


def test_weighted_spreads_a_heavy_replica_smoothly() -> None:
    # Smooth weighted round-robin: 3:1 is A A B A, never A A A B bursts of a heavier kind.
    replicas = _set(3, 1, routing="weighted")
    order = [replicas.pick()[0].base_url[7:9] for _ in range(8)]
    assert order.count("r1") == 2
    assert "r0r0r0r0" not in "".join(order)


def test_least_busy_takes_the_replica_with_the_fewest_in_flight_per_weight() -> None:
    replicas = _set(1, 1, 2)
    held = [replicas.pick()[0] for _ in range(4)]  # nothing ends: all stay in flight
    counts = collections.Counter(r.base_url for r in held)
    # Per unit of weight: r2 (weight 2) holds two when the others hold one each.
    assert counts == {"http://r0.test/v1": 1, "http://r1.test/v1": 1, "http://r2.test/v1": 2}
    replicas.end(held[0])
    assert replicas.pick()[0] is held[0]  # the one that finished is now least busy


def test_least_busy_spreads_ties_in_turn() -> None:
    replicas = _set(1, 1, 1)
    assert set(_served(replicas, 90).values()) == {30}


def test_a_sticky_key_stays_on_one_replica_and_keys_spread() -> None:
    replicas = _set(1, 1, 1)
    for key in ("session-a", "session-b", "user-42"):
        assert len(_served(replicas, 20, key)) == 1
    owners = collections.Counter()
    for i in range(600):
        replica, _ = replicas.pick(f"key-{i}")
        owners[replica.base_url] += 1
        replicas.end(replica)
    assert len(owners) == 3, owners
    assert min(owners.values()) > 120, owners


def test_a_sticky_key_moves_while_its_replica_rests_and_comes_back() -> None:
    replicas = _set(1, 1, 1, cooldown=5.0)
    home, _ = replicas.pick("s")
    replicas.end(home, _down())
    moved = _served(replicas, 5, "s")
    assert home.base_url not in moved
    assert len(moved) == 1
    _clock(replicas).now += 5.0
    assert _served(replicas, 3, "s") == {home.base_url: 3}


def test_a_failed_replica_rests_then_gets_one_trial() -> None:
    replicas = _set(1, 1, cooldown=2.0)
    bad = replicas.replicas[0]
    bad.in_flight += 1  # as if picked
    replicas.end(bad, _down())
    assert _served(replicas, 10) == {"http://r1.test/v1": 10}
    stats = replicas.stats()[0]
    assert not stats.available
    assert stats.cooling_for == pytest.approx(2.0)
    assert stats.errors == 1
    assert stats.consecutive_failures == 1
    assert stats.last_error is not None
    assert "ConnectError" in stats.last_error
    _clock(replicas).now += 2.0
    # Half-open: one trial request; while it is out, the replica takes no other.
    trial = [replicas.pick()[0] for _ in range(6)]
    assert trial.count(bad) == 1
    for replica in trial:
        replicas.end(replica)
    assert replicas.stats()[0].available
    assert replicas.stats()[0].consecutive_failures == 0


def test_the_rest_doubles_on_each_failure_up_to_the_cap() -> None:
    replicas = _set(1, 1, cooldown=5.0)
    bad = replicas.replicas[0]
    rests = []
    for _ in range(6):
        bad.in_flight += 1
        replicas.end(bad, _down())
        rests.append(replicas.stats()[0].cooling_for)
    assert rests == [5.0, 10.0, 20.0, 40.0, 60.0, 60.0]


def test_a_429_rests_the_replica_for_its_retry_after() -> None:
    replicas = _set(1, 1, cooldown=5.0)
    limited = RateLimitError("slow down", status_code=429)
    limited.retry_after = 30.0
    limited.is_retryable = True
    bad = replicas.replicas[1]
    bad.in_flight += 1
    replicas.end(bad, limited)
    assert replicas.stats()[1].cooling_for == pytest.approx(30.0)


def test_errors_of_the_request_do_not_rest_a_replica() -> None:
    replicas = _set(1, 1)
    refused = InternalServerError("invalid", status_code=500)
    refused.is_retryable = False  # a 500 that is a validation error: the request's fault
    for error in (BadRequestError("bad", status_code=400), refused):
        assert not is_replica_failure(error)
        replica = replicas.replicas[0]
        replica.in_flight += 1
        replicas.end(replica, error)
        assert replicas.stats()[0].available
        assert replicas.stats()[0].errors == 0


def test_when_every_replica_rests_the_error_lists_each_ones_failure() -> None:
    replicas = _set(1, 1, cooldown=4.0)
    server_error = InternalServerError("Server error: overloaded", status_code=503)
    server_error.is_retryable = True
    for replica, error in zip(replicas.replicas, (_down(), server_error), strict=False):
        replica.in_flight += 1
        replicas.end(replica, error)
        _clock(replicas).now += 1.0
    assert not replicas.can_fail_over(_down())
    with pytest.raises(ReplicasUnavailableError) as caught:
        replicas.pick()
    error = caught.value
    assert isinstance(error, APIConnectionError)  # caught like any unreachable server
    assert set(error.failures) == {"http://r0.test/v1", "http://r1.test/v1"}
    assert "ConnectError" in error.failures["http://r0.test/v1"]
    assert "overloaded" in error.failures["http://r1.test/v1"]
    assert "http://r0.test/v1" in str(error)
    assert "overloaded" in str(error)
    assert error.retry_after == pytest.approx(2.0)  # r0 rejoins first
    assert error.is_retryable
    # The last replica error of a call becomes this one, with the error as its cause.
    explained = replicas.explain(server_error)
    assert isinstance(explained, ReplicasUnavailableError)
    assert explained.__cause__ is server_error


def test_one_replica_is_never_rested() -> None:
    replicas = _set(1)
    only = replicas.replicas[0]
    for _ in range(3):
        picked, _ = replicas.pick()
        replicas.end(picked, _down())
    assert replicas.pick()[0] is only
    assert replicas.stats()[0].errors == 3
    assert replicas.stats()[0].available
    assert not replicas.can_fail_over(_down())
    assert replicas.explain(_down()).__class__ is APIConnectionError


def test_a_health_check_is_due_when_a_rested_replica_rejoins() -> None:
    replicas = _set(1, 1, cooldown=1.0, health_check="/health")
    bad = replicas.replicas[0]
    bad.in_flight += 1
    replicas.end(bad, _down())
    _clock(replicas).now += 1.0
    due = [replicas.pick() for _ in range(2)]
    assert (bad, True) in due  # the trial comes with its check
    assert all(check is False for replica, check in due if replica is not bad)


def test_latency_is_a_moving_average_of_successes() -> None:
    replicas = _set(1)
    only = replicas.replicas[0]
    for seconds in (0.1, 0.2):
        replicas.pick()
        replicas.end(only, latency=seconds)
    assert replicas.stats()[0].latency_ms == pytest.approx(120.0)


def test_release_frees_the_slot_without_a_verdict() -> None:
    replicas = _set(1, 1, cooldown=1.0)
    bad = replicas.replicas[0]
    bad.in_flight += 1
    replicas.end(bad, _down())
    _clock(replicas).now += 1.0
    trial = next(r for r, _ in (replicas.pick() for _ in range(2)) if r is bad)
    replicas.release(trial)  # cancelled: still failed once, free for another trial
    assert bad.in_flight == 0
    assert bad.failures == 1
    assert not bad.trial
