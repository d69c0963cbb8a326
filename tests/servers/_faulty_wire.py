"""The scripted server's wire layer: parsed requests, the connection and HTTP bytes.

Re-exported by `tests.servers.faulty`.
"""

from __future__ import annotations

import contextlib
import email.utils
import http
import json
import select
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any

_MAX_HEAD = 64 * 1024


# --------------------------------------------------------------------------- requests


@dataclass
class Request:
    """One request as the server read it off the socket."""

    number: int
    connection: int
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    received_at: float = field(default_factory=time.monotonic)

    @property
    def request_id(self) -> str:
        """The id this server sends back as ``x-request-id`` for this request."""
        return f"req-{self.number}"

    def json(self) -> Any:
        """The body decoded as JSON."""
        return json.loads(self.body)


# --------------------------------------------------------------------------- connection


class _Conn:
    """The server side of one TCP connection: buffered reads, scripted writes."""

    def __init__(self, sock: socket.socket, number: int, stopping: threading.Event) -> None:
        self.sock = sock
        self.number = number
        self.stopping = stopping
        self.closed = False
        self._buf = b""

    # reading ---------------------------------------------------------------

    def _fill(self) -> bool:
        # ACK at once: the client writes headers and body separately, and Nagle on its
        # side would otherwise wait out our delayed ACK (40 ms) on every request.
        with contextlib.suppress(OSError, AttributeError):
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        # Small reads: a thread blocked in recv holds its whole buffer, and soak tests
        # measure memory with many idle keep-alive connections open.
        data = self.sock.recv(4096)
        if not data:
            return False
        self._buf += data
        return True

    def read_request(self) -> tuple[str, str, dict[str, str], bytes] | None:
        """The next request on this connection, or None when the client closed it."""
        while b"\r\n\r\n" not in self._buf:
            if len(self._buf) > _MAX_HEAD or not self._fill():
                return None
        head, self._buf = self._buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        method, path, _version = lines[0].split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length") or 0)
        while len(self._buf) < length:
            if not self._fill():
                return None
        body, self._buf = self._buf[:length], self._buf[length:]
        return method, path, headers, body

    # writing ---------------------------------------------------------------

    def send(self, data: bytes) -> None:
        if data:
            self.sock.sendall(data)

    def sleep(self, seconds: float) -> None:
        self.stopping.wait(seconds)

    def close(self) -> None:
        """Orderly close (FIN) after what was sent."""
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)
        with contextlib.suppress(OSError):
            self.sock.close()

    def reset(self) -> None:
        """Abort the connection: close with SO_LINGER 0, so the kernel sends RST."""
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            self.sock.close()

    def hang(self, limit: float) -> None:
        """Send nothing more; return (and close) when the client leaves, or at the limit."""
        deadline = time.monotonic() + limit
        while not self.stopping.is_set() and time.monotonic() < deadline:
            try:
                ready, _, _ = select.select([self.sock], [], [], 0.05)
                if ready and not self.sock.recv(1024):
                    break  # the client closed its end
            except (OSError, ValueError):
                break
        self.close()


# --------------------------------------------------------------------------- HTTP bytes


def chunk(data: bytes) -> bytes:
    """One chunk of chunked transfer encoding."""
    return f"{len(data):x}\r\n".encode() + data + b"\r\n" if data else b""


LAST_CHUNK = b"0\r\n\r\n"


def head(
    request: Request,
    status: int,
    headers: dict[str, str] | None = None,
    *,
    content_type: str = "application/json",
    length: int | None = None,
    chunked: bool = False,
    close: bool = False,
) -> bytes:
    """A status line and headers (with ``x-request-id``), ready to send."""
    try:
        reason = http.HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [f"HTTP/1.1 {status} {reason}", f"content-type: {content_type}"]
    if length is not None:
        lines.append(f"content-length: {length}")
    if chunked:
        lines.append("transfer-encoding: chunked")
    lines.append(f"x-request-id: {request.request_id}")
    lines.append(f"date: {email.utils.formatdate(usegmt=True)}")
    if close:
        lines.append("connection: close")
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
