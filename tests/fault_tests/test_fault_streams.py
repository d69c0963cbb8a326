"""The fault matrix's stream faults: every fault within a stream x invoke/ainvoke/stream/
astream x ChatCustomLLM/CustomLLM x wire format, as described in test_fault_matrix.py.

Streams cut, reset, hung or trickling, with error events, missing end markers and broken
UTF-8; then the request id every mid-stream error must carry, and the redaction that must
leave the package's own words alone.
"""

from __future__ import annotations

from typing import Any

import pytest

from langchain_customllm import (
    APIConnectionError,
    APITimeoutError,
    CustomLLMError,
    ResponseError,
    StreamError,
)
from tests._calls import STREAM_PATHS
from tests.fault_tests._helpers import (
    METHODS,
    MODEL_CLASSES,
    PARTIAL,
    PIECES,
    TEXT,
    Recorder,
    build_model,
    call,
)
from tests.fault_tests._matrix import (
    ALL_FAMILIES,
    STREAM,
    Expect,
    Fails,
    Fault,
    Ok,
    fault_registry,
    fault_test,
    ok,
    partial_stream,
)
from tests.servers.faulty import (
    DIALECTS,
    Behaviour,
    Dialect,
    FaultyServer,
    Sleep,
    Trickle,
    split_send,
    stream,
)

FAULTS: list[Fault] = []
fault = fault_registry(FAULTS)


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


test_fault = fault_test(FAULTS)


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
