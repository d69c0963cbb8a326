"""HTTP/1.1 bytes (`_h1wire`): request heads, response heads, body framing, chunked bodies."""

from __future__ import annotations

import pytest

from langchain_customllm._h1wire import (
    Chunked,
    LocalWireError,
    WireError,
    head_end,
    parse_head,
    request_head,
)


def test_request_head_is_one_line_per_header_and_a_blank_line() -> None:
    head = request_head("POST", b"/v1/chat?x=1", [(b"Host", b"h:1"), (b"content-length", b"2")])
    assert head == b"POST /v1/chat?x=1 HTTP/1.1\r\nHost: h:1\r\ncontent-length: 2\r\n\r\n"


@pytest.mark.parametrize("header", [(b"x", b"a\r\nInjected: 1"), (b"x\n", b"a"), (b"x", b"a\0")])
def test_a_header_that_would_split_is_refused(header: tuple[bytes, bytes]) -> None:
    with pytest.raises(LocalWireError, match="line break or NUL"):
        request_head("GET", b"/", [header])


@pytest.mark.parametrize(
    ("data", "end"),
    [
        (b"HTTP/1.1 200 OK\r\nA: b\r\n\r\nbody", 25),
        (b"HTTP/1.1 200 OK\nA: b\n\nbody", 22),
        (b"HTTP/1.1 200 OK\r\nA: b\r\n", -1),
        (b"HTTP/1.1 200 OK\nA: b\n\nbody\r\n\r\n", 22),  # the first blank line ends it
        (b"", -1),
    ],
)
def test_head_end(data: bytes, end: int) -> None:
    assert head_end(bytearray(data)) == end


def _head(text: str, method: str = "POST") -> object:
    return parse_head(text.replace("|", "\r\n").encode(), method)


def test_a_length_framed_answer() -> None:
    head = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\nX-A:  v \r\n\r\n", "POST")
    assert (head.version, head.status, head.reason) == (b"HTTP/1.1", 200, b"OK")
    assert head.headers == [(b"Content-Length", b"11"), (b"X-A", b"v")]
    assert (head.framing, head.length, head.keep_alive) == ("length", 11, True)


@pytest.mark.parametrize(
    ("text", "method", "framing", "keep_alive"),
    [
        ("HTTP/1.1 200 OK|Transfer-Encoding: chunked||", "POST", "chunked", True),
        ("HTTP/1.1 200 OK|Transfer-Encoding: gzip, chunked||", "POST", "chunked", True),
        ("HTTP/1.1 200 OK|Transfer-Encoding: gzip||", "POST", "close", False),
        (
            "HTTP/1.1 200 OK|Transfer-Encoding: chunked|Content-Length: 5||",
            "POST",
            "chunked",
            False,
        ),
        ("HTTP/1.1 200 OK||", "POST", "close", False),
        ("HTTP/1.1 204 No Content|Content-Length: 9||", "POST", "none", True),
        ("HTTP/1.1 304 Not Modified||", "GET", "none", True),
        ("HTTP/1.1 200 OK|Content-Length: 9||", "HEAD", "none", True),
        ("HTTP/1.1 100 Continue||", "POST", "none", True),
        ("HTTP/1.1 200 OK|Content-Length: 2|Connection: close||", "POST", "length", False),
        ("HTTP/1.0 200 OK|Content-Length: 2||", "POST", "length", False),
        ("HTTP/1.0 200 OK|Content-Length: 2|Connection: Keep-Alive||", "POST", "length", True),
        ("HTTP/1.1 200 OK|Content-Length: 2, 2||", "POST", "length", True),
    ],
)
def test_framing_and_keep_alive(text: str, method: str, framing: str, keep_alive: bool) -> None:
    head = _head(text, method)
    assert (head.framing, head.keep_alive) == (framing, keep_alive)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("HTTP/2 200 OK||", "status line"),
        ("ICY 200 OK||", "status line"),
        ("HTTP/1.1 2000 OK||", "status line"),
        ("HTTP/1.1 200 OK|no colon here||", "malformed header"),
        ("HTTP/1.1 200 OK|Bad Name: x||", "malformed header"),
        ("HTTP/1.1 200 OK|A: b| folded||", "folds a header"),
        ("HTTP/1.1 200 OK|Content-Length: 2|Content-Length: 3||", "not one number"),
        ("HTTP/1.1 200 OK|Content-Length: -1||", "not one number"),
    ],
)
def test_bad_heads_say_what_was_wrong(text: str, match: str) -> None:
    with pytest.raises(WireError, match=match):
        _head(text)


def test_chunked_whole_and_byte_by_byte_give_the_same_body() -> None:
    wire = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\nNEXT"
    whole = Chunked()
    buffer = bytearray(wire)
    assert whole.take(buffer) == b"hello world"
    assert whole.done
    assert buffer == b"NEXT"  # what follows the body is left alone
    piecewise = Chunked()
    buffer, out = bytearray(), []
    for byte in wire[:-4]:
        buffer.append(byte)
        out.append(piecewise.take(buffer))
    assert b"".join(out) == b"hello world"
    assert piecewise.done
    assert b"hel" in out or b"h" in out  # data is handed out as it arrives, not at the end


def test_chunked_accepts_bare_lf_and_waits_for_more() -> None:
    decoder = Chunked()
    buffer = bytearray(b"3\nabc\n0\n")
    assert decoder.take(buffer) == b"abc"
    assert not decoder.done  # the blank line after the last chunk has not come
    buffer += b"\n"
    assert decoder.take(buffer) == b""
    assert decoder.done


@pytest.mark.parametrize(
    ("wire", "match"),
    [
        (b"zz\r\n", "bad chunk size"),
        (b"\r\n", "bad chunk size"),
        (b"3\r\nabcXY", "not followed by CRLF"),
        (b"1" * 5000, "too long"),
    ],
)
def test_bad_chunks(wire: bytes, match: str) -> None:
    with pytest.raises(WireError, match=match):
        Chunked().take(bytearray(wire))
