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
import random
import time
from collections.abc import Callable, Mapping

__all__ = [
    "INITIAL_RETRY_DELAY",
    "MAX_RETRY_AFTER",
    "MAX_RETRY_DELAY",
    "backoff_delay",
    "parse_retry_after",
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
