"""Every fault x invoke/ainvoke/stream/astream x ChatCustomLLM/CustomLLM x wire format.

Each cell scripts the faulty server, makes one call under a watchdog, and asserts exactly
one of two outcomes:

1. `Ok` -- recovered: the server saw exactly the attempts the retry policy allows, the
   recorded retry delays are within the policy's bounds (backoff ``0.5 * 2**n * (0.75..1]``,
   ``Retry-After`` honoured exactly, over 120 s: no retry), and the text is the full answer.
2. `Fails` -- a typed `CustomLLMError` subclass with the right ``status_code``, a message that
   says what happened, the request id the server sent, and for a stream cut after output
   began, ``partial_text`` equal to the text received so far; never a truncated "success".

Stream-only faults run ``invoke``/``ainvoke`` with ``streaming=True`` (the streaming endpoint
behind ``invoke``); faults in a whole answer run ``invoke``/``ainvoke`` only.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from langchain_customllm import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    ConflictError,
    ContextLengthExceededError,
    CustomLLMError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestTimeoutError,
    ResponseError,
    StreamError,
)
from tests._calls import STREAM_PATHS, text_of
from tests.fault_tests._helpers import (
    HAS_CHUNK_TIMEOUT,
    KEY,
    METHODS,
    MODEL_CLASSES,
    PARTIAL,
    PIECES,
    TEXT,
    Outcome,
    Recorder,
    build_model,
    call,
)
from tests.servers.faulty import (
    DIALECTS,
    HTML_PAGE,
    Behaviour,
    Dialect,
    FaultyServer,
    NeverAccept,
    Sleep,
    Trickle,
    answer,
    close_before_answer,
    context_length_error,
    cut_body,
    hang,
    json_answer,
    refused_url,
    reset_before_answer,
    split_send,
    status_error,
    stream,
    truncated_json,
)

Delay = tuple[float, float]
BACKOFF: tuple[Delay, ...] = ((0.375, 0.5), (0.75, 1.0))


def exactly(seconds: float) -> Delay:
    return (seconds, seconds)


@dataclass(frozen=True)
class Ok:
    """Recovered: the full text after ``attempts`` attempts and these retry delays."""

    text: str = TEXT
    attempts: int = 1
    delays: tuple[Delay, ...] = ()
    min_elapsed: float = 0.0


@dataclass(frozen=True)
class Fails:
    """A typed error; ``partial`` None means no output had begun (no partial text)."""

    error: type[CustomLLMError]
    attempts: int = 1
    delays: tuple[Delay, ...] = ()
    status: int | None = None
    says: tuple[str, ...] = ()
    says_any: tuple[str, ...] = ()
    never_says: tuple[str, ...] = ()
    request_id: bool = False
    partial: str | None = None
    exact: str | None = None
    retry_after: float | None = None
    max_elapsed: float = 8.0


Expect = Ok | Fails
Build = Callable[[Dialect, str], tuple[list[Behaviour], Expect]]

WHOLE = frozenset({"whole"})
STREAM = frozenset({"stream"})
BOTH = WHOLE | STREAM
OPENAI = ("openai",)
ALL_FAMILIES = ("openai", "ollama", "custom")


@dataclass(frozen=True)
class Fault:
    name: str
    kinds: frozenset[str]
    families: tuple[str, ...]
    build: Build
    model: dict[str, Any] = field(default_factory=dict)
    needs_chunk_timeout: bool = False


FAULTS: list[Fault] = []


def fault(
    name: str,
    kinds: frozenset[str] = BOTH,
    families: tuple[str, ...] = OPENAI,
    *,
    needs_chunk_timeout: bool = False,
    **model: Any,
) -> Callable[[Build], Build]:
    def register(build: Build) -> Build:
        FAULTS.append(Fault(name, kinds, families, build, model, needs_chunk_timeout))
        return build

    return register


def ok(d: Dialect, kind: str, text: str = TEXT, pieces: list[str] | None = None) -> Behaviour:
    """The correct answer for this dialect and kind."""
    if kind == "whole":
        return json_answer(d.whole(text))
    return stream(d.full_stream(pieces or PIECES), content_type=d.content_type)


def err(d: Dialect, status: int, message: str | None = None, **kwargs: Any) -> Behaviour:
    """An error status with this dialect's error body."""
    text = message or f"simulated {status}"
    return status_error(status, body=d.error_body(text, status), **kwargs)


def partial_stream(d: Dialect, *tail: bytes | Any, end: str = "end", **kwargs: Any) -> Behaviour:
    """A stream that delivers the first two pieces, then ``tail``, then ends as told."""
    parts = [*d.piece_events(PIECES[:2]), *tail]
    return stream(parts, end=end, content_type=d.content_type, **kwargs)


# ------------------------------------------------------------------ retryable statuses


@fault("429-backoff-then-ok")
def _429_backoff(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    return [err(d, 429), err(d, 429), ok(d, k)], Ok(attempts=3, delays=BACKOFF)


@fault("429-exhausted")
def _429_exhausted(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    expect = Fails(
        RateLimitError, 3, BACKOFF, 429, says=("rate limit",), request_id=True, max_elapsed=3
    )
    return [err(d, 429)] * 3, expect


@fault("429-retry-after-seconds")
def _429_ra_seconds(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    scripts = [err(d, 429, retry_after=2), err(d, 429, retry_after=2), ok(d, k)]
    return scripts, Ok(attempts=3, delays=(exactly(2.0), exactly(2.0)))


@fault("429-retry-after-http-date")
def _429_ra_date(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    # An HTTP date has whole seconds: 4 s ahead reads as a little over 3 to 4 s.
    return [err(d, 429, retry_after_date_in=4), ok(d, k)], Ok(attempts=2, delays=((2.5, 4.0),))


@fault("429-retry-after-ms")
def _429_ra_ms(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    return [err(d, 429, retry_after_ms=1500), ok(d, k)], Ok(attempts=2, delays=(exactly(1.5),))


@fault("429-retry-after-ms-wins")
def _429_ra_ms_wins(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    scripts = [err(d, 429, retry_after_ms=250, retry_after=7), ok(d, k)]
    return scripts, Ok(attempts=2, delays=(exactly(0.25),))


@fault("429-retry-after-120-boundary")
def _429_ra_120(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    return [err(d, 429, retry_after=120), ok(d, k)], Ok(attempts=2, delays=(exactly(120.0),))


@fault("429-retry-after-0-backs-off")
def _429_ra_0(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    return [err(d, 429, retry_after=0), ok(d, k)], Ok(attempts=2, delays=BACKOFF[:1])


@fault("429-retry-after-300-no-retry")
def _429_ra_300(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    expect = Fails(RateLimitError, 1, (), 429, request_id=True, retry_after=300.0)
    return [err(d, 429, retry_after=300)], expect


@fault("429-retry-after-date-1h-no-retry")
def _429_ra_far_date(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    return [err(d, 429, retry_after_date_in=3600)], Fails(RateLimitError, 1, (), 429)


@fault("408-then-ok")
def _408_ok(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    return [err(d, 408), ok(d, k)], Ok(attempts=2, delays=BACKOFF[:1])


@fault("408-exhausted")
def _408_exhausted(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    expect = Fails(RequestTimeoutError, 3, BACKOFF, 408, says=("timed out",), request_id=True)
    return [err(d, 408)] * 3, expect


@fault("409-then-ok")
def _409_ok(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    return [err(d, 409), err(d, 409), ok(d, k)], Ok(attempts=3, delays=BACKOFF)


@fault("409-retry-after-1")
def _409_ra(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    return [err(d, 409, retry_after=1), ok(d, k)], Ok(attempts=2, delays=(exactly(1.0),))


@fault("409-exhausted")
def _409_exhausted(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    return [err(d, 409)] * 3, Fails(ConflictError, 3, BACKOFF, 409, request_id=True)


def _5xx_ok(code: int) -> Build:
    def build(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
        return [err(d, code), err(d, code), ok(d, k)], Ok(attempts=3, delays=BACKOFF)

    return build


def _5xx_exhausted(code: int) -> Build:
    def build(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
        message = f"upstream {code}: GPU worker crashed"
        expect = Fails(
            InternalServerError,
            3,
            BACKOFF,
            code,
            says=("server error", message.lower()),
            request_id=True,
        )
        return [err(d, code, message)] * 3, expect

    return build


for _code in (500, 503):
    fault(f"{_code}-then-ok", families=ALL_FAMILIES)(_5xx_ok(_code))
    fault(f"{_code}-exhausted", families=ALL_FAMILIES)(_5xx_exhausted(_code))
for _code in (502, 504):
    fault(f"{_code}-then-ok")(_5xx_ok(_code))
    fault(f"{_code}-exhausted")(_5xx_exhausted(_code))


@fault("503-x-should-retry-false")
def _503_no_retry(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    scripts = [err(d, 503, headers={"x-should-retry": "false"})]
    return scripts, Fails(InternalServerError, 1, (), 503, request_id=True)


# ------------------------------------------------------------------ final statuses


@fault("400-context-length")
def _400_context(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    expect = Fails(
        ContextLengthExceededError,
        1,
        (),
        400,
        says=("maximum context length is 2048", "shorten the prompt"),
        request_id=True,
    )
    return [context_length_error()], expect


@fault("401-echoes-key")
def _401(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    # Some gateways echo the key they refused; it must not reach the error.
    body = {"error": {"message": f"Incorrect API key provided: {KEY}", "type": "auth_error"}}
    expect = Fails(AuthenticationError, 1, (), 401, says=("incorrect api key",), request_id=True)
    return [status_error(401, body=body)], expect


@fault("403")
def _403(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    expect = Fails(PermissionDeniedError, 1, (), 403, says=("not allowed",), request_id=True)
    return [err(d, 403, "model access denied")], expect


@fault("404")
def _404(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    expect = Fails(NotFoundError, 1, (), 404, says=("base_url",), request_id=True)
    return [err(d, 404, "model 'm' not found")], expect


@fault("502-html-page-exhausted")
def _html_502(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    expect = Fails(InternalServerError, 3, BACKOFF, 502, says=("html",), request_id=True)
    return [answer(502, HTML_PAGE, content_type="text/html")] * 3, expect


@fault("404-html-page")
def _html_404(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    expect = Fails(NotFoundError, 1, (), 404, says=("html", "base_url"), request_id=True)
    return [answer(404, HTML_PAGE, content_type="text/html")], expect


# ------------------------------------------------------------------ 200s we cannot read


@fault("200-html-page")
def _200_html(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    # A wrong base_url that lands on a web UI: the message must say an HTML page came back.
    expect = Fails(ResponseError if k == "whole" else CustomLLMError, 1, says=("html",))
    return [answer(200, HTML_PAGE, content_type="text/html")], expect


@fault("200-non-json")
def _200_text(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    body = "upstream hiccup, please retry"
    expect = Fails(
        ResponseError if k == "whole" else CustomLLMError,
        1,
        says_any=("upstream hiccup", "text/plain"),
    )
    return [answer(200, body, content_type="text/plain")], expect


@fault("200-truncated-json", WHOLE, ALL_FAMILIES)
def _200_truncated(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    return [truncated_json(d.whole(TEXT))], Fails(ResponseError, 1, says=("not json",))


@fault("200-empty-body", WHOLE)
def _200_empty(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    return [answer(200, b"")], Fails(ResponseError, 1)


@fault("200-wrong-shape", WHOLE)
def _200_shape(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    return [json_answer({"result": TEXT})], Fails(ResponseError, 1, says=("choices",))


@fault("200-error-object", WHOLE, ALL_FAMILIES)
def _200_error_object(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    body = d.error_body("model is loading")
    return [json_answer(body)], Fails(ResponseError, 1, says=("model is loading",))


@fault("200-invalid-utf8", WHOLE, ALL_FAMILIES)
def _200_bad_utf8(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    data = json.dumps(d.whole(TEXT), ensure_ascii=False).encode().replace(b"\xc3\xa9", b"\xe9")
    return [answer(200, data)], Fails(ResponseError, 1)


@fault("huge-answer-6mb", WHOLE, ALL_FAMILIES)
def _huge(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    text = "0123456789abcdé " * (6 * 1024 * 1024 // 16)
    return [json_answer(d.whole(text))], Ok(text=text)


# ------------------------------------------------------------------ the connection


@fault("cut-body-then-ok", WHOLE, ALL_FAMILIES)
def _cut_body_ok(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    cut = cut_body(d.whole(TEXT))
    return [cut, cut, ok(d, k)], Ok(attempts=3, delays=BACKOFF)


@fault("cut-body-exhausted", WHOLE)
def _cut_body_exhausted(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    expect = Fails(APIConnectionError, 3, BACKOFF, says=("broke",))
    return [cut_body(d.whole(TEXT))] * 3, expect


@fault("closed-before-answer-then-ok")
def _closed_ok(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    scripts = [close_before_answer(), close_before_answer(), ok(d, k)]
    return scripts, Ok(attempts=3, delays=BACKOFF)


@fault("closed-before-answer-exhausted")
def _closed_exhausted(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    return [close_before_answer()] * 3, Fails(APIConnectionError, 3, BACKOFF)


@fault("reset-before-answer-then-ok", families=ALL_FAMILIES)
def _reset_ok(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    return [reset_before_answer(), ok(d, k)], Ok(attempts=2, delays=BACKOFF[:1])


@fault("reset-before-answer-exhausted")
def _reset_exhausted(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    expect = Fails(APIConnectionError, 3, BACKOFF, says=("reset",))
    return [reset_before_answer()] * 3, expect


@fault("accept-then-hang", timeout=0.3)
def _accept_hang(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    expect = Fails(APITimeoutError, 3, BACKOFF, says=("timed out",), max_elapsed=3.0)
    return [hang()] * 3, expect


# ------------------------------------------------------------------ streams


@fault("stream-long-1000-events", STREAM, ALL_FAMILIES)
def _long_stream(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    pieces = [f"w{i} " for i in range(1000)]
    return [ok(d, k, pieces=pieces)], Ok(text="".join(pieces))


@fault("stream-cut-mid-event", STREAM, ALL_FAMILIES)
def _cut_mid_event(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    half = d.piece_event(PIECES[2])[:25]
    expect = Fails(APIConnectionError, 1, says=("broke",), partial=PARTIAL)
    return [partial_stream(d, half, end="close")], expect


@fault("stream-cut-mid-event-eof-framed", STREAM, ALL_FAMILIES)
def _cut_mid_event_eof(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    # No chunked framing: the body runs to the close, so the cut looks like a clean end.
    half = d.piece_event(PIECES[2])[:25]
    return [partial_stream(d, half, chunked=False)], Fails(CustomLLMError, 1, partial=PARTIAL)


@fault("stream-cut-between-events", STREAM, ALL_FAMILIES)
def _cut_between(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    expect = Fails(APIConnectionError, 1, says=("broke",), partial=PARTIAL)
    return [partial_stream(d, end="close")], expect


@fault("stream-eof-without-end-marker", STREAM, ALL_FAMILIES)
def _eof_between(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    expect = Fails(StreamError, 1, says=("ended before",), partial=PARTIAL)
    return [partial_stream(d, chunked=False)], expect


@fault("stream-no-finish-no-done", STREAM, ALL_FAMILIES)
def _no_end(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    behaviour = stream(d.piece_events(PIECES), content_type=d.content_type)
    return [behaviour], Fails(StreamError, 1, says=("ended before",), partial=TEXT)


@fault("stream-finish-without-done", STREAM)
def _finish_no_done(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    return [stream([*d.piece_events(PIECES), d.finish_event()])], Ok()


@fault("stream-done-without-finish", STREAM)
def _done_no_finish(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    return [stream([*d.piece_events(PIECES), d.done_event()])], Ok()


@fault("stream-error-event-mid", STREAM, ALL_FAMILIES)
def _error_event(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    event = d.error_event("CUDA out of memory", 500)
    expect = Fails(
        StreamError,
        1,
        status=500 if d.family == "openai" else None,
        says=("cuda out of memory",),
        partial=PARTIAL,
    )
    return [partial_stream(d, event, *d.end_events())], expect


@fault("stream-error-event-first", STREAM, ALL_FAMILIES)
def _error_first(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    behaviour = stream([d.error_event("model is loading", 503)], content_type=d.content_type)
    expect = Fails(StreamError, 1, status=503 if d.family == "openai" else None)
    return [behaviour], expect


@fault("stream-named-error-event", STREAM)
def _named_error(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    event = b'event: error\ndata: {"message": "Overloaded, try later"}\n\n'
    expect = Fails(StreamError, 1, says=("overloaded",), partial=PARTIAL)
    return [partial_stream(d, event)], expect


@fault("stream-utf8-split-across-reads", STREAM, ALL_FAMILIES)
def _split_utf8(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    last = d.piece_event(PIECES[3])
    at = last.index("✓".encode()) + 1  # inside the 3-byte character
    parts = [*d.piece_events(PIECES[:3]), *split_send(last, at), *d.end_events()]
    return [stream(parts, content_type=d.content_type)], Ok()


BAD_TEXT = TEXT.replace("é", "\ufffd")


@fault("stream-invalid-utf8", STREAM, ALL_FAMILIES)
def _invalid_utf8(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    # Invalid bytes become U+FFFD (the decoder's documented policy), the rest survives.
    last = d.piece_event(PIECES[3]).replace("é".encode(), b"\xe9")
    parts = [*d.piece_events(PIECES[:3]), last, *d.end_events()]
    return [stream(parts, content_type=d.content_type)], Ok(text=BAD_TEXT)


@fault("stream-invalid-utf8-split-across-reads", STREAM, ALL_FAMILIES)
def _invalid_utf8_split(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    # A truncated 3-byte sequence at the end of one read, ASCII at the start of the next.
    bad_piece = " \xe2\x9c".encode("latin-1")  # the first two bytes of "✓" only
    last = d.piece_event(bad_piece + b" caf\xc3\xa9")
    at = last.index(b"\xe2\x9c") + 2
    parts = [*d.piece_events(PIECES[:3]), *split_send(last, at), *d.end_events()]
    expected = "".join(PIECES[:3]) + " \ufffd café"
    return [stream(parts, content_type=d.content_type)], Ok(text=expected)


@fault("stream-reset-mid", STREAM, ALL_FAMILIES)
def _reset_mid(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    # Output had begun: "could not connect ... is the server running" would be untrue.
    expect = Fails(
        APIConnectionError,
        1,
        says=("reset",),
        never_says=("could not connect", "base_url right"),
        partial=PARTIAL,
    )
    return [partial_stream(d, end="reset")], expect


@fault("stream-hang-mid", STREAM)
def _hang_mid(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    expect = Fails(APITimeoutError, 1, partial=PARTIAL, max_elapsed=3.0)
    return [partial_stream(d, end="hang")], expect


@fault(
    "stream-hang-mid-chunk-timeout",
    STREAM,
    needs_chunk_timeout=True,
    timeout=5.0,
    stream_chunk_timeout=0.3,
)
def _hang_mid_chunk(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    # The per-read timeout is long; only stream_chunk_timeout can end this in time.
    expect = Fails(APITimeoutError, 1, partial=PARTIAL, exact="StreamTimeoutError", max_elapsed=2.5)
    return [partial_stream(d, end="hang")], expect


@fault(
    "stream-keepalive-pings-forever",
    STREAM,
    ("openai", "ollama"),
    needs_chunk_timeout=True,
    timeout=5.0,
    stream_chunk_timeout=0.3,
)
def _pings(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    # Bytes keep coming (SSE comments / blank NDJSON lines), but no event: a stuck server.
    pings: list[Any] = []
    for _ in range(30):
        pings += [d.keepalive(), Sleep(0.1)]
    expect = Fails(APITimeoutError, 1, partial=PARTIAL, exact="StreamTimeoutError", max_elapsed=2.5)
    return [partial_stream(d, *pings, end="close")], expect


def _trickled(d: Dialect) -> list[Any]:
    # The last event's middle (with the 3 bytes of "✓") arrives one byte per 100 ms.
    last = d.piece_event(PIECES[3])
    start = last.index("✓".encode()) - 2
    middle = last[start : start + 8]
    return [
        *d.piece_events(PIECES[:3]),
        last[:start],
        Trickle(middle, 0.1),
        last[start + 8 :],
        *d.end_events(),
    ]


@fault("stream-slow-trickle", STREAM, stream_chunk_timeout=None)
def _trickle(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    # Each byte comes within the 0.5 s read timeout: slow but alive, so it completes.
    return [stream(_trickled(d), content_type=d.content_type)], Ok(min_elapsed=0.7)


@fault(
    "stream-trickle-slower-than-chunk-timeout",
    STREAM,
    needs_chunk_timeout=True,
    stream_chunk_timeout=0.3,
)
def _trickle_too_slow(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    # One event takes 0.8 s to arrive: longer than the 0.3 s allowed between events.
    expect = Fails(
        APITimeoutError,
        1,
        partial="".join(PIECES[:3]),
        exact="StreamTimeoutError",
        max_elapsed=2.5,
    )
    return [stream(_trickled(d), content_type=d.content_type)], expect


# ------------------------------------------------------------------ the matrix


def _kind(f: Fault, method: str) -> tuple[str, bool] | None:
    """(kind, streaming flag) for a method, or None if the fault does not apply to it."""
    if method in ("stream", "astream"):
        return ("stream", False) if "stream" in f.kinds else None
    if "whole" in f.kinds:
        return ("whole", False)
    return ("stream", True)


def _cells() -> list[Any]:
    cells = []
    for f in FAULTS:
        for family in f.families:
            for cls_name in MODEL_CLASSES:
                for method in METHODS:
                    if _kind(f, method) is None:
                        continue
                    marks = []
                    if f.needs_chunk_timeout and not HAS_CHUNK_TIMEOUT:
                        marks.append(
                            pytest.mark.xfail(
                                strict=True, reason="stream_chunk_timeout not implemented yet"
                            )
                        )
                    cells.append(
                        pytest.param(
                            f,
                            family,
                            cls_name,
                            method,
                            id=f"{f.name}-{family}-{cls_name}-{method}",
                            marks=marks,
                        )
                    )
    return cells


CELLS = _cells()


def check_delays(delays: list[float], expected: tuple[Delay, ...]) -> None:
    assert len(delays) == len(expected), f"retry delays {delays}, expected {expected}"
    for got, (low, high) in zip(delays, expected, strict=True):
        assert low <= got <= high, f"retry delay {got} not within [{low}, {high}] ({delays})"


def check_error(outcome: Outcome, expect: Fails, server: FaultyServer | None, method: str) -> None:
    error = outcome.error
    assert error is not None, (
        f"expected {expect.error.__name__}, but the call 'succeeded' with {outcome.text!r}"
    )
    assert isinstance(error, expect.error), (
        f"expected {expect.error.__name__}, got {type(error).__name__}: {error}"
    )
    if expect.exact is not None:
        assert type(error).__name__ == expect.exact, f"got {type(error).__name__}: {error}"
    assert error.status_code == expect.status, f"status_code {error.status_code}: {error}"
    message = str(error).lower()
    for words in expect.says:
        assert words in message, f"the message should say {words!r}: {error}"
    if expect.says_any:
        assert any(w in message for w in expect.says_any), (
            f"the message should say one of {expect.says_any}: {error}"
        )
    for words in expect.never_says:
        assert words not in message, f"the message should not say {words!r}: {error}"
    if expect.request_id:
        assert server is not None
        last = server.requests[-1].request_id
        assert error.request_id == last, f"request_id {error.request_id!r}, sent {last!r}"
        assert last in str(error)
    if expect.retry_after is not None:
        assert getattr(error, "retry_after", None) == expect.retry_after
    if expect.partial is None:
        assert not error.partial_text, f"no output had begun, partial={error.partial_text!r}"
    else:
        assert error.partial_text == expect.partial, (
            f"partial_text {error.partial_text!r}, expected {expect.partial!r}"
        )
        if method in ("stream", "astream"):
            assert text_of(outcome.seen) == expect.partial, "the caller saw other text"
    for where in (str(error), repr(error), error.message, error.partial_text or ""):
        assert KEY not in where, "the API key leaked into the error"
    assert KEY not in json.dumps(error.body, default=str), "the API key leaked into error.body"
    assert outcome.elapsed <= expect.max_elapsed, f"took {outcome.elapsed:.2f} s"


def check_ok(outcome: Outcome, expect: Ok) -> None:
    if outcome.error is not None:
        raise AssertionError(
            f"expected the full text, got {type(outcome.error).__name__}: {outcome.error}"
        ) from outcome.error
    assert outcome.text == expect.text, (
        f"text differs: {len(outcome.text or '')} chars vs {len(expect.text)} expected; "
        f"got {(outcome.text or '')[:80]!r}"
    )
    assert outcome.elapsed >= expect.min_elapsed


@pytest.mark.parametrize(("f", "family", "cls_name", "method"), CELLS)
def test_fault(f: Fault, family: str, cls_name: str, method: str, server: FaultyServer) -> None:
    kind, streaming = _kind(f, method) or ("", False)
    dialect = DIALECTS[(family, cls_name == "chat")]
    scripts, expect = f.build(dialect, kind)
    server.script(*scripts)
    recorder = Recorder()
    overrides = dict(f.model)
    if streaming:
        overrides["streaming"] = True
    model = build_model(MODEL_CLASSES[cls_name], dialect, server.url, recorder, **overrides)

    outcome = call(model, method)

    # What reached the server: every attempt to the right path, stream flag as expected.
    for request in server.requests:
        assert request.path == dialect.path
        assert bool(request.json().get("stream")) == (kind == "stream")
    assert server.attempts == expect.attempts, (
        f"the server saw {server.attempts} attempts, expected {expect.attempts}"
        + (f"; the call ended with {outcome.error!r}" if outcome.error else "")
    )
    assert server.pending == 0
    assert server.unexpected == 0
    check_delays(recorder.delays, expect.delays)
    if isinstance(expect, Ok):
        check_ok(outcome, expect)
    else:
        check_error(outcome, expect, server, method)


# ------------------------------------------------------------------ nobody answers


UNREACHABLE = [
    pytest.param(cls_name, method, id=f"{cls_name}-{method}")
    for cls_name in MODEL_CLASSES
    for method in METHODS
]


@pytest.mark.parametrize(("cls_name", "method"), UNREACHABLE)
def test_connection_refused(cls_name: str, method: str) -> None:
    """A closed port: retried per policy (the server never sees it), then typed."""
    dialect = DIALECTS[("openai", cls_name == "chat")]
    recorder = Recorder()
    model = build_model(MODEL_CLASSES[cls_name], dialect, refused_url(), recorder)
    outcome = call(model, method)
    check_delays(recorder.delays, BACKOFF)
    check_error(
        outcome,
        Fails(APIConnectionError, says=("could not connect",), max_elapsed=3.0),
        None,
        method,
    )


@pytest.mark.parametrize(("cls_name", "method"), UNREACHABLE)
def test_never_accepted(cls_name: str, method: str) -> None:
    """A frozen server (the kernel completes the handshake, nobody answers): timed out."""
    dialect = DIALECTS[("openai", cls_name == "chat")]
    recorder = Recorder()
    with NeverAccept() as frozen:
        model = build_model(MODEL_CLASSES[cls_name], dialect, frozen.url, recorder, timeout=0.3)
        outcome = call(model, method)
    check_delays(recorder.delays, BACKOFF)
    check_error(outcome, Fails(APITimeoutError, says=("timed out",), max_elapsed=3.0), None, method)


# ------------------------------------------------------------------ request ids mid-stream


MIDSTREAM = {
    "error-event": lambda d: partial_stream(d, d.error_event("CUDA out of memory")),
    "cut": lambda d: partial_stream(d, end="close"),
    "reset": lambda d: partial_stream(d, end="reset"),
    "no-end-marker": lambda d: stream(d.piece_events(PIECES)),
    "hang": lambda d: partial_stream(d, end="hang"),
}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("cls_name", sorted(MODEL_CLASSES))
@pytest.mark.parametrize("case", sorted(MIDSTREAM))
def test_midstream_errors_carry_the_request_id(
    case: str, cls_name: str, method: str, server: FaultyServer
) -> None:
    """The 200 that opened the stream had ``x-request-id``; an error after it must name it.

    That id is what a user quotes to the server's operators about a broken answer. invoke
    and ainvoke read the same stream with ``streaming=True``.
    """
    dialect = DIALECTS[("openai", cls_name == "chat")]
    server.script(MIDSTREAM[case](dialect))
    streaming = {} if method in STREAM_PATHS else {"streaming": True}
    model = build_model(MODEL_CLASSES[cls_name], dialect, server.url, Recorder(), **streaming)
    outcome = call(model, method)
    assert isinstance(outcome.error, CustomLLMError), outcome.error
    sent = server.requests[0].request_id
    assert outcome.error.request_id == sent, (
        f"{type(outcome.error).__name__} has request_id={outcome.error.request_id!r}; the "
        f"server sent x-request-id: {sent} with the stream"
    )


def test_redaction_keeps_the_package_own_words(server: FaultyServer) -> None:
    """A key that is also an ordinary word must not be masked out of the package's wording.

    ``api_key="ollama"`` is the placeholder Ollama's docs use; masking every "ollama" turns
    "wire_format 'ollama'" into "wire_format '**********'" and hides nothing.
    """
    dialect = DIALECTS[("ollama", True)]
    server.script(stream([b"not json at all\n"], content_type=dialect.content_type))
    model = build_model(MODEL_CLASSES["chat"], dialect, server.url, api_key="ollama")
    outcome = call(model, "stream")
    assert isinstance(outcome.error, ResponseError), outcome.error
    assert "wire_format 'ollama'" in str(outcome.error), str(outcome.error)
