"""What httpx sends for a `WireRequest`, and what a response means: pure, no I/O.

`RequestEncoder` turns a wire format's request into a parsed URL (cached: httpx would parse
a string on every call), the JSON bytes, and only the per-request headers and timeout that
differ from the client's, the headers of `request_headers` included. The functions below
read answers: a JSON body, a stream that is not one, a stream that broke mid-answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import httpx

from langchain_customllm._auth import check_plain_headers
from langchain_customllm._exceptions import (
    APIConnectionError,
    CustomLLMError,
    ResponseError,
    StreamInterruptedError,
    StreamTimeoutError,
    decode_body,
    error_detail,
    error_from_httpx,
    request_id_of,
)
from langchain_customllm._json import loads
from langchain_customllm._text import EXCERPT_CHARS, excerpt
from langchain_customllm.formats.base import WireRequest

__all__ = [
    "RequestEncoder",
    "body_read_error",
    "decode_json",
    "not_a_stream_error",
    "request_headers",
    "send_error",
    "server_root",
]

_STREAM_ACCEPT = "text/event-stream, application/x-ndjson, */*"
_MAX_TARGETS = 64
# The headers of the innermost `request_headers` block (None outside any): a context
# variable, so each asyncio task and thread sees only its own caller's.
_CALL_HEADERS: ContextVar[dict[str, str] | None] = ContextVar(
    "customllm_call_headers", default=None
)


@contextmanager
def request_headers(headers: Mapping[str, str]) -> Iterator[None]:
    """Send ``headers`` with every request a model makes inside the block.

    For values that change per call, such as a request id a gateway passes on
    (``x-request-id``): every model, chat, text and embeddings, sync and async, adds them
    to the requests it sends in this thread or asyncio task (tasks started inside inherit
    them). Blocks nest; the inner one's value of a header wins.

    Args:
        headers: Header names and values. Credentials do not belong here (they would
            escape the masking of ``api_key`` and ``default_headers``).

    Raises:
        ConfigurationError: For a header HTTP cannot carry, or a credential-looking name
            (``Authorization``, ``x-api-key``, ...).
    """
    check_plain_headers(headers, "request_headers")
    token = _CALL_HEADERS.set({**(_CALL_HEADERS.get() or {}), **headers})
    try:
        yield
    finally:
        _CALL_HEADERS.reset(token)


def server_root(base_url: str) -> str:
    """``base_url`` without a trailing ``/v1``: where a server's own endpoints live.

    OpenAI-compatible servers put the API under ``/v1`` and their own endpoints
    (``/tokenize``, ``/props``, ``/health``, ``/version``) beside it.
    """
    trimmed = base_url.rstrip("/")
    return trimmed[: -len("/v1")] if trimmed.endswith("/v1") else trimmed


class RequestEncoder:
    """Encodes the requests of one configuration.

    Args:
        base_url: The API root the request paths are appended to.
        headers: The headers every request carries (already on the clients we own; sent
            per request through a client the user passed in, which knows nothing of them).
        timeout: The timeouts of every request (likewise).
        override: The headers differ from those on our clients (a replica with a key of
            its own): send them with every request, as for a user's client.
    """

    __slots__ = ("_targets", "base_url", "headers", "override", "timeout")

    def __init__(
        self,
        base_url: str,
        headers: dict[str, str],
        timeout: httpx.Timeout,
        *,
        override: bool = False,
    ) -> None:
        self.base_url = base_url
        self.headers = headers
        self.timeout = timeout
        self.override = override
        self._targets: dict[str, tuple[httpx.URL, str]] = {}

    def target(self, request: WireRequest) -> tuple[httpx.URL, str]:
        """The request's parsed URL and its text (for messages)."""
        key = ("/" if request.root else "") + request.path
        found = self._targets.get(key)
        if found is None:
            if len(self._targets) >= _MAX_TARGETS:  # paths with per-call values: bounded
                self._targets.clear()
            url = (server_root(self.base_url) if request.root else self.base_url) + request.path
            found = self._targets[key] = (httpx.URL(url), url)
        return found

    def options(self, request: WireRequest, *, stream: bool, user: bool) -> dict[str, Any]:
        """Per-request ``headers``/``timeout`` for ``build_request``: only what differs."""
        options: dict[str, Any] = {}
        call = _CALL_HEADERS.get()
        if user or self.override:
            headers = {**self.headers, **(call or {}), **request.headers}
            if user:
                options["timeout"] = self.timeout
        elif request.headers or stream or call:
            headers = {**call, **request.headers} if call else dict(request.headers)
        else:
            return options
        if stream:
            headers["accept"] = _STREAM_ACCEPT
        options["headers"] = headers
        return options

    @staticmethod
    def content(request: WireRequest) -> bytes:
        """The JSON body.

        Raises:
            ResponseError: If a value (from ``extra_body`` or a keyword) is not JSON.
        """
        if request.method == "GET" and not request.body:
            return b""
        try:
            return json.dumps(request.body, separators=(",", ":")).encode()
        except (TypeError, ValueError) as exc:
            raise ResponseError(
                f"The request body cannot be encoded as JSON ({exc}); check extra_body and "
                "per-call keyword arguments"
            ) from exc


def decode_json(content: bytes, url: str) -> Any:
    """A whole answer's JSON.

    Raises:
        ResponseError: Quoting the start of a body that is not JSON.
    """
    try:
        return loads(content)
    except ValueError as exc:
        # Decode only the start: a wrong URL can answer with a page of any size.
        text = excerpt(content[: EXCERPT_CHARS * 4].decode("utf-8", errors="replace"))
        raise ResponseError(
            f"The server at {url} answered 200 with a body that is not JSON: {text!r}",
            body=text,
        ) from exc


def not_a_stream_error(headers: httpx.Headers, content: bytes, url: str) -> ResponseError:
    """A stream request answered with a page or a JSON object instead of a stream."""
    kind = headers.get("content-type", "no content type")
    body = decode_body(content)
    detail = error_detail(body) or "(empty body)"
    return ResponseError(
        f"The server at {url} answered a stream request with {kind} instead of a stream: "
        f"{detail} -- is base_url right, and does this endpoint stream?",
        body=body,
        request_id=request_id_of(headers),
    )


def body_read_error(exc: httpx.HTTPError, url: str, limit: float | None) -> CustomLLMError:
    """What a failure while reading a stream's body means (``limit``: the read timeout)."""
    if isinstance(exc, httpx.ReadTimeout):
        return StreamTimeoutError(
            f"The server at {url} stopped sending mid-stream (nothing for {limit} s) -- the "
            "text received so far is in `partial_text`; raise stream_chunk_timeout if the "
            "server is just slow"
        )
    broken = error_from_httpx(exc, url)
    return StreamInterruptedError(broken.message) if type(broken) is APIConnectionError else broken


def send_error(
    exc: httpx.HTTPError | UnicodeEncodeError | RuntimeError, url: str
) -> CustomLLMError:
    """What a failure to send a request (or to get its answer's head) means."""
    if isinstance(exc, RuntimeError):
        # httpx refuses to send through a client that close()/aclose() closed meanwhile;
        # a retry takes the model's new client.
        return APIConnectionError(
            f"Could not send to {url}: the model's connections were closed (close() or "
            f"aclose()) while this call was starting ({exc})"
        )
    if isinstance(exc, UnicodeEncodeError):
        # httpx sends headers as ASCII; our own are checked when the model is built, so
        # this is a cookie the server set (Set-Cookie) that cannot go back. Not retried:
        # every attempt would carry it.
        return ResponseError(
            f"The request to {url} cannot be sent: a header value is not ASCII ({exc.reason} "
            f"at {exc.start}) -- most likely a cookie the server set with Set-Cookie"
        )
    return error_from_httpx(exc, url)
