"""Actions and behaviours for `tests.servers.faulty`: answers, errors, cut bodies, streams.

Also the unreachable endpoints (`refused_url`, `NeverAccept`). Re-exported by
`tests.servers.faulty`.
"""

from __future__ import annotations

import email.utils
import http
import json
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from tests.servers._faulty_wire import LAST_CHUNK, Request, _Conn, chunk, head

_HANG_LIMIT = 30.0  # a hung connection is released after this, or when the client leaves


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


# --------------------------------------------------------------------------- behaviours


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
