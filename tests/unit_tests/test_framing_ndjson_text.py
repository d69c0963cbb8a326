"""Unit tests for langchain_customllm._framing: NDJSON and text decoders, make_decoder."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from langchain_customllm._framing import (
    NDJSONDecoder,
    SSEDecoder,
    SSEEvent,
    TextDecoder,
    make_decoder,
)
from tests.unit_tests._framing_helpers import (
    LIGHT,
    bytewise,
    run,
    split_at,
)

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
