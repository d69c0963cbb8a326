"""One error tree for everything that can go wrong between LangChain and the server.

Every error the package raises at call time is a `CustomLLMError`. Where langchain-core has
a matching model error class, ours inherits from it too, so code that catches
`langchain_core.exceptions.ModelRateLimitError` (or the generic `ModelError`) keeps working::

    CustomLLMError (ModelError)          status_code, message, body, request_id, partial_text
    ├── ConfigurationError (ValueError)  bad settings, caught before any request is sent
    ├── APIConnectionError (ModelConnectionError)   server unreachable / connection broke
    │   ├── ReplicasUnavailableError (`_replicas`)    every replica of the model is resting
    │   └── APITimeoutError (ModelTimeoutError)     connect, read, write or pool timeout
    │       └── StreamTimeoutError                  a stream went quiet mid-answer
    ├── APIStatusError                           the server answered with HTTP status >= 400
    │   ├── BadRequestError (ModelInvalidRequestError)         400, 422
    │   │   └── ContextLengthExceededError (ContextOverflowError)  prompt too long for the model
    │   ├── AuthenticationError (ModelAuthenticationError)     401; a gateway's key refusal
    │   │                                                      (LiteLLM: 400 no_db_connection)
    │   ├── PermissionDeniedError (ModelPermissionDeniedError) 403
    │   ├── NotFoundError (ModelNotFoundError)                 404 (wrong model name or URL);
    │   │                                                      a gateway's 400 "Invalid model name"
    │   ├── ConflictError                                      409 (retried)
    │   ├── RequestTimeoutError (ModelTimeoutError)            408 (retried)
    │   ├── RateLimitError (ModelRateLimitError)               429 (retried)
    │   └── InternalServerError (ModelAPIError)                5xx (retried)
    ├── StreamError                              the server reported an error inside a stream,
    │   │                                        or the stream ended before it was complete
    │   └── StreamInterruptedError (also an APIConnectionError)  the connection broke mid-stream
    └── ResponseError                            a 2xx answer we cannot understand (not JSON,
                                                 not the shape the wire format expects)

Mapping from HTTP responses and httpx exceptions happens in one place, `error_from_response`
and `error_from_httpx`, both pure. Messages say what happened and what to do; they are built
from the server's own words and never include request headers, so a key cannot leak into them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from langchain_core.exceptions import ContextOverflowError

from langchain_customllm._core_errors import (
    ModelAPIError,
    ModelAuthenticationError,
    ModelConnectionError,
    ModelError,
    ModelInvalidRequestError,
    ModelNotFoundError,
    ModelPermissionDeniedError,
    ModelRateLimitError,
    ModelTimeoutError,
)
from langchain_customllm._retry import parse_retry_after, should_retry_status
from langchain_customllm._text import excerpt

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "ConflictError",
    "ContextLengthExceededError",
    "CustomLLMError",
    "InternalServerError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestTimeoutError",
    "ResponseError",
    "StreamError",
    "StreamInterruptedError",
    "StreamTimeoutError",
    "error_from_httpx",
    "error_from_response",
    "request_id_of",
]

# Response headers servers and gateways use to name the request; first match wins.
_REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-litellm-call-id", "x-amzn-requestid")
# Bodies can be huge HTML pages; the message keeps only the start.
_MAX_DETAIL_CHARS = 500


class CustomLLMError(ModelError):
    """Base class of every error raised by langchain-customllm.

    Attributes:
        message: What happened and, where we know, what to do about it.
        status_code: The HTTP status the server answered with, if it answered.
        body: The decoded error body (JSON object or text), if any.
        request_id: The server's request id header, if it sent one.
        partial_text: For streams cut after output began: the text received so far. It is
            attached here rather than returned, so an incomplete answer never looks complete.
        is_retryable: Whether a new attempt may succeed (declared per class here, not
            inherited from langchain-core, whose classes only gained it in 1.6).

    """

    is_retryable = False

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        body: Any = None,
        request_id: str | None = None,
        partial_text: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.body = body
        self.request_id = request_id
        self.partial_text = partial_text

    def __str__(self) -> str:
        parts = [self.message]
        if self.status_code is not None:
            parts.append(f"(HTTP {self.status_code})")
        if self.request_id:
            parts.append(f"[request id {self.request_id}]")
        return " ".join(parts)


class ConfigurationError(CustomLLMError, ValueError):
    """A setting is missing or invalid; raised before any request is sent.

    Attributes:
        setting: The setting at fault, where one is known (files point at its line).
    """

    setting: str | None = None


class APIConnectionError(CustomLLMError, ModelConnectionError):
    """The server could not be reached, or the connection broke before an answer."""

    is_retryable = True


class APITimeoutError(APIConnectionError, ModelTimeoutError):
    """The request (connect, read, write or pool wait) exceeded its timeout."""


class StreamTimeoutError(APITimeoutError):
    """A stream stopped sending mid-answer for longer than ``stream_chunk_timeout``."""


class APIStatusError(CustomLLMError):
    """The server answered with an HTTP error status (>= 400).

    Attributes:
        retry_after: Seconds the server asked us to wait (``retry-after-ms``,
            ``Retry-After``), if it said.
        is_retryable: Whether a new attempt may succeed: from the status, unless the
            server said otherwise with ``x-should-retry``.

    """

    retry_after: float | None = None


class BadRequestError(APIStatusError, ModelInvalidRequestError):
    """The server rejected the request as invalid (400 or 422)."""


class ContextLengthExceededError(BadRequestError, ContextOverflowError):
    """The prompt plus `max_tokens` does not fit the model's context window."""


class AuthenticationError(APIStatusError, ModelAuthenticationError):
    """The server refused the credentials (401, or a gateway's own way to say so).

    The LiteLLM proxy without a database answers a key that is not its master key with
    ``400 {"error": {"type": "no_db_connection", "message": "No connected db."}}``: it has
    nowhere to look the key up. That is a refused key too; ``status_code`` stays 400.
    """


class PermissionDeniedError(APIStatusError, ModelPermissionDeniedError):
    """The credentials are valid but not allowed to do this (403)."""


class NotFoundError(APIStatusError, ModelNotFoundError):
    """The model or endpoint does not exist on this server (404).

    Gateways that answer an unknown model name with a 400 (LiteLLM: "Invalid model name
    passed in model=...") raise it too; ``status_code`` stays what the gateway sent.
    """


class ConflictError(APIStatusError):
    """The server reported a conflict (409); retried like openai-python does."""

    is_retryable = True


class RequestTimeoutError(APIStatusError, ModelTimeoutError):
    """The server timed out waiting for the request (408); retried."""

    is_retryable = True


class RateLimitError(APIStatusError, ModelRateLimitError):
    """Too many requests (429); retried, honouring `Retry-After` up to 120 s."""

    is_retryable = True


class InternalServerError(APIStatusError, ModelAPIError):
    """The server failed (5xx); retried."""

    is_retryable = True


class StreamError(CustomLLMError):
    """The server reported an error inside a stream, or the stream ended incomplete."""


class StreamInterruptedError(StreamError, APIConnectionError):
    """The connection broke mid-stream (the server died or reset it); never re-sent."""


class ResponseError(CustomLLMError):
    """A successful HTTP answer whose body cannot be understood."""


def request_id_of(headers: Mapping[str, str]) -> str | None:
    """The server's id for this request, from the headers servers and gateways use."""
    for name in _REQUEST_ID_HEADERS:
        value = headers.get(name)
        if value:
            return value
    return None


def decode_body(content: bytes) -> Any:
    """Decode an error body: JSON if it parses, else text (never raises)."""
    text = content.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


def error_detail(body: Any) -> str:
    """Pull the server's human message out of the error body shapes servers use.

    OpenAI / vLLM / LiteLLM: ``{"error": {"message": ...}}``; FastAPI (llama.cpp's 401):
    ``{"detail": ...}``; TGI / Ollama: ``{"error": "..."}``; some: ``{"message": ...}``.
    """
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            msg = err.get("message") or err.get("msg")
            if msg:
                return excerpt(str(msg), _MAX_DETAIL_CHARS)
        elif isinstance(err, str) and err:
            return excerpt(err, _MAX_DETAIL_CHARS)
        for key in ("detail", "message", "msg"):
            value = body.get(key)
            if value:
                return excerpt(value, _MAX_DETAIL_CHARS)
        return excerpt(body, _MAX_DETAIL_CHARS)
    text = str(body or "").strip()
    if text.lower().startswith(("<!doctype", "<html")):
        return "the server answered with an HTML page instead of JSON (is base_url right?)"
    return excerpt(text, _MAX_DETAIL_CHARS)


_OVERFLOW_PHRASES = (
    "context length",
    "context window",
    "context size",
    "maximum context",
    "exceeds the context",
    "too many tokens",
)


# Error types with which gateways refuse a key without saying 401.
_GATEWAY_AUTH_TYPES = frozenset({"no_db_connection"})


def _is_gateway_auth_refusal(status: int, body: Any) -> bool:
    if status != 400 or not isinstance(body, dict) or not isinstance(body.get("error"), dict):
        return False
    return body["error"].get("type") in _GATEWAY_AUTH_TYPES


# How gateways say "no such model" with a 400 (LiteLLM 1.106: "Invalid model name passed in
# model=..."): the same mistake as a 404 from a server, so the same error class.
_GATEWAY_UNKNOWN_MODEL_PHRASES = ("invalid model name passed in model=",)


def _is_gateway_unknown_model(status: int, detail: str) -> bool:
    lowered = detail.lower()
    return status == 400 and any(p in lowered for p in _GATEWAY_UNKNOWN_MODEL_PHRASES)


def _is_context_overflow(status: int, body: Any, detail: str) -> bool:
    # OpenAI / llama-cpp-python use code "context_length_exceeded"; llama.cpp's C++ server
    # uses type "exceed_context_size_error"; vLLM and others only say it in words.
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        if err.get("code") == "context_length_exceeded":
            return True
        if err.get("type") == "exceed_context_size_error":
            return True
    lowered = detail.lower()
    if status == 500 and "too large to process" in lowered:
        # llama.cpp's server: an embeddings input longer than its batch answers 500
        # "input (N tokens) is too large to process. increase the physical batch size".
        return True
    return status in (400, 413, 422) and any(phrase in lowered for phrase in _OVERFLOW_PHRASES)


# How servers that answer 500 to a request they could not even parse say so: pydantic
# (llama-cpp-python, vLLM's older paths), nlohmann::json (llama.cpp), Python's json.
_REQUEST_INVALID_PHRASES = (
    "validation error for",
    "input should be a valid",
    "field required",
    "extra inputs are not permitted",
    "[json.exception.",
    "json decode error",
    "expecting value: line",
)


def _is_invalid_request(status: int, detail: str) -> bool:
    """A 5xx whose message is plainly the server refusing our request, not failing."""
    lowered = detail.lower()
    return status >= 500 and any(phrase in lowered for phrase in _REQUEST_INVALID_PHRASES)


_HINTS = {
    400: "check the request parameters",
    401: "check api_key (env CUSTOMLLM_API_KEY) and api_key_header/api_key_scheme",
    403: "the key is valid but not allowed to use this model or endpoint",
    404: "check base_url (the /v1 root for OpenAI-compatible servers, the server root for "
    "ollama and tgi) and the model name",
    408: "the server timed out reading the request",
    409: "the server reported a conflict",
    422: "check the request parameters",
    429: "the server is rate limiting; slow down or raise max_retries",
}


# The error class of each 4xx status that has one of its own (others: APIStatusError).
_STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    **dict.fromkeys((400, 413, 422), BadRequestError),
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    408: RequestTimeoutError,
    409: ConflictError,
    429: RateLimitError,
}


def error_from_response(
    status_code: int,
    headers: Mapping[str, str],
    content: bytes,
    describe: Callable[[Any], str | None] | None = None,
) -> APIStatusError:
    """Map an HTTP error answer to the matching typed error (pure).

    Args:
        status_code: The HTTP status (>= 400).
        headers: The response headers (a case-insensitive mapping such as httpx.Headers).
        content: The raw response body.
        describe: The wire format's own way to find the message in the body, if it has one.

    Returns:
        The typed error; the caller raises it.

    """
    body = decode_body(content)
    detail = (describe(body) if describe else None) or error_detail(body) or "(empty body)"
    hint = _HINTS.get(status_code)
    if status_code >= 500:
        hint = "the server failed; retried up to max_retries times"
    message = f"Server error: {detail}" if status_code >= 500 else detail
    if hint:
        message = f"{message} -- {hint}"
    cls: type[APIStatusError]
    if _is_gateway_auth_refusal(status_code, body):
        cls = AuthenticationError
        message = (
            f"The gateway refused the API key: {detail} -- the LiteLLM proxy answers 400 "
            "no_db_connection for a key that is not its master key when it has no database "
            f"to look keys up in; {_HINTS[401]}"
        )
    elif _is_gateway_unknown_model(status_code, detail):
        cls = NotFoundError
        message = f"{detail} -- {_HINTS[404]}"
    elif _is_context_overflow(status_code, body, detail):
        cls = ContextLengthExceededError
        message = f"{detail} -- shorten the prompt or lower max_tokens"
    elif _is_invalid_request(status_code, detail):
        cls = BadRequestError
        message = (
            f"The server refused the request as invalid (with HTTP {status_code}, not 400): "
            f"{detail} -- check the request parameters and extra_body; not retried"
        )
    elif status_code >= 500:
        cls = InternalServerError
    else:
        cls = _STATUS_CLASSES.get(status_code, APIStatusError)
    err = cls(message, status_code=status_code, body=body, request_id=request_id_of(headers))
    err.retry_after = parse_retry_after(headers)
    # Per instance: the server's x-should-retry may overrule what the status implies; a
    # request the server found invalid fails the same way every time.
    refused = status_code >= 500 and issubclass(cls, BadRequestError)
    err.is_retryable = not refused and should_retry_status(status_code, headers)
    return err


def error_from_httpx(exc: httpx.HTTPError, url: str) -> CustomLLMError:
    """Map a transport-level httpx exception to our tree (pure).

    Args:
        exc: The httpx exception.
        url: The URL being requested, for the message (it never holds the key).

    Returns:
        The typed error; the caller raises it ``from exc``.

    """
    kind = type(exc).__name__
    # Async transports often raise with an empty message: name the cause instead.
    detail = str(exc) or repr(exc.__cause__ or exc.__context__ or "") or "no detail"
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(
            f"Request to {url} timed out ({kind}) -- raise `timeout` or check the server load"
        )
    if isinstance(exc, httpx.ConnectError):
        return APIConnectionError(
            f"Could not connect to {url} ({kind}: {detail}) -- is the server running and "
            "base_url right?"
        )
    # ReadError / WriteError / RemoteProtocolError: the connection was up, then broke.
    return APIConnectionError(
        f"The connection to {url} broke before the answer was complete ({kind}: {detail}) "
        "-- the server reset or closed it; it is retried only if no output had arrived"
    )
