"""Several replicas behind one model: which one gets a request, and which ones rest.

A `ReplicaSet` is pure state and decisions, no I/O: the client asks it for a replica before
each attempt (`pick`), tells it when the attempt ends and how (`end`), and asks whether a
failed request can go to another replica at once (`can_fail_over`). Routing:

- ``least_busy`` (default): the fewest requests in flight per unit of weight, ties in turn;
- ``round_robin``: in turn, weights ignored;
- ``weighted``: smooth weighted round-robin (each replica's share is its weight's share);
- a route key (``sticky_key``): rendezvous hashing, so one key stays on one replica while it
  is healthy and moves only if that one rests.

Health: a replica that could not be reached, timed out, or answered 5xx, 429 or 408 rests
(``replica_cooldown`` seconds, a 429's ``Retry-After`` instead, doubled on each failed
trial up to ``max(60, cooldown)``); then one request is let through (half-open, after an
active check when ``health_check`` is set): success rejoins it, failure rests it longer.
Requests already in flight when a replica failed are counted as errors, but do not
lengthen its rest: one crash is one failure, however many requests it cut.
With one replica none of this applies: it is always tried, as a plain ``base_url`` is.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from langchain_customllm._exceptions import (
    APIConnectionError,
    CustomLLMError,
    InternalServerError,
    RateLimitError,
    RequestTimeoutError,
)
from langchain_customllm._request import RequestEncoder

__all__ = [
    "ROUTINGS",
    "Replica",
    "ReplicaSet",
    "ReplicaStats",
    "ReplicasUnavailableError",
    "is_replica_failure",
]

ROUTINGS = ("least_busy", "round_robin", "weighted")
_MAX_COOLDOWN = 60.0
_EWMA = 0.2  # weight of the newest latency in the moving average

_FAILURES = (APIConnectionError, InternalServerError, RateLimitError, RequestTimeoutError)


def is_replica_failure(error: BaseException) -> bool:
    """Whether ``error`` says the replica, not the request, is at fault (it then rests).

    Unreachable, timed out, broken connections, 5xx, 429 and 408 do; a request the server
    refused (400, 401, 404, a 500 that is a validation error) or an answer we cannot read
    would fail on any replica, so they do not.
    """
    return isinstance(error, _FAILURES) and bool(getattr(error, "is_retryable", False))


class ReplicasUnavailableError(APIConnectionError):
    """Every replica of the model is resting after a failure; none can take the request.

    Attributes:
        failures: Each replica's base URL and its last failure.
    """

    def __init__(self, message: str, *, failures: dict[str, str], retry_after: float) -> None:
        super().__init__(message)
        self.failures = failures
        self.retry_after = retry_after


@dataclass(frozen=True)
class ReplicaStats:
    """What one replica did so far and how it stands (``model.replica_stats()``).

    Attributes:
        base_url: The replica's API root.
        weight: Its weight in routing.
        in_flight: Requests (and open streams) it is serving now.
        requests: Requests sent to it.
        errors: Those that failed because of it (see `is_replica_failure`).
        consecutive_failures: Failures since its last success (0: healthy).
        available: Whether it takes new requests now.
        cooling_for: Seconds of rest left (0.0 when available).
        last_error: Its last failure, or None.
        latency_ms: Moving average of its successful calls' time to the answer (to the first
            byte for streams), or None before one.
    """

    base_url: str
    weight: float
    in_flight: int
    requests: int
    errors: int
    consecutive_failures: int
    available: bool
    cooling_for: float
    last_error: str | None
    latency_ms: float | None


class Replica:
    """One server of the set: its encoder (URL, headers) and its counters."""

    __slots__ = (
        "base_url",
        "cooling_until",
        "current",
        "encoder",
        "errors",
        "failures",
        "in_flight",
        "last_error",
        "latency",
        "requests",
        "trial",
        "weight",
    )

    def __init__(self, encoder: RequestEncoder, weight: float = 1.0) -> None:
        self.encoder = encoder
        self.base_url = encoder.base_url
        self.weight = weight
        self.in_flight = 0
        self.requests = 0
        self.errors = 0
        self.failures = 0  # consecutive
        self.cooling_until = 0.0
        self.trial = False  # a half-open request is in flight
        self.last_error: str | None = None
        self.latency: float | None = None
        self.current = 0.0  # smooth weighted round-robin state

    def __repr__(self) -> str:
        return f"Replica({self.base_url!r}, weight={self.weight})"


def _summary(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text[:300]}"


def _rendezvous(key: str, replica: Replica) -> float:
    """Weighted rendezvous score: the highest wins; stable across processes."""
    digest = hashlib.blake2b(f"{key}\0{replica.base_url}".encode(), digest_size=8).digest()
    unit = (int.from_bytes(digest, "big") + 1) / (2**64 + 2)  # in (0, 1)
    return -replica.weight / math.log(unit)


class ReplicaSet:
    """The replicas of one model and the routing state (see the module docstring).

    Args:
        replicas: The servers, in the order the settings give them.
        routing: ``"least_busy"``, ``"round_robin"`` or ``"weighted"``.
        cooldown: Seconds a replica rests after its first failure.
        health_check: A path from the server root checked before a rested replica rejoins,
            or None to let a request through.
        clock: Monotonic seconds (injectable for tests).
    """

    def __init__(
        self,
        replicas: Sequence[Replica],
        routing: str = "least_busy",
        cooldown: float = 5.0,
        health_check: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.replicas = tuple(replicas)
        self.primary = self.replicas[0]
        self.many = len(self.replicas) > 1
        self.routing = routing
        self.cooldown = cooldown
        self.health_check = health_check
        self.clock = clock
        self._turn = 0
        self._lock = threading.Lock()

    # ----------------------------------------------------------------- choosing

    def _ready(self, replica: Replica, now: float) -> bool:
        return replica.failures == 0 or (replica.cooling_until <= now and not replica.trial)

    def _choose(self, ready: list[Replica], key: str | None) -> Replica:
        if key is not None:
            return max(ready, key=lambda r: _rendezvous(key, r))
        self._turn += 1
        if self.routing == "round_robin":
            return ready[self._turn % len(ready)]
        if self.routing == "weighted":
            total = sum(r.weight for r in ready)
            for replica in ready:
                replica.current += replica.weight
            chosen = max(ready, key=lambda r: r.current)
            chosen.current -= total
            return chosen
        # least_busy: start the scan at a turning offset so ties go round.
        start = self._turn % len(ready)
        order = ready[start:] + ready[:start]
        return min(order, key=lambda r: r.in_flight / r.weight)

    def pick(self, key: str | None = None) -> tuple[Replica, bool]:
        """The replica for the next attempt, and whether to check its health first.

        Counts the request as in flight there; every `pick` is matched by one `end`.

        Raises:
            ReplicasUnavailableError: When every replica is resting.
        """
        if not self.many:
            replica = self.primary
            with self._lock:
                replica.in_flight += 1
                replica.requests += 1
            return replica, False
        with self._lock:
            now = self.clock()
            ready = [r for r in self.replicas if self._ready(r, now)]
            if not ready:
                raise self._unavailable(now)
            replica = self._choose(ready, key)
            check = False
            if replica.failures:  # half-open: this request is its trial
                replica.trial = True
                check = self.health_check is not None
            replica.in_flight += 1
            replica.requests += 1
            return replica, check

    # ----------------------------------------------------------------- outcomes

    def end(
        self, replica: Replica, error: BaseException | None = None, latency: float | None = None
    ) -> None:
        """An attempt on ``replica`` ended: with ``error``, or answered in ``latency`` s."""
        with self._lock:
            replica.in_flight -= 1
            self._settle(replica, error, latency)

    def release(self, replica: Replica) -> None:
        """An attempt ended without a verdict (cancelled, interrupted): no state changes."""
        with self._lock:
            replica.in_flight -= 1
            replica.trial = False

    def observe(self, replica: Replica, error: BaseException | None) -> None:
        """A health check of ``replica`` (not a request) passed, or failed with ``error``."""
        with self._lock:
            self._settle(replica, error, None)

    def _settle(self, replica: Replica, error: BaseException | None, latency: float | None) -> None:
        was_trial, replica.trial = replica.trial, False
        if error is None or not is_replica_failure(error):
            # An answer, even a refusal of the request, shows the server is up.
            replica.failures = 0
            if latency is not None:
                old = replica.latency
                replica.latency = latency if old is None else old + _EWMA * (latency - old)
            return
        replica.errors += 1
        replica.last_error = _summary(error)
        if not was_trial and replica.cooling_until > self.clock():
            # Sent before the rest began (in flight when the server died): the same
            # failure again, not a new one, so it neither doubles nor extends the rest.
            return
        replica.failures += 1
        if not self.many:
            return  # one server is always tried: its failures are counted, never rested
        rest = getattr(error, "retry_after", None)
        if not isinstance(error, RateLimitError) or not rest or rest <= 0:
            longest = max(_MAX_COOLDOWN, self.cooldown)
            rest = min(self.cooldown * 2.0 ** (replica.failures - 1), longest)
        replica.cooling_until = self.clock() + rest

    def can_fail_over(self, error: BaseException) -> bool:
        """Whether ``error`` can be retried at once on another replica that is ready now."""
        if not self.many or not is_replica_failure(error):
            return False
        with self._lock:
            now = self.clock()
            return any(self._ready(r, now) for r in self.replicas)

    def explain(self, error: CustomLLMError) -> CustomLLMError:
        """The error a call ends with: the replicas' own failures when every one rests."""
        if not self.many or isinstance(error, ReplicasUnavailableError):
            return error
        if not is_replica_failure(error):
            return error
        with self._lock:
            now = self.clock()
            if any(self._ready(r, now) for r in self.replicas):
                return error
            unavailable = self._unavailable(now)
        unavailable.__cause__ = error
        return unavailable

    def _unavailable(self, now: float) -> ReplicasUnavailableError:
        failures = {r.base_url: r.last_error or "in trial" for r in self.replicas}
        rest = min(max(r.cooling_until - now, 0.0) for r in self.replicas)
        lines = "; ".join(f"{url}: {text}" for url, text in failures.items())
        return ReplicasUnavailableError(
            f"No replica can take the request: all {len(self.replicas)} failed recently "
            f"and are resting (the first rejoins in {rest:.1f} s) -- {lines} -- check those "
            "servers; model.replica_stats() shows each one's state",
            failures=failures,
            retry_after=rest,
        )

    # ----------------------------------------------------------------- reading

    def stats(self) -> list[ReplicaStats]:
        """Each replica's figures now."""
        with self._lock:
            now = self.clock()
            return [
                ReplicaStats(
                    base_url=r.base_url,
                    weight=r.weight,
                    in_flight=r.in_flight,
                    requests=r.requests,
                    errors=r.errors,
                    consecutive_failures=r.failures,
                    available=self._ready(r, now),
                    cooling_for=max(r.cooling_until - now, 0.0) if r.failures else 0.0,
                    last_error=r.last_error,
                    latency_ms=None if r.latency is None else r.latency * 1000.0,
                )
                for r in self.replicas
            ]
