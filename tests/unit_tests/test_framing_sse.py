"""Unit tests for langchain_customllm._framing: the SSE decoder, case by case."""

from __future__ import annotations

import pytest

from langchain_customllm._framing import (
    SSEDecoder,
    SSEEvent,
)
from tests.unit_tests._framing_helpers import (
    ENDINGS,
    bytewise,
    run,
    sse,
)

# ------------------------------------------------------------------------- SSE: basics


@pytest.mark.parametrize("nl", ENDINGS)
def test_sse_single_event_dispatched_on_blank_line(nl: str) -> None:
    decoder = SSEDecoder()
    assert decoder.feed(sse("data: hello\n", nl)) == []
    assert decoder.feed(sse("\n", nl)) == [SSEEvent(data="hello")]
    assert decoder.flush() == []


RICH_DOC = (
    ": keep-alive\n"
    "\n"
    "event: message_start\n"
    "id: 1\n"
    "retry: 2500\n"
    'data: {"a": 1}\n'
    "\n"
    ":ping\n"
    "data:first\n"
    ": a comment between data lines\n"
    "data:  second\n"
    "data\n"
    "\n"
    "\n"
    "\n"
    "id: 2\n"
    "data: é€😀\n"
    "\n"
    "data: [DONE]\n"
    "\n"
)
RICH_EXPECTED = [
    SSEEvent(data='{"a": 1}', event="message_start", id="1", retry=2500),
    SSEEvent(data="first\n second\n", event=None, id="1", retry=None),
    SSEEvent(data="é€😀", id="2"),
    SSEEvent(data="[DONE]", id="2"),
]


@pytest.mark.parametrize("nl", ENDINGS)
def test_sse_rich_document_whole(nl: str) -> None:
    assert run(SSEDecoder, [sse(RICH_DOC, nl)]) == RICH_EXPECTED


@pytest.mark.parametrize("nl", ENDINGS)
def test_sse_rich_document_byte_by_byte(nl: str) -> None:
    assert run(SSEDecoder, bytewise(sse(RICH_DOC, nl))) == RICH_EXPECTED


@pytest.mark.parametrize("nl", ENDINGS)
def test_sse_events_come_from_feed_not_only_flush(nl: str) -> None:
    decoder = SSEDecoder()
    got: list[SSEEvent] = []
    for chunk in bytewise(sse(RICH_DOC, nl)):
        got.extend(decoder.feed(chunk))
    assert got == RICH_EXPECTED
    assert decoder.flush() == []


def test_sse_mixed_line_endings_in_one_stream() -> None:
    data = b"data: a\r\ndata: b\rdata: c\n\r\nevent: e\rdata: d\r\r"
    expected = [SSEEvent(data="a\nb\nc"), SSEEvent(data="d", event="e")]
    assert run(SSEDecoder, [data]) == expected
    assert run(SSEDecoder, bytewise(data)) == expected


# ------------------------------------------------------------- SSE: CR split across reads


def test_sse_cr_then_lf_in_next_chunk_is_one_line_end() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    # If this "\n" were a second line end it would be a blank line and dispatch "a".
    assert decoder.feed(b"\n") == []
    assert decoder.feed(b"data: b\n") == []
    assert decoder.flush() == [SSEEvent(data="a\nb")]


def test_sse_cr_lf_split_does_not_create_empty_event() -> None:
    chunks = [b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"]
    assert run(SSEDecoder, chunks) == [SSEEvent(data="a\nb")]


def test_sse_cr_lf_split_dispatch_timing() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\ndata: b\r") == []
    # The blank line ("\r") completes the event as soon as it is seen.
    assert decoder.feed(b"\n\r") == [SSEEvent(data="a\nb")]
    # ... and its trailing "\n" (same "\r\n") must not dispatch anything else.
    assert decoder.feed(b"\n") == []
    assert decoder.flush() == []


def test_sse_cr_at_chunk_end_followed_by_cr_is_blank_line() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: x\r") == []
    assert decoder.feed(b"\r") == [SSEEvent(data="x")]
    assert decoder.flush() == []


def test_sse_cr_at_chunk_end_followed_by_text_starts_new_line() -> None:
    assert run(SSEDecoder, [b"data: x\r", b"data: y\r\r"]) == [SSEEvent(data="x\ny")]


@pytest.mark.parametrize("gap", [[b""], [b"", b""]])
def test_sse_pending_cr_survives_empty_chunks(gap: list[bytes]) -> None:
    chunks = [b"data: x\r", *gap, b"\n", b"data: y\n\n"]
    assert run(SSEDecoder, chunks) == [SSEEvent(data="x\ny")]


def test_sse_pending_cr_then_partial_character() -> None:
    # "\r", then the first byte of "é" alone (decodes to nothing yet), then the rest: the
    # "é" line is an unknown field and ignored; "x" is dispatched by the blank line.
    chunks = [b"data: x\r", b"\xc3", b"\xa9\n\n"]
    decoder = SSEDecoder()
    assert decoder.feed(chunks[0]) == []
    assert decoder.feed(chunks[1]) == []
    assert decoder.feed(chunks[2]) == [SSEEvent(data="x")]
    assert decoder.flush() == []


def test_sse_crlf_lf_is_two_line_ends() -> None:
    # "\r\n" then "\n": the second "\n" is a blank line, so the event dispatches.
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r\n") == []
    assert decoder.feed(b"\n") == [SSEEvent(data="a")]


# ----------------------------------------------------------------- SSE: fields and lines


@pytest.mark.parametrize(
    ("line", "expected_data"),
    [
        ("data: x", "x"),
        ("data:x", "x"),
        ("data:  x", " x"),
        ("data: ", ""),
        ("data:", ""),
        ("data", ""),
        ("data: a: b", "a: b"),
        ("data: x ", "x "),
        ('data: {"k": "v"}', '{"k": "v"}'),
    ],
)
def test_sse_data_line_forms(line: str, expected_data: str) -> None:
    assert run(SSEDecoder, [f"{line}\n\n".encode()]) == [SSEEvent(data=expected_data)]


def test_sse_multiline_data_joined_with_newline() -> None:
    doc = b"data: line one\ndata: line two\ndata:\ndata: line four\n\n"
    assert run(SSEDecoder, [doc]) == [SSEEvent(data="line one\nline two\n\nline four")]


@pytest.mark.parametrize(
    "comment",
    [":", ": keep-alive", ":keepalive", ": data: not data", "::::"],
)
def test_sse_comments_are_ignored(comment: str) -> None:
    assert run(SSEDecoder, [f"{comment}\n\n".encode()]) == []
    doc = f"data: a\n{comment}\ndata: b\n\n".encode()
    assert run(SSEDecoder, [doc]) == [SSEEvent(data="a\nb")]


def test_sse_event_field() -> None:
    doc = b"event: content_block_delta\ndata: {}\n\ndata: plain\n\n"
    assert run(SSEDecoder, [doc]) == [
        SSEEvent(data="{}", event="content_block_delta"),
        SSEEvent(data="plain", event=None),
    ]


def test_sse_id_persists_across_events_and_can_be_replaced() -> None:
    doc = b"id: 7\ndata: a\n\ndata: b\n\nid: 8\ndata: c\n\nid\ndata: d\n\n"
    assert run(SSEDecoder, [doc]) == [
        SSEEvent(data="a", id="7"),
        SSEEvent(data="b", id="7"),
        SSEEvent(data="c", id="8"),
        SSEEvent(data="d", id=""),
    ]


def test_sse_id_with_nul_is_ignored() -> None:
    doc = b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n"
    assert run(SSEDecoder, [doc]) == [SSEEvent(data="a", id="1"), SSEEvent(data="b", id="1")]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0", 0), ("1500", 1500), ("abc", None), ("1.5", None), ("-1", None), ("", None)],
)
def test_sse_retry_field(value: str, expected: int | None) -> None:
    doc = f"retry: {value}\ndata: x\n\n".encode()
    assert run(SSEDecoder, [doc]) == [SSEEvent(data="x", retry=expected)]


@pytest.mark.parametrize("value", ["\u00b2", "\u0661\u0662", "\uff11"])
def test_sse_retry_field_with_non_ascii_digits_is_ignored(value: str) -> None:
    # The spec accepts only ASCII digits; other Unicode "digits" must be ignored, not
    # turned into a number and certainly not raise out of the decoder.
    doc = f"retry: {value}\ndata: x\n\n".encode()
    assert run(SSEDecoder, [doc]) == [SSEEvent(data="x", retry=None)]


def test_sse_unknown_fields_are_ignored() -> None:
    doc = b"foo: bar\ndata: x\nDATA: y\nData: z\n\nfoo: only\n\n"
    assert run(SSEDecoder, [doc]) == [SSEEvent(data="x")]


@pytest.mark.parametrize(
    "doc",
    [
        b"\n",
        b"\n\n\n",
        b"\r\n\r\n",
        b"\r\r\r",
        b"\n\r\n\r",
        b": comment\n\n: another\n\n",
        b"id: 5\n\n",
        b"retry: 100\n\n",
        b"unknown: x\n\n",
        b"",
    ],
)
def test_sse_blocks_without_data_or_event_dispatch_nothing(doc: bytes) -> None:
    assert run(SSEDecoder, [doc]) == []
    assert run(SSEDecoder, bytewise(doc)) == []


def test_sse_done_marker_is_plain_data() -> None:
    doc = b'data: {"x": 1}\n\ndata: [DONE]\n\n'
    assert run(SSEDecoder, [doc]) == [SSEEvent(data='{"x": 1}'), SSEEvent(data="[DONE]")]


# ------------------------------------------------------------------ SSE: end of stream


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        (b"data: last", [SSEEvent(data="last")]),
        (b"data: last\n", [SSEEvent(data="last")]),
        (b"data: last\r", [SSEEvent(data="last")]),
        (b"data: last\r\n", [SSEEvent(data="last")]),
        (b"event: e\ndata: a\ndata: b", [SSEEvent(data="a\nb", event="e")]),
        (b"data: [DONE]", [SSEEvent(data="[DONE]")]),
    ],
)
def test_sse_unterminated_last_event_only_dispatched_by_flush(
    tail: bytes, expected: list[SSEEvent]
) -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: first\n\n") == [SSEEvent(data="first")]
    assert decoder.feed(tail) == []
    assert decoder.flush() == expected
    # A second flush has nothing left.
    assert decoder.flush() == []


def test_sse_flush_on_empty_stream() -> None:
    assert SSEDecoder().flush() == []


# -------------------------------------------------------------------- SSE: UTF-8 issues


def test_sse_multibyte_character_split_across_feeds() -> None:
    text = "data: é€😀\n\n"
    raw = text.encode("utf-8")
    for cut in range(len(raw) + 1):
        assert run(SSEDecoder, [raw[:cut], raw[cut:]]) == [SSEEvent(data="é€😀")], cut
    assert run(SSEDecoder, bytewise(raw)) == [SSEEvent(data="é€😀")]


def test_sse_four_byte_character_each_byte_alone_emits_nothing_until_complete() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: ") == []
    for byte in "😀".encode()[:-1]:
        assert decoder.feed(bytes([byte])) == []
    assert decoder.feed("😀".encode()[-1:]) == []
    assert decoder.feed(b"\n\n") == [SSEEvent(data="😀")]


@pytest.mark.parametrize(
    "payload",
    [b"a\xffb", b"\xff", b"a\xc3b", b"\xed\xa0\x80", b"\xc0\xaf", b"ok\xf0\x9f\x98"],
)
def test_sse_invalid_utf8_is_replaced_not_raised(payload: bytes) -> None:
    raw = b"data: " + payload + b"\n\n"
    expected = [SSEEvent(data=payload.decode("utf-8", errors="replace"))]
    assert "\ufffd" in expected[0].data
    assert run(SSEDecoder, [raw]) == expected
    assert run(SSEDecoder, bytewise(raw)) == expected


def test_sse_truncated_multibyte_at_end_of_stream_is_replaced_on_flush() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: ab\xe2\x82") == []
    assert decoder.flush() == [SSEEvent(data="ab\ufffd")]
