"""Unit tests for langchain_customllm._retry (pure retry decisions)."""

from __future__ import annotations

import calendar
import json

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from langchain_customllm._exceptions import (
    ConfigurationError,
    ResponseError,
    StreamError,
    error_from_httpx,
    error_from_response,
)
from langchain_customllm._retry import (
    INITIAL_RETRY_DELAY,
    MAX_RETRY_AFTER,
    MAX_RETRY_DELAY,
    backoff_delay,
    parse_retry_after,
    retry_delay_for,
    should_retry_status,
)

PROPS = settings(max_examples=200, deadline=None)

# Wed, 21 Oct 2015 07:28:00 GMT, computed without email.utils.
DATE_EPOCH = float(calendar.timegm((2015, 10, 21, 7, 28, 0, 0, 0, 0)))
HTTP_DATE = "Wed, 21 Oct 2015 07:28:00 GMT"


def never_called() -> float:
    raise AssertionError("now() must not be consulted for this header")


def err(status: int, headers: dict[str, str] | None = None, body: bytes = b"") -> BaseException:
    return error_from_response(status, httpx.Headers(headers or {}), body)


def zero() -> float:
    return 0.0


def one() -> float:
    return 1.0


# -------------------------------------------------------------------- parse_retry_after


def test_constants() -> None:
    assert INITIAL_RETRY_DELAY == 0.5
    assert MAX_RETRY_DELAY == 8.0
    assert MAX_RETRY_AFTER == 120.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"retry-after": "30"}, 30.0),
        ({"retry-after": "0"}, 0.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after": " 2 "}, 2.0),
        ({"retry-after": "-3"}, -3.0),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "250.5"}, 0.2505),
        ({"retry-after-ms": "0"}, 0.0),
        # retry-after-ms wins over retry-after.
        ({"retry-after-ms": "250", "retry-after": "30"}, 0.25),
        ({"retry-after": "30", "retry-after-ms": "250"}, 0.25),
        # Garbage is ignored, as if absent, and the next source is read.
        ({"retry-after": "soon"}, None),
        ({"retry-after": ""}, None),
        ({"retry-after-ms": "soon"}, None),
        ({"retry-after-ms": "soon", "retry-after": "4"}, 4.0),
        ({"retry-after": "soon", "llm_provider-retry-after": "6"}, 6.0),
        ({"retry-after-ms": "x", "retry-after": "y", "llm_provider-retry-after": "z"}, None),
        # The gateway's forwarded hint is read last.
        ({"llm_provider-retry-after": "5"}, 5.0),
        ({"llm_provider-retry-after": "5", "retry-after": "3"}, 3.0),
        ({"llm_provider-retry-after": "5", "retry-after-ms": "100"}, 0.1),
        # Unrelated headers are not read.
        ({"x-ratelimit-reset": "10"}, None),
    ],
)
def test_parse_retry_after_numbers(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers, now=never_called) == expected
    # Case-insensitive headers, as httpx gives them.
    upper = httpx.Headers({k.upper(): v for k, v in headers.items()})
    assert parse_retry_after(upper, now=never_called) == expected


@pytest.mark.parametrize("offset", [42.0, 0.0, 119.0, 3600.0, -10.0])
def test_parse_retry_after_http_date_relative_to_now(offset: float) -> None:
    headers = httpx.Headers({"Retry-After": HTTP_DATE})
    assert parse_retry_after(headers, now=lambda: DATE_EPOCH - offset) == pytest.approx(offset)


def test_parse_retry_after_http_date_with_numeric_timezone() -> None:
    # Same instant written as 09:28 at +0200.
    headers = {"retry-after": "Wed, 21 Oct 2015 09:28:00 +0200"}
    assert parse_retry_after(headers, now=lambda: DATE_EPOCH - 5) == pytest.approx(5.0)


def test_parse_retry_after_http_date_from_gateway_header() -> None:
    headers = {"llm_provider-retry-after": HTTP_DATE}
    assert parse_retry_after(headers, now=lambda: DATE_EPOCH - 7) == pytest.approx(7.0)


@pytest.mark.parametrize(
    "date",
    [
        "Tue, 01 Jan 100000000000000000000 00:00:00 GMT",  # mktime_tz: OverflowError
        "Mon, 01 Jan 99999 00:00:00 GMT",  # year out of datetime's range: ValueError
        "Fri, 31 Dec 9999999999 23:59:59 -9999",
    ],
)
def test_parse_retry_after_absurd_http_date_is_ignored(date: str) -> None:
    # Out-of-range dates are no hint at all (as garbage is), and the next source is read.
    assert parse_retry_after({"retry-after": date}) is None
    headers = {"retry-after": date, "llm_provider-retry-after": "6"}
    assert parse_retry_after(headers, now=never_called) == 6.0


def test_parse_retry_after_ms_wins_over_http_date() -> None:
    headers = {"retry-after-ms": "900", "retry-after": HTTP_DATE}
    assert parse_retry_after(headers, now=never_called) == 0.9


# ------------------------------------------------------------------ should_retry_status


@pytest.mark.parametrize("status", [408, 409, 429, 500, 501, 502, 503, 504, 520, 529, 599])
def test_should_retry_statuses(status: int) -> None:
    assert should_retry_status(status, {}) is True


@pytest.mark.parametrize("status", [400, 401, 402, 403, 404, 405, 410, 413, 415, 418, 422, 499])
def test_should_not_retry_statuses(status: int) -> None:
    assert should_retry_status(status, {}) is False


@pytest.mark.parametrize("status", [400, 401, 404, 422, 429, 500, 503])
def test_x_should_retry_true_overrides(status: int) -> None:
    assert should_retry_status(status, httpx.Headers({"X-Should-Retry": "true"})) is True


@pytest.mark.parametrize("status", [400, 408, 409, 429, 500, 503])
def test_x_should_retry_false_overrides(status: int) -> None:
    assert should_retry_status(status, httpx.Headers({"x-should-retry": "false"})) is False


@pytest.mark.parametrize("value", ["", "maybe", "1", "0"])
@pytest.mark.parametrize(("status", "expected"), [(400, False), (503, True)])
def test_x_should_retry_other_values_ignored(value: str, status: int, expected: bool) -> None:
    assert should_retry_status(status, {"x-should-retry": value}) is expected


# ------------------------------------------------------------------------ backoff_delay


@pytest.mark.parametrize(
    ("attempt", "base"),
    [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 8.0), (10, 8.0), (60, 8.0)],
)
def test_backoff_delay_bounds(attempt: int, base: float) -> None:
    assert backoff_delay(attempt, rand=zero) == base
    assert backoff_delay(attempt, rand=one) == pytest.approx(0.75 * base)
    assert backoff_delay(attempt, rand=lambda: 0.5) == pytest.approx(0.875 * base)


@PROPS
@given(attempt=st.integers(0, 200), r=st.floats(0.0, 1.0))
def test_backoff_delay_within_jitter_range(attempt: int, r: float) -> None:
    base = min(0.5 * 2**attempt, 8.0)
    delay = backoff_delay(attempt, rand=lambda: r)
    assert 0.75 * base - 1e-12 <= delay <= base
    assert delay <= MAX_RETRY_DELAY


@PROPS
@given(attempt=st.integers(0, 60), r=st.floats(0.0, 1.0))
def test_backoff_delay_never_decreases_with_attempts(attempt: int, r: float) -> None:
    assert backoff_delay(attempt, rand=lambda: r) <= backoff_delay(attempt + 1, rand=lambda: r)


def test_backoff_delay_default_rand_stays_in_range() -> None:
    for _ in range(50):
        assert 0.375 <= backoff_delay(0) <= 0.5


# ---------------------------------------------------------------------- retry_delay_for


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 418, 422])
def test_non_retryable_status_gives_none(status: int) -> None:
    assert retry_delay_for(err(status), 0, rand=zero) is None
    # Even when the server names a wait.
    assert retry_delay_for(err(status, {"Retry-After": "5"}), 0, rand=zero) is None


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504])
@pytest.mark.parametrize("attempt", [0, 1, 3, 7])
def test_retryable_status_without_hint_backs_off(status: int, attempt: int) -> None:
    error = err(status)
    assert retry_delay_for(error, attempt, rand=zero) == backoff_delay(attempt, rand=zero)
    assert retry_delay_for(error, attempt, rand=one) == backoff_delay(attempt, rand=one)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"Retry-After": "0.25"}, 0.25),
        ({"Retry-After": "120"}, 120.0),
        ({"Retry-After-Ms": "1500"}, 1.5),
        ({"retry-after-ms": "120000"}, 120.0),
        ({"LLM_PROVIDER-RETRY-AFTER": "9"}, 9.0),
    ],
)
@pytest.mark.parametrize("attempt", [0, 5])
def test_retry_after_within_limit_is_used_exactly(
    headers: dict[str, str], expected: float, attempt: int
) -> None:
    for status in (429, 503):
        assert retry_delay_for(err(status, headers), attempt, rand=one) == expected


@pytest.mark.parametrize(
    "headers",
    [
        {"Retry-After": "120.5"},
        {"Retry-After": "121"},
        {"Retry-After": "3600"},
        {"retry-after-ms": "120001"},
    ],
)
def test_retry_after_beyond_limit_means_do_not_retry(headers: dict[str, str]) -> None:
    assert retry_delay_for(err(429, headers), 0, rand=zero) is None
    assert retry_delay_for(err(503, headers), 2, rand=zero) is None


@pytest.mark.parametrize(
    "headers",
    [
        {"Retry-After": "0"},
        {"Retry-After": "-5"},
        {"retry-after-ms": "0"},
        {"retry-after-ms": "-1"},
        {"Retry-After": "garbage"},
        # A date in the past (2015) gives a negative wait.
        {"Retry-After": HTTP_DATE},
    ],
)
@pytest.mark.parametrize("attempt", [0, 2, 6])
def test_zero_negative_or_unusable_retry_after_falls_back_to_backoff(
    headers: dict[str, str], attempt: int
) -> None:
    error = err(429, headers)
    assert retry_delay_for(error, attempt, rand=zero) == backoff_delay(attempt, rand=zero)
    assert retry_delay_for(error, attempt, rand=one) == backoff_delay(attempt, rand=one)


def test_x_should_retry_false_wins_over_retry_after() -> None:
    error = err(429, {"x-should-retry": "false", "retry-after": "5"})
    assert retry_delay_for(error, 0, rand=zero) is None


def test_x_should_retry_true_makes_client_error_retryable() -> None:
    assert retry_delay_for(err(400, {"X-Should-Retry": "true"}), 1, rand=zero) == 1.0
    assert retry_delay_for(err(400, {"X-Should-Retry": "true", "Retry-After": "5"}), 1) == 5.0


def test_context_overflow_is_not_retried() -> None:
    body = json.dumps({"error": {"message": "x", "code": "context_length_exceeded"}}).encode()
    assert retry_delay_for(err(400, {}, body), 0, rand=zero) is None


@pytest.mark.parametrize(
    "exc_type", [httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError]
)
def test_connection_errors_back_off(exc_type: type[httpx.TransportError]) -> None:
    request = httpx.Request("POST", "http://llm.invalid/v1/chat/completions")
    error = error_from_httpx(exc_type("boom", request=request), str(request.url))
    assert retry_delay_for(error, 0, rand=zero) == 0.5
    assert retry_delay_for(error, 3, rand=one) == pytest.approx(3.0)


@pytest.mark.parametrize("exc_type", [httpx.ConnectTimeout, httpx.ReadTimeout, httpx.PoolTimeout])
def test_timeouts_back_off(exc_type: type[httpx.TimeoutException]) -> None:
    request = httpx.Request("POST", "http://llm.invalid/v1/chat/completions")
    error = error_from_httpx(exc_type("slow", request=request), str(request.url))
    assert retry_delay_for(error, 1, rand=zero) == 1.0


@pytest.mark.parametrize(
    "error",
    [
        ValueError("plain"),
        RuntimeError("plain"),
        KeyError("x"),
        httpx.ConnectError("raw httpx error, not ours"),
        StreamError("the server reported an error mid-stream"),
        ResponseError("not JSON"),
        ConfigurationError("bad setting"),
    ],
)
def test_other_exceptions_are_not_retried(error: BaseException) -> None:
    assert retry_delay_for(error, 0, rand=zero) is None


def test_duck_typed_retry_after_attribute_is_honoured() -> None:
    class HintedError(Exception):
        is_retryable = True
        retry_after = 3

    assert retry_delay_for(HintedError(), 0, rand=zero) == 3.0
    assert isinstance(retry_delay_for(HintedError(), 0, rand=zero), float)


@PROPS
@given(seconds=st.floats(0.001, 120.0), attempt=st.integers(0, 20))
def test_any_retry_after_in_range_is_returned_exactly(seconds: float, attempt: int) -> None:
    error = err(429, {"Retry-After": repr(seconds)})
    assert retry_delay_for(error, attempt, rand=one) == seconds


@PROPS
@given(seconds=st.floats(120.0, 1e9, exclude_min=True), attempt=st.integers(0, 20))
def test_any_retry_after_beyond_limit_is_not_retried(seconds: float, attempt: int) -> None:
    error = err(503, {"Retry-After": repr(seconds)})
    assert retry_delay_for(error, attempt, rand=zero) is None
