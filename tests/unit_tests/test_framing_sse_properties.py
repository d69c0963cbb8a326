"""Unit tests for langchain_customllm._framing: SSE properties under any split of reads."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from langchain_customllm._framing import (
    SSEDecoder,
    SSEEvent,
)
from tests.unit_tests._framing_helpers import (
    ENDINGS,
    LIGHT,
    PROPS,
    bytewise,
    run,
    split_at,
)

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
