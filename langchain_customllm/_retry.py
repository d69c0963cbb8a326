"""Pure retry decisions, following openai-python's policy, fed to tenacity by the client.

- Retry on connection errors and timeouts, and on HTTP 408, 409, 429 and 5xx.
- A server may override with ``x-should-retry: true|false``.
- Wait what the server asks (``retry-after-ms``, then ``retry-after`` in seconds or as an HTTP
  date) when that is more than 0 and at most 120 s; a longer ``Retry-After`` means the server
  will not be ready soon, so we do not retry and raise the typed error at once.
- Otherwise back off exponentially: ``min(0.5 * 2**n, 8) * (1 - 0.25 * random())``.

Nothing here sleeps or does I/O, so every decision is unit-tested directly.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # tenacity is imported on the first retry only (it costs ~10 ms to import)
    from tenacity import AsyncRetrying, RetryCallState, Retrying

_T = TypeVar("_T")

__all__ = [
    "INITIAL_RETRY_DELAY",
    "MAX_RETRY_AFTER",
    "MAX_RETRY_DELAY",
    "aagain",
    "again",
    "apolicy",
    "backoff_delay",
    "can_retry",
    "parse_retry_after",
    "policy",
    "retry_delay_for",
    "should_retry_status",
]

INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
MAX_RETRY_AFTER = 120.0
_RETRY_STATUSES = frozenset({408, 409, 429})


def parse_retry_after(
    headers: Mapping[str, str], now: Callable[[], float] = time.time
) -> float | None:
    """Return the delay in seconds the server asked for, or None if it asked for none.

    ``retry-after-ms`` wins over ``retry-after``; the latter may be seconds or an HTTP date.
    Gateways that only forward the backend's hint (LiteLLM's ``llm_provider-retry-after``)
    are read last. Unparseable values are ignored, as if absent.
    """
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return float(ms) / 1000.0
        except ValueError:
            pass
    for name in ("retry-after", "llm_provider-retry-after"):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return float(value)
        except ValueError:
            pass
        # A date whose year or offset is absurd makes mktime_tz overflow (OverflowError,
        # ValueError, OSError by platform): treat it as no hint, like any unparseable value.
        try:
            parsed = email.utils.parsedate_tz(value)
            if parsed is not None:
                return float(email.utils.mktime_tz(parsed)) - now()
        except (OverflowError, ValueError, OSError):
            pass
    return None


def should_retry_status(status_code: int, headers: Mapping[str, str]) -> bool:
    """Whether an HTTP error status is worth retrying (before looking at Retry-After)."""
    override = headers.get("x-should-retry")
    if override == "true":
        return True
    if override == "false":
        return False
    return status_code in _RETRY_STATUSES or status_code >= 500


def backoff_delay(attempt: int, rand: Callable[[], float] = random.random) -> float:
    """Exponential backoff with jitter for retry number ``attempt`` (0-based)."""
    base = min(INITIAL_RETRY_DELAY * 2.0**attempt, MAX_RETRY_DELAY)
    return base * (1.0 - 0.25 * rand())


def retry_delay_for(
    error: BaseException, attempt: int, rand: Callable[[], float] = random.random
) -> float | None:
    """Decide whether to retry ``error`` and how long to wait first.

    Args:
        error: What the last attempt raised. Our typed errors say whether they are
            retryable (``is_retryable``, set per response from the status and
            ``x-should-retry``) and what the server asked for (``retry_after``).
        attempt: How many retries were already made (0 before the first retry).
        rand: Source of jitter, injectable for tests.

    Returns:
        Seconds to wait before the next attempt, or None if the error must not be retried.

    """
    if not getattr(error, "is_retryable", False):
        return None
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        if 0 < retry_after <= MAX_RETRY_AFTER:
            return float(retry_after)
        if retry_after > MAX_RETRY_AFTER:
            return None
    return backoff_delay(attempt, rand)


def can_retry(error: BaseException) -> bool:
    """Whether ``error`` is worth another attempt at all (jitter aside)."""
    # Jitter does not change *whether* we retry, so decide with a fixed draw.
    return retry_delay_for(error, 0, rand=lambda: 0.0) is not None


_logger = logging.getLogger("langchain_customllm")


# With several replicas: whether a failed attempt can go to another replica at once.
FailOver = Callable[[BaseException], bool] | None


def _waiter(target: str, max_retries: int, failover: FailOver) -> Callable[[RetryCallState], float]:
    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if exc is not None and failover is not None and failover(exc):
            delay = 0.0  # another replica is ready: no reason to wait
        else:
            delay = (retry_delay_for(exc, state.attempt_number - 1) if exc else None) or 0.0
        _logger.info(
            "Retrying request to %s in %.2f s after %s (attempt %d of %d)",
            target,
            delay,
            type(exc).__name__,
            state.attempt_number + 1,
            max_retries + 1,
        )
        return delay

    return wait


def _policy(target: str, max_retries: int, failover: FailOver) -> dict[str, Any]:
    from tenacity import retry_if_exception, stop_after_attempt

    def worth_it(error: BaseException) -> bool:
        return can_retry(error) or (failover is not None and failover(error))

    return {
        "stop": stop_after_attempt(max_retries + 1),
        "wait": _waiter(target, max_retries, failover),
        "retry": retry_if_exception(worth_it),
        "reraise": True,
    }


def policy(
    target: str, max_retries: int, sleep: Callable[[float], None], failover: FailOver = None
) -> Retrying:
    """The tenacity policy for one request: our decisions, delays and log line.

    Args:
        target: What the log line names (the base URL; never a header).
        max_retries: Retries after the first attempt.
        sleep: How to wait (tests record instead of sleeping).
        failover: With several replicas, whether an error can be retried at once on
            another one (then it is, without waiting, whatever its own policy says).
    """
    from tenacity import Retrying

    return Retrying(sleep=sleep, **_policy(target, max_retries, failover))


def apolicy(
    target: str,
    max_retries: int,
    sleep: Callable[[float], Awaitable[None]],
    failover: FailOver = None,
) -> AsyncRetrying:
    """Async twin of `policy`."""
    from tenacity import AsyncRetrying

    return AsyncRetrying(sleep=sleep, **_policy(target, max_retries, failover))


def again(failed: BaseException, attempt_once: Callable[[], _T], retrying: Retrying) -> _T:
    """Retry after a failed first attempt, under ``retrying`` (a `policy`).

    The first attempt runs without tenacity (most calls succeed, and tenacity's
    bookkeeping costs ~25 µs a call); tenacity is entered only after a retryable failure,
    which is replayed as its first attempt, so delays, logging and the attempt count are
    those of one policy.
    """
    first: BaseException | None = failed
    for attempt in retrying:
        with attempt:
            if first is not None:
                error, first = first, None
                raise error
            return attempt_once()
    raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover


async def aagain(
    failed: BaseException, attempt_once: Callable[[], Awaitable[_T]], retrying: AsyncRetrying
) -> _T:
    """Async twin of `again`."""
    first: BaseException | None = failed
    async for attempt in retrying:
        with attempt:
            if first is not None:
                error, first = first, None
                raise error
            return await attempt_once()
    raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover
