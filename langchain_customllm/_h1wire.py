"""HTTP/1.1 as bytes, for the async transport (`_h1`): request heads, response heads, bodies.

Pure: no sockets, no event loop. The transport keeps received bytes in a ``bytearray`` and
asks this module where a response head ends, what it says, how its body is framed (RFC 9112
section 6.3) and, for a chunked body, which bytes are data. Everything a server can get
wrong raises `WireError` with what was wrong; `LocalWireError` is a request we must not send
(a header that would split into two).
"""

from __future__ import annotations

__all__ = [
    "MAX_HEAD",
    "Chunked",
    "Head",
    "LocalWireError",
    "WireError",
    "head_end",
    "parse_head",
    "request_head",
]

MAX_HEAD = 64 * 1024  # bytes a response head may take (h11's default limit is 16 KiB)
_MAX_CHUNK_LINE = 4096  # a chunk-size line with its extensions
_FORBIDDEN = (b"\r", b"\n", b"\0")
_NO_BODY = frozenset({204, 304})
_TOKEN = frozenset(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_HEX = frozenset(b"0123456789abcdefABCDEF")


class WireError(Exception):
    """The server's bytes are not HTTP/1.1 we can read (the message says what was wrong)."""


class LocalWireError(Exception):
    """A request that cannot be written as HTTP/1.1 (a header with a line break in it)."""


def request_head(method: str, target: bytes, headers: list[tuple[bytes, bytes]]) -> bytes:
    """The request line and headers, ending with the blank line.

    Raises:
        LocalWireError: A name or value holds CR, LF or NUL, which would let it end the head
            or add a header of its own.
    """
    lines = [method.encode("ascii"), b" ", target, b" HTTP/1.1\r\n"]
    for name, value in headers:
        for bad in _FORBIDDEN:
            if bad in name or bad in value:
                raise LocalWireError(
                    f"the header {name!r} holds a line break or NUL and cannot be sent"
                )
        lines += (name, b": ", value, b"\r\n")
    lines.append(b"\r\n")
    return b"".join(lines)


def head_end(buffer: bytearray) -> int:
    """Where the response head in ``buffer`` ends (just after its blank line), or -1.

    A server may end lines with a bare LF (RFC 9112 section 2.2 lets a reader accept it), so
    the first blank line of any kind ends the head, not a CRLF pair further on in the body.
    """
    ends = [
        found + size
        for pattern, size in ((b"\r\n\r\n", 4), (b"\n\n", 2), (b"\n\r\n", 3))
        if (found := buffer.find(pattern)) >= 0
    ]
    return min(ends) if ends else -1


class Head:
    """One parsed response head.

    Attributes:
        version: ``b"HTTP/1.1"`` or ``b"HTTP/1.0"``.
        status: The status code.
        reason: The reason phrase (may be empty).
        headers: ``(name, value)`` pairs as sent (names keep their case).
        framing: ``"none"`` (no body), ``"length"``, ``"chunked"`` or ``"close"`` (the body
            runs until the server closes the connection).
        length: The body's length when ``framing`` is ``"length"``.
        keep_alive: Whether the connection may carry another request after this answer.
    """

    __slots__ = ("framing", "headers", "keep_alive", "length", "reason", "status", "version")

    def __init__(
        self,
        version: bytes,
        status: int,
        reason: bytes,
        headers: list[tuple[bytes, bytes]],
        framing: str,
        length: int,
        keep_alive: bool,
    ) -> None:
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers
        self.framing = framing
        self.length = length
        self.keep_alive = keep_alive


def _status_line(line: bytes) -> tuple[bytes, int, bytes]:
    version, _, rest = line.partition(b" ")
    code, _, reason = rest.partition(b" ")
    if version not in (b"HTTP/1.1", b"HTTP/1.0") or len(code) != 3 or not code.isdigit():
        shown = line[:80].decode("latin-1")
        raise WireError(f"the answer does not start with an HTTP/1.x status line: {shown!r}")
    return version, int(code), reason.strip()


def _header(line: bytes) -> tuple[bytes, bytes]:
    name, colon, value = line.partition(b":")
    if not colon or not name or not _TOKEN.issuperset(name):
        if line[:1] in (b" ", b"\t"):
            raise WireError("the answer folds a header over two lines (obsolete, refused)")
        raise WireError(f"the answer has a malformed header line: {line[:80].decode('latin-1')!r}")
    return name, value.strip(b" \t")


def parse_head(data: bytes, method: str) -> Head:
    """Read a response head (the bytes `head_end` delimited) for a request of ``method``.

    Raises:
        WireError: A bad status line or header, or a Content-Length that is not one number.
    """
    lines = data.split(b"\n")
    version, status, reason = _status_line(lines[0].rstrip(b"\r"))
    headers: list[tuple[bytes, bytes]] = []
    lengths: set[bytes] = set()
    chunked = False
    encoded = False
    tokens: list[bytes] = []
    for raw in lines[1:]:
        line = raw.rstrip(b"\r")
        if not line:
            continue
        name, value = _header(line)
        headers.append((name, value))
        lower = name.lower()
        if lower == b"content-length":
            lengths.update(part.strip() for part in value.split(b","))
        elif lower == b"transfer-encoding":
            encoded = True
            chunked = value.lower().rstrip().endswith(b"chunked")
        elif lower == b"connection":
            tokens += (token.strip().lower() for token in value.split(b","))
    keep_alive = b"close" not in tokens and (version == b"HTTP/1.1" or b"keep-alive" in tokens)
    length = 0
    if method == "HEAD" or status in _NO_BODY or status < 200:
        framing = "none"
    elif encoded:
        # Transfer-Encoding wins over Content-Length; both at once is how requests get
        # smuggled, so such a connection is not used again.
        framing = "chunked" if chunked else "close"
        keep_alive = keep_alive and chunked and not lengths
    elif lengths:
        if len(lengths) > 1 or not all(value.isdigit() for value in lengths):
            raise WireError(f"the answer's Content-Length is not one number: {sorted(lengths)}")
        length = int(lengths.pop())
        framing = "length"
    else:
        framing = "close"
        keep_alive = False
    return Head(version, status, reason, headers, framing, length, keep_alive)


class Chunked:
    """A chunked body's decoder: takes what it can from the front of a buffer.

    Chunk extensions and trailers are read and dropped, as httpx's own transport does.
    """

    __slots__ = ("_left", "_state", "done")

    def __init__(self) -> None:
        self.done = False
        """Whether the last chunk and the trailers were read."""
        self._state = 0  # 0: size line, 1: data, 2: CRLF after data, 3: trailer lines
        self._left = 0

    def take(self, buffer: bytearray) -> bytes:
        """The body bytes at the front of ``buffer`` (removed from it); b"" means: need more.

        Raises:
            WireError: A chunk size that is not hex, or a chunk not followed by CRLF.
        """
        out: list[bytes] = []
        while not self.done:
            state = self._state
            if state == 1:
                if not buffer:
                    break
                part = bytes(buffer[: self._left])
                del buffer[: len(part)]
                out.append(part)
                self._left -= len(part)
                if self._left == 0:
                    self._state = 2
                continue
            if state == 2:
                if buffer[:2] == b"\r\n":
                    del buffer[:2]
                elif buffer[:1] == b"\n":
                    del buffer[:1]
                elif not buffer or buffer == b"\r":
                    break
                else:
                    raise WireError("a chunk of the answer is not followed by CRLF")
                self._state = 0
                continue
            newline = buffer.find(b"\n")
            if newline < 0:
                if len(buffer) > _MAX_CHUNK_LINE:
                    raise WireError("a chunk-size line of the answer is too long")
                break
            line = bytes(buffer[:newline]).rstrip(b"\r")
            del buffer[: newline + 1]
            if state == 3:
                self.done = not line  # a trailer line is dropped; the blank line ends it
                continue
            size = line.split(b";", 1)[0].strip()
            if not size or not _HEX.issuperset(size) or len(size) > 16:
                raise WireError(f"the answer has a bad chunk size: {line[:40]!r}")
            self._left = int(size, 16)
            self._state = 1 if self._left else 3
        return b"".join(out)
