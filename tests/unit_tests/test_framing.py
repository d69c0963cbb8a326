"""Unit tests for langchain_customllm._framing (sans-IO stream framing)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from langchain_customllm._framing import (
    FramingDecoder,
    NDJSONDecoder,
    SSEDecoder,
    SSEEvent,
    TextDecoder,
    make_decoder,
)

ENDINGS = ["\n", "\r\n", "\r"]
PROPS = settings(max_examples=200, deadline=None)
LIGHT = settings(max_examples=120, deadline=None)


# ----------------------------------------------------------------------------- helpers


def run(factory: Callable[[], FramingDecoder], chunks: Sequence[bytes]) -> list[SSEEvent]:
    """Feed every chunk to a fresh decoder, then flush; return all events in order."""
    decoder = factory()
    events: list[SSEEvent] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    events.extend(decoder.flush())
    return events


def bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def split_at(data: bytes, points: Sequence[int]) -> list[bytes]:
    """Split ``data`` at the given offsets (clamped, sorted; duplicates give empty chunks)."""
    cuts = sorted(min(max(p, 0), len(data)) for p in points)
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in pairwise(bounds)]


def sse(text: str, nl: str = "\n") -> bytes:
    """Write a document with ``\\n`` and convert to the wanted line ending."""
    return text.replace("\n", nl).encode("utf-8")


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


# ------------------------------------------------------------ SSE: properties (splits)

SSE_TOKENS = st.sampled_from(
    [
        b"data:",
        b"data: ",
        b"event: ",
        b"id: ",
        b"retry: ",
        b":",
        b"\n",
        b"\r",
        b"\r\n",
        b"x",
        b" ",
        b"12",
        b"[DONE]",
        b"\xc3\xa9",
        b"\xf0\x9f\x98\x80",
        b"\xe2\x82\xac",
        b"\xff",
        b"\xe2\x82",
        b"\x00",
    ]
)
SSE_BYTES = st.one_of(
    st.lists(SSE_TOKENS, max_size=40).map(b"".join),
    st.binary(max_size=60),
)


@PROPS
@given(data=SSE_BYTES, points=st.lists(st.integers(0, 200), max_size=8))
def test_sse_any_split_gives_same_events_as_whole(data: bytes, points: list[int]) -> None:
    whole = run(SSEDecoder, [data])
    assert run(SSEDecoder, split_at(data, points)) == whole


@PROPS
@given(data=SSE_BYTES)
def test_sse_byte_by_byte_gives_same_events_as_whole(data: bytes) -> None:
    assert run(SSEDecoder, bytewise(data)) == run(SSEDecoder, [data])


# A structured document with a reference interpretation, so the splitting property is not
# only "consistent with itself" but also right.
FIELD_VALUE = st.text(alphabet='ab :é😀[]{}"', max_size=6)
LINE = st.one_of(
    st.tuples(st.just("data"), FIELD_VALUE),
    st.tuples(st.just("event"), FIELD_VALUE),
    st.tuples(st.just("id"), FIELD_VALUE),
    st.tuples(st.just("retry"), st.sampled_from(["0", "10", "x1"])),
    st.tuples(st.just(":"), FIELD_VALUE),
    st.tuples(st.just(""), st.just("")),
)


def reference_sse(lines: list[str]) -> list[SSEEvent]:
    events: list[SSEEvent] = []
    data: list[str] = []
    event: str | None = None
    last_id: str | None = None
    retry: int | None = None
    has = False
    for line in [*lines, ""]:
        if line == "":
            # Only "data" and "event" make a block an event; a block with neither (just
            # "id"/"retry") dispatches nothing, and its retry rides on the next event.
            if has:
                events.append(SSEEvent("\n".join(data), event, last_id, retry))
                data, event, retry, has = [], None, None, False
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
            has = True
        elif name == "event":
            event = value
            has = True
        elif name == "id":
            last_id = value
        elif name == "retry" and value.isdigit():
            retry = int(value)
    return events


@st.composite
def sse_documents(draw: st.DrawFn) -> tuple[bytes, list[str]]:
    items = draw(st.lists(LINE, max_size=14))
    endings = draw(st.lists(st.sampled_from(ENDINGS), min_size=len(items), max_size=len(items)))
    lines: list[str] = []
    parts: list[str] = []
    prev_ending = ""
    for (name, value), ending in zip(items, endings, strict=True):
        if name == "":
            line = ""
        elif name == ":":
            line = f":{value}"
        else:
            sep = draw(st.sampled_from([":", ": "]))
            line = f"{name}{sep}{value}"
        if prev_ending == "\r" and line == "" and ending == "\n":
            # "\r" + "\n" is one line end, not two: write the blank line another way.
            ending = "\r\n"
        lines.append(line)
        parts.append(line + ending)
        prev_ending = ending
    return "".join(parts).encode("utf-8"), lines


@LIGHT
@given(doc=sse_documents(), points=st.lists(st.integers(0, 300), max_size=10))
def test_sse_structured_documents_match_reference_for_any_split(
    doc: tuple[bytes, list[str]], points: list[int]
) -> None:
    raw, lines = doc
    expected = reference_sse(lines)
    assert run(SSEDecoder, [raw]) == expected
    assert run(SSEDecoder, split_at(raw, points)) == expected
    assert run(SSEDecoder, bytewise(raw)) == expected


# What servers send: whole single-line data events, read at event boundaries (the decoder's
# fast path), with now and then a block that needs the general path before or between them.
SERVER_BLOCK = st.one_of(
    st.tuples(st.just("data"), FIELD_VALUE),
    st.tuples(st.sampled_from(["id", "retry", "event", ":", "data2"]), FIELD_VALUE),
)


@st.composite
def server_streams(draw: st.DrawFn) -> tuple[list[bytes], list[str]]:
    blocks = draw(st.lists(SERVER_BLOCK, max_size=12))
    lines: list[str] = []
    texts: list[str] = []
    for name, value in blocks:
        if name == "retry":
            block = [f"retry: {draw(st.sampled_from(['5', '60', 'x']))}"]
        elif name == ":":
            block = [f":{value}"]
        elif name == "data2":  # a two-line event
            block = [f"data: {value}", "data:x"]
        else:
            block = [f"{name}: {value}"]
        lines += [*block, ""]
        texts.append("".join(line + "\n" for line in block) + "\n")
    # Reads that are one or more whole blocks, as a server's writes usually arrive.
    cuts = sorted(set(draw(st.lists(st.integers(0, len(texts)), max_size=6))))
    bounds = [0, *cuts, len(texts)]
    reads = ["".join(texts[a:b]).encode() for a, b in pairwise(bounds)]
    return reads, lines


@PROPS
@given(stream=server_streams())
def test_sse_whole_event_reads_match_reference(stream: tuple[list[bytes], list[str]]) -> None:
    reads, lines = stream
    expected = reference_sse(lines)
    assert run(SSEDecoder, reads) == expected
    assert run(SSEDecoder, bytewise(b"".join(reads))) == expected


def test_sse_fast_reads_keep_id_and_pending_retry() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"id: 7\n\nretry: 30\n\n") == []
    # The retry that came alone rides on the next event; the id stays.
    assert decoder.feed(b"data: a\n\ndata: b\n\n") == [
        SSEEvent("a", None, "7", 30),
        SSEEvent("b", None, "7", None),
    ]
    assert decoder.feed(b"data: c\n\n") == [SSEEvent("c", None, "7", None)]


# ---------------------------------------------------------------------------- NDJSON


@pytest.mark.parametrize("nl", ["\n", "\r\n"])
def test_ndjson_one_event_per_line(nl: str) -> None:
    raw = f'{{"a": 1}}{nl}{{"b": [1, 2]}}{nl}'.encode()
    events = run(NDJSONDecoder, [raw])
    assert [e.data for e in events] == ['{"a": 1}', '{"b": [1, 2]}']
    assert [json.loads(e.data) for e in events] == [{"a": 1}, {"b": [1, 2]}]
    assert all(e.event is None and e.id is None and e.retry is None for e in events)


def test_ndjson_events_returned_by_feed_as_lines_complete() -> None:
    decoder = NDJSONDecoder()
    assert decoder.feed(b'{"a": 1}\n{"b"') == [SSEEvent(data='{"a": 1}')]
    assert decoder.feed(b": 2}") == []
    assert decoder.feed(b"\n") == [SSEEvent(data='{"b": 2}')]
    assert decoder.flush() == []


def test_ndjson_blank_lines_skipped() -> None:
    raw = b'\n\n{"a": 1}\n   \n\t\n\r\n{"b": 2}\n\n'
    assert [e.data for e in run(NDJSONDecoder, [raw])] == ['{"a": 1}', '{"b": 2}']


def test_ndjson_last_line_without_newline_via_flush() -> None:
    decoder = NDJSONDecoder()
    assert decoder.feed(b'{"a": 1}\n{"done": true}') == [SSEEvent(data='{"a": 1}')]
    assert decoder.flush() == [SSEEvent(data='{"done": true}')]
    assert decoder.flush() == []


def test_ndjson_split_json_line_byte_by_byte() -> None:
    raw = '{"message": {"content": "héllo 😀"}, "done": false}\n{"done": true}\n'.encode()
    events = run(NDJSONDecoder, bytewise(raw))
    assert [json.loads(e.data) for e in events] == [
        {"message": {"content": "héllo 😀"}, "done": False},
        {"done": True},
    ]


def test_ndjson_crlf_split_between_reads_leaves_no_cr_in_data() -> None:
    events = run(NDJSONDecoder, [b'{"a": 1}\r', b'\n{"b": 2}\r', b"\n"])
    assert [e.data for e in events] == ['{"a": 1}', '{"b": 2}']


def test_ndjson_invalid_utf8_is_replaced() -> None:
    events = run(NDJSONDecoder, [b'{"a": "x\xffy"}\n'])
    assert events == [SSEEvent(data='{"a": "x\ufffdy"}')]


JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-1000, 1000),
    st.text(alphabet='ab\n\r é😀"\\', max_size=5),
)
JSON_VALUES = st.one_of(
    JSON_SCALARS,
    st.lists(JSON_SCALARS, max_size=3),
    st.dictionaries(st.sampled_from(["k", "é", ""]), JSON_SCALARS, max_size=2),
)


@LIGHT
@given(
    objs=st.lists(
        st.dictionaries(st.sampled_from(["x", "y", "z"]), JSON_VALUES, max_size=3), max_size=5
    ),
    endings=st.lists(st.sampled_from(["\n", "\r\n", "\n\n", "\r\n\r\n"]), min_size=5, max_size=5),
    trailing=st.booleans(),
    points=st.lists(st.integers(0, 300), max_size=8),
)
def test_ndjson_any_split_round_trips(
    objs: list[dict[str, object]], endings: list[str], trailing: bool, points: list[int]
) -> None:
    parts = []
    for i, obj in enumerate(objs):
        last = i == len(objs) - 1
        ending = "" if last and not trailing else endings[i]
        parts.append(json.dumps(obj, ensure_ascii=False) + ending)
    raw = "".join(parts).encode("utf-8")
    events = run(NDJSONDecoder, split_at(raw, points))
    assert [json.loads(e.data) for e in events] == objs
    assert events == run(NDJSONDecoder, [raw])


# ------------------------------------------------------------------------------ Text


def test_text_decoder_utf8_split() -> None:
    raw = "é".encode()
    decoder = TextDecoder()
    assert decoder.feed(raw[:1]) == []
    assert decoder.feed(raw[1:]) == [SSEEvent(data="é")]
    assert decoder.flush() == []


def test_text_decoder_each_piece_is_one_event_lines_not_split() -> None:
    decoder = TextDecoder()
    assert decoder.feed(b"Hello\nwor") == [SSEEvent(data="Hello\nwor")]
    assert decoder.feed(b"ld\r\n") == [SSEEvent(data="ld\r\n")]
    assert decoder.feed(b"") == []
    assert decoder.flush() == []


def test_text_decoder_truncated_character_replaced_on_flush() -> None:
    decoder = TextDecoder()
    assert decoder.feed(b"ab\xf0\x9f") == [SSEEvent(data="ab")]
    assert decoder.flush() == [SSEEvent(data="\ufffd")]


def test_text_decoder_invalid_utf8_replaced() -> None:
    assert run(TextDecoder, [b"a\xffb"]) == [SSEEvent(data="a\ufffdb")]


@LIGHT
@given(
    text=st.text(max_size=40),
    points=st.lists(st.integers(0, 200), max_size=8),
)
def test_text_decoder_any_split_reassembles_text(text: str, points: list[int]) -> None:
    raw = text.encode("utf-8", errors="surrogatepass")
    expected = raw.decode("utf-8", errors="replace")
    events = run(TextDecoder, split_at(raw, points))
    assert "".join(e.data for e in events) == expected
    assert all(e.data for e in events)


@LIGHT
@given(raw=st.binary(max_size=40), points=st.lists(st.integers(0, 100), max_size=8))
def test_text_decoder_any_bytes_any_split_never_raises(raw: bytes, points: list[int]) -> None:
    events = run(TextDecoder, split_at(raw, points))
    assert "".join(e.data for e in events) == raw.decode("utf-8", errors="replace")


# ----------------------------------------------------------------------- make_decoder


@pytest.mark.parametrize(
    ("name", "cls"), [("sse", SSEDecoder), ("ndjson", NDJSONDecoder), ("text", TextDecoder)]
)
def test_make_decoder_returns_fresh_decoder(name: str, cls: type) -> None:
    first = make_decoder(name)  # type: ignore[arg-type]
    second = make_decoder(name)  # type: ignore[arg-type]
    assert type(first) is cls
    assert first is not second


def test_make_decoder_instances_do_not_share_state() -> None:
    first = make_decoder("sse")
    second = make_decoder("sse")
    assert first.feed(b"data: a\n") == []
    assert second.feed(b"\n") == []
    assert first.feed(b"\n") == [SSEEvent(data="a")]


@pytest.mark.parametrize("name", ["", "SSE", "json", "jsonl", "event-stream", "sse "])
def test_make_decoder_bad_name_raises_value_error(name: str) -> None:
    with pytest.raises(ValueError, match="Unknown stream framing"):
        make_decoder(name)  # type: ignore[arg-type]
