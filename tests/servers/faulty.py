"""A misbehaving HTTP/1.1 server on loopback, scripted per request at the TCP level.

Unlike the emulators built on `tests.servers.base` (``http.server``, which always speaks correct
HTTP), this server reads requests off a raw socket itself and answers with whatever a test
scripts, byte by byte: correct answers, error statuses, streams cut mid-event, connections
closed (FIN) or reset (RST, ``SO_LINGER`` 0) at any point, answers that never come, and
answers that trickle in one byte at a time. It is for proving the client's behaviour under
faults (`tests/fault_tests`), not for emulating a vendor.

Usage::

    with FaultyServer() as server:
        wire = OPENAI_CHAT
        server.script(status_error(503), json_answer(wire.whole("Hi")))
        ...  # point a model at wire.base_url(server.url)
        assert server.attempts == 2

- A *behaviour* answers one request: a callable taking the parsed `Request` and returning
  the `Action` list to run on the connection. `script` queues behaviours, one per request,
  in order; `default` (a behaviour) answers once the queue is empty.
- Keep-alive works: after a behaviour that leaves the connection open (a response framed
  by ``content-length`` or chunked encoding, fully sent) the next request is read from the
  same connection. Behaviours that end the connection say so (`Close`, `Reset`, `Hang`).
- Every request is recorded (`requests`, `attempts`) unless ``record=False`` (soak tests,
  where a growing list would look like a leak); connections are counted (`accepted`,
  `open_connections`), which is how resource tests see leaked sockets.
- Every answer carries ``x-request-id: req-<n>`` (n: the request's 1-based number).
- `refused_url` gives a closed port (connection refused); `NeverAccept` a port that
  completes the TCP handshake in the kernel but never accepts (the request goes nowhere).

Only ever binds 127.0.0.1 on a free port.
"""

from __future__ import annotations

import contextlib
import email.utils
import http
import json
import select
import socket
import socketserver
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from tests.servers.torchserve import TORCHSERVE_FORMAT

__all__ = [
    "CONTEXT_LENGTH_BODY",
    "CUSTOM",
    "CUSTOM_CHAT",
    "CUSTOM_TEXT",
    "DIALECTS",
    "HTML_PAGE",
    "LAST_CHUNK",
    "OLLAMA_CHAT",
    "OLLAMA_GENERATE",
    "OPENAI_CHAT",
    "OPENAI_COMPLETION",
    "Action",
    "Behaviour",
    "Close",
    "Dialect",
    "FaultyServer",
    "Hang",
    "NeverAccept",
    "Part",
    "Request",
    "Reset",
    "Send",
    "Sleep",
    "Trickle",
    "answer",
    "chunk",
    "close_before_answer",
    "context_length_error",
    "cut_body",
    "hang",
    "head",
    "head_and_body",
    "html_error",
    "json_answer",
    "refused_url",
    "reset_before_answer",
    "split_send",
    "status_error",
    "stream",
    "truncated_json",
]

_MAX_HEAD = 64 * 1024
_HANG_LIMIT = 30.0  # a hung connection is released after this, or when the client leaves


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


# --------------------------------------------------------------------------- actions


class Action:
    """One step a behaviour takes on the connection."""

    def __call__(self, conn: _Conn) -> None:  # pragma: no cover - interface
        raise NotImplementedError


@dataclass(frozen=True)
class Send(Action):
    """Write raw bytes (one ``send`` call: one TCP write when the socket is idle)."""

    data: bytes

    def __call__(self, conn: _Conn) -> None:
        conn.send(self.data)


@dataclass(frozen=True)
class Sleep(Action):
    """Pause (interrupted when the server stops)."""

    seconds: float

    def __call__(self, conn: _Conn) -> None:
        conn.sleep(self.seconds)


@dataclass(frozen=True)
class Close(Action):
    """Close the connection normally (FIN), whatever the response framing still expects."""

    def __call__(self, conn: _Conn) -> None:
        conn.close()


@dataclass(frozen=True)
class Reset(Action):
    """Reset the connection (RST)."""

    def __call__(self, conn: _Conn) -> None:
        conn.reset()


@dataclass(frozen=True)
class Hang(Action):
    """Stop answering; the connection is released when the client gives up."""

    limit: float = _HANG_LIMIT

    def __call__(self, conn: _Conn) -> None:
        conn.hang(self.limit)


@dataclass(frozen=True)
class Trickle(Action):
    """Write bytes one at a time, ``interval`` seconds apart (chunk-framed if asked)."""

    data: bytes
    interval: float = 0.1
    chunked: bool = True

    def __call__(self, conn: _Conn) -> None:
        for i in range(len(self.data)):
            byte = self.data[i : i + 1]
            conn.send(chunk(byte) if self.chunked else byte)
            conn.sleep(self.interval)


Behaviour = Callable[[Request], Sequence[Action]]


# --------------------------------------------------------------------------- server


class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    request_queue_size = 256

    def __init__(self, owner: FaultyServer) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(socketserver.BaseRequestHandler):
    server: _TCPServer

    def handle(self) -> None:
        self.server.owner._serve(self.request)


class FaultyServer:
    """The scripted server (see the module docstring); a context manager.

    Args:
        record: Keep every `Request` (off for soak runs).
        default: The behaviour for requests when no script is queued; None answers 599
            and counts the request in `unexpected`.

    """

    def __init__(self, *, record: bool = True, default: Behaviour | None = None) -> None:
        self.record = record
        self.default = default
        self.requests: list[Request] = []
        self.unexpected = 0
        self.accepted = 0
        self.open_connections = 0
        self.peak_open_connections = 0
        self.handler_errors: list[BaseException] = []
        self._count = 0
        self._queue: deque[Behaviour] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._socks: dict[int, socket.socket] = {}
        self._tcp = _TCPServer(self)
        self._thread = threading.Thread(
            target=self._tcp.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (no path)."""
        host, port = self._tcp.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def attempts(self) -> int:
        """How many requests arrived (recorded or not)."""
        return self._count

    def script(self, *behaviours: Behaviour) -> FaultyServer:
        """Queue behaviours for the next requests, one each, in order."""
        with self._lock:
            self._queue.extend(behaviours)
        return self

    @property
    def pending(self) -> int:
        """Scripted behaviours not yet used."""
        return len(self._queue)

    def start(self) -> FaultyServer:
        """Serve in a daemon thread."""
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop accepting, release hung connections and close every open socket."""
        self._stopping.set()
        if self._thread.is_alive():
            self._tcp.shutdown()  # waits for serve_forever: only if it runs
        self._tcp.server_close()
        with self._lock:
            socks = list(self._socks.values())
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5)

    def __enter__(self) -> FaultyServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def wait_for_open_connections(self, at_most: int, timeout: float = 3.0) -> int:
        """Wait until at most ``at_most`` connections are open; return the count seen."""
        deadline = time.monotonic() + timeout
        while self.open_connections > at_most and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.open_connections

    # -------------------------------------------------------------- per connection

    def _serve(self, sock: socket.socket) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self.accepted += 1
            self.open_connections += 1
            self.peak_open_connections = max(self.peak_open_connections, self.open_connections)
            number = self.accepted
            self._socks[number] = sock
        conn = _Conn(sock, number, self._stopping)
        try:
            while not conn.closed and not self._stopping.is_set():
                parsed = conn.read_request()
                if parsed is None:
                    break
                request = self._take(number, *parsed)
                behaviour = self._behaviour_for()
                for action in behaviour(request):
                    if conn.closed:
                        break
                    action(conn)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError):
            pass  # the client left mid-answer: what cancelled streams do
        except OSError as exc:
            if not self._stopping.is_set():
                self.handler_errors.append(exc)
        except Exception as exc:  # a broken behaviour must fail the test, not vanish
            self.handler_errors.append(exc)
        finally:
            conn.close()
            with self._lock:
                self.open_connections -= 1
                self._socks.pop(number, None)

    def _take(
        self, connection: int, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> Request:
        with self._lock:
            self._count += 1
            request = Request(self._count, connection, method, path, headers, body)
            if self.record:
                self.requests.append(request)
        return request

    def _behaviour_for(self) -> Behaviour:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
            if self.default is not None:
                return self.default
            self.unexpected += 1
        return lambda request: head_and_body(
            request, 599, b'{"error":{"message":"no behaviour scripted"}}'
        )


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


def head_and_body(
    request: Request,
    status: int,
    body: bytes,
    headers: dict[str, str] | None = None,
    *,
    content_type: str = "application/json",
    close: bool = False,
) -> list[Action]:
    actions: list[Action] = [
        Send(
            head(request, status, headers, content_type=content_type, length=len(body), close=close)
            + body
        )
    ]
    if close:
        actions.append(Close())
    return actions


# --------------------------------------------------------------------------- behaviours


def _as_bytes(body: bytes | str | dict[str, Any] | list[Any]) -> bytes:
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body, ensure_ascii=False).encode()


def answer(
    status: int = 200,
    body: bytes | str | dict[str, Any] | list[Any] = b"",
    *,
    headers: dict[str, str] | None = None,
    content_type: str = "application/json",
    close: bool = False,
) -> Behaviour:
    """A complete answer framed by ``content-length`` (keep-alive unless ``close``)."""
    data = _as_bytes(body)

    def behave(request: Request) -> list[Action]:
        return head_and_body(request, status, data, headers, content_type=content_type, close=close)

    return behave


def json_answer(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Behaviour:
    """A JSON answer."""
    return answer(status, _as_bytes(obj), headers=headers)


def status_error(
    status: int,
    message: str | None = None,
    *,
    body: Any = None,
    retry_after: str | float | None = None,
    retry_after_ms: str | float | None = None,
    retry_after_date_in: float | None = None,
    headers: dict[str, str] | None = None,
) -> Behaviour:
    """An HTTP error answer with an OpenAI-style JSON body (or ``body``).

    Args:
        status: The status code.
        message: The server's message (a default per status otherwise).
        body: A whole error body instead of the OpenAI shape.
        retry_after: ``Retry-After`` in seconds (sent as given).
        retry_after_ms: ``retry-after-ms``.
        retry_after_date_in: ``Retry-After`` as an HTTP date this many seconds from when
            the answer is sent.
        headers: More headers.

    """
    text = message or f"simulated {status} {http.HTTPStatus(status).phrase}"
    payload = body if body is not None else {"error": {"message": text, "type": "server_error"}}
    data = _as_bytes(payload)

    def behave(request: Request) -> list[Action]:
        extra = dict(headers or {})
        if retry_after is not None:
            extra["retry-after"] = str(retry_after)
        if retry_after_ms is not None:
            extra["retry-after-ms"] = str(retry_after_ms)
        if retry_after_date_in is not None:
            extra["retry-after"] = email.utils.formatdate(
                time.time() + retry_after_date_in, usegmt=True
            )
        return head_and_body(request, status, data, extra)

    return behave


CONTEXT_LENGTH_BODY = {
    "error": {
        "message": "This model's maximum context length is 2048 tokens. However, you requested "
        "2300 tokens (2044 in the messages, 256 in the completion). Please reduce the length "
        "of the messages or completion.",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "context_length_exceeded",
    }
}


def context_length_error() -> Behaviour:
    """vLLM / OpenAI's 400 for a prompt that does not fit the context window."""
    return status_error(400, body=CONTEXT_LENGTH_BODY)


HTML_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n"
    b"<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center>"
    b"</body></html>\n"
)


def html_error(status: int = 502) -> Behaviour:
    """An HTML error page, as a reverse proxy sends when the model server is down."""
    return answer(status, HTML_PAGE, content_type="text/html")


def truncated_json(obj: Any, keep: float = 0.5) -> Behaviour:
    """A 200 whose JSON is cut short, correctly framed (content-length of what is sent)."""
    data = _as_bytes(obj)
    return answer(200, data[: int(len(data) * keep)])


def cut_body(obj: Any, keep: float = 0.5) -> Behaviour:
    """A 200 announcing the whole body's length, then closing after part of it."""
    data = _as_bytes(obj)

    def behave(request: Request) -> list[Action]:
        return [
            Send(head(request, 200, length=len(data)) + data[: int(len(data) * keep)]),
            Sleep(0.05),
            Close(),
        ]

    return behave


def close_before_answer() -> Behaviour:
    """Read the request, then close the connection without a word (FIN)."""
    return lambda request: [Close()]


def reset_before_answer() -> Behaviour:
    """Read the request, then reset the connection (RST)."""
    return lambda request: [Reset()]


def hang() -> Behaviour:
    """Accept and read the request, then never answer."""
    return lambda request: [Hang()]


Part = bytes | Action


def stream(
    parts: Iterable[Part],
    *,
    end: str = "end",
    chunked: bool = True,
    status: int = 200,
    content_type: str = "text/event-stream",
    headers: dict[str, str] | None = None,
) -> Behaviour:
    """A streamed answer.

    Args:
        parts: Bytes (each sent as one write; one chunk when chunked) and actions (`Sleep`,
            `Trickle`, ...) in order.
        end: How it ends: ``"end"`` (the last chunk; keep-alive), ``"close"`` (FIN without
            the last chunk: the body is cut), ``"reset"`` (RST), ``"hang"`` (never ends).
            Without chunked framing the body runs to the close, so ``"end"`` closes too.
        chunked: Chunked transfer encoding, or a body delimited by the connection's close.
        status: The status code.
        content_type: The stream's content type.
        headers: More headers.

    """
    items = list(parts)

    def behave(request: Request) -> list[Action]:
        actions: list[Action] = [
            Send(
                head(
                    request,
                    status,
                    headers,
                    content_type=content_type,
                    chunked=chunked,
                    close=not chunked,
                )
            )
        ]
        for item in items:
            if isinstance(item, bytes):
                actions.append(Send(chunk(item) if chunked else item))
            else:
                actions.append(item)
        if end == "end":
            actions.append(Send(LAST_CHUNK) if chunked else Close())
        elif end == "close":
            actions += [Sleep(0.05), Close()]
        elif end == "reset":
            # Let the client read what was sent first: an RST can discard unread data.
            actions += [Sleep(0.1), Reset()]
        elif end == "hang":
            actions.append(Hang())
        else:
            raise ValueError(f"unknown stream end {end!r}")
        return actions

    return behave


def split_send(data: bytes, at: int, pause: float = 0.05) -> list[Part]:
    """``data`` as two writes split at byte ``at``, with a pause between: two TCP reads."""
    return [data[:at], Sleep(pause), data[at:]]


# --------------------------------------------------------------------------- unreachable


def refused_url() -> str:
    """``http://127.0.0.1:<port>`` of a port nothing listens on: connection refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"


class NeverAccept:
    """A listening port that never accepts: the kernel completes the handshake, and the
    request sits in the backlog unanswered (a frozen server). A context manager."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def __enter__(self) -> NeverAccept:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


# --------------------------------------------------------------------------- dialects


@dataclass(frozen=True)
class Dialect:
    """What one wire format's answers look like on the wire, for building scripts.

    Attributes:
        name: An id for test names.
        family: ``openai``, ``ollama`` or ``custom``.
        chat: Chat endpoint (`ChatCustomLLM`) or text completion (`CustomLLM`).
        path: The request path the client must use (``/v1/...`` for OpenAI).
        wire_format: The ``wire_format`` setting for the model.
        framing: ``sse`` or ``ndjson``.

    """

    name: str
    family: str
    chat: bool
    path: str
    wire_format: Any
    framing: str

    @property
    def content_type(self) -> str:
        return "text/event-stream" if self.framing == "sse" else "application/x-ndjson"

    def base_url(self, root: str) -> str:
        return root + "/v1" if self.family == "openai" else root

    # whole answers ----------------------------------------------------------

    def whole(self, text: str) -> dict[str, Any]:
        """A complete non-streamed answer with ``text``."""
        if self.family == "openai":
            if self.chat:
                return {
                    "id": "chatcmpl-1",
                    "object": "chat.completion",
                    "model": "m",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
                }
            return {
                "id": "cmpl-1",
                "object": "text_completion",
                "model": "m",
                "choices": [{"index": 0, "text": text, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
            }
        if self.family == "ollama":
            base = {"model": "m", "created_at": "2024-01-01T00:00:00Z", "done": True}
            base["done_reason"] = "stop"
            base["prompt_eval_count"] = 5
            base["eval_count"] = 7
            if self.chat:
                return {**base, "message": {"role": "assistant", "content": text}}
            return {**base, "response": text}
        return {
            "outputs": [{"text": text, "finish_reason": "stop"}],
            "usage": {"in": 5, "out": 7},
        }

    def error_body(self, message: str, code: int = 500) -> dict[str, Any]:
        """This format's error body."""
        if self.family == "ollama":
            return {"error": message}
        if self.family == "custom":
            return {"error": {"message": message, "code": code}}
        return {"error": {"message": message, "type": "server_error", "code": code}}

    # stream events -----------------------------------------------------------

    def _frame(self, obj: Any) -> bytes:
        data = obj if isinstance(obj, bytes) else json.dumps(obj, ensure_ascii=False).encode()
        return b"data: " + data + b"\n\n" if self.framing == "sse" else data + b"\n"

    def piece_event(self, text: str | bytes) -> bytes:
        """One stream event carrying ``text`` (bytes: raw, possibly invalid, UTF-8)."""
        marker = "\x00TEXT\x00"
        obj: Any
        if self.family == "openai":
            base = {"id": "chatcmpl-1" if self.chat else "cmpl-1", "model": "m"}
            if self.chat:
                obj = {
                    **base,
                    "object": "chat.completion.chunk",
                    "choices": [{"index": 0, "delta": {"content": marker}, "finish_reason": None}],
                }
            else:
                obj = {
                    **base,
                    "object": "text_completion",
                    "choices": [{"index": 0, "text": marker, "finish_reason": None}],
                }
        elif self.family == "ollama":
            obj = {"model": "m", "created_at": "2024-01-01T00:00:00Z", "done": False}
            if self.chat:
                obj["message"] = {"role": "assistant", "content": marker}
            else:
                obj["response"] = marker
        else:
            obj = {"token": {"text": marker}, "done": False}
        rendered = json.dumps(obj, ensure_ascii=False).encode()
        raw = text if isinstance(text, bytes) else json.dumps(text, ensure_ascii=False)[1:-1]
        raw_bytes = raw if isinstance(raw, bytes) else raw.encode()
        return self._frame(rendered.replace(b"\\u0000TEXT\\u0000", raw_bytes))

    def piece_events(self, pieces: Iterable[str]) -> list[bytes]:
        return [self.piece_event(p) for p in pieces]

    def finish_event(self) -> bytes:
        """The event that says why generation ended (OpenAI: finish_reason)."""
        if self.family == "openai":
            choice: dict[str, Any] = {"index": 0, "finish_reason": "stop"}
            if self.chat:
                choice["delta"] = {}
            else:
                choice["text"] = ""
            return self._frame({"id": "x", "model": "m", "choices": [choice]})
        return self.done_event()

    def done_event(self) -> bytes:
        """The end-of-stream marker (OpenAI: ``[DONE]``; NDJSON: the ``done`` line)."""
        if self.family == "openai":
            return b"data: [DONE]\n\n"
        if self.family == "ollama":
            obj: dict[str, Any] = {"model": "m", "done": True, "done_reason": "stop"}
            obj["prompt_eval_count"] = 5
            obj["eval_count"] = 7
            if self.chat:
                obj["message"] = {"role": "assistant", "content": ""}
            else:
                obj["response"] = ""
            return self._frame(obj)
        return self._frame(
            {"done": True, "outputs": [{"finish_reason": "stop"}], "usage": {"in": 5, "out": 7}}
        )

    def end_events(self) -> list[bytes]:
        """Everything that closes a complete stream."""
        if self.family == "openai":
            return [self.finish_event(), self.done_event()]
        return [self.done_event()]

    def full_stream(self, pieces: Iterable[str]) -> list[bytes]:
        return self.piece_events(pieces) + self.end_events()

    def error_event(self, message: str, code: int = 500) -> bytes:
        """An error reported inside a stream whose status was already 200."""
        return self._frame(self.error_body(message, code))

    def keepalive(self) -> bytes:
        """Something a server sends to keep an idle stream open (SSE comment, blank line)."""
        return b": ping\n\n" if self.framing == "sse" else b"\n"

    # requests ---------------------------------------------------------------

    def prompt_of(self, request: Request) -> str:
        """The user text of a request (the last message, or the prompt)."""
        body = request.json()
        if self.family == "custom":
            return str(body["inputs"])
        if self.chat:
            return str(body["messages"][-1]["content"])
        return str(body["prompt"])

    def is_stream(self, request: Request) -> bool:
        return bool(request.json().get("stream"))


OPENAI_CHAT = Dialect("openai-chat", "openai", True, "/v1/chat/completions", "openai", "sse")
OPENAI_COMPLETION = Dialect("openai-text", "openai", False, "/v1/completions", "openai", "sse")
OLLAMA_CHAT = Dialect("ollama-chat", "ollama", True, "/api/chat", "ollama", "ndjson")
OLLAMA_GENERATE = Dialect("ollama-text", "ollama", False, "/api/generate", "ollama", "ndjson")
CUSTOM_CHAT = Dialect(
    "custom-chat", "custom", True, "/predictions/my-model", TORCHSERVE_FORMAT, "ndjson"
)
CUSTOM_TEXT = Dialect(
    "custom-text", "custom", False, "/predictions/my-model", TORCHSERVE_FORMAT, "ndjson"
)
CUSTOM = CUSTOM_CHAT

DIALECTS: dict[tuple[str, bool], Dialect] = {
    (d.family, d.chat): d
    for d in (
        OPENAI_CHAT,
        OPENAI_COMPLETION,
        OLLAMA_CHAT,
        OLLAMA_GENERATE,
        CUSTOM_CHAT,
        CUSTOM_TEXT,
    )
}
