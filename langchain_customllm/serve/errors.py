"""The gateway's errors, as OpenAI's error JSON with the status an OpenAI client expects.

Two kinds reach a client:

- the gateway's own refusals (bad JSON, a schema error, a wrong client key, an unknown model,
  a body too large), raised as `GatewayError` where they are found;
- the model's errors, the package's `CustomLLMError` tree, mapped by `gateway_error`, the one
  function that turns an exception into a status. Backend answers are never parsed here: the
  model's client already read them (`error_from_response`) and masked its key in them.

The body is OpenAI's ``{"error": {"message", "type", "param", "code"}}``; like OpenAI,
``code`` is a short string (``"model_not_found"``) or null, and ``type`` the family
(``"invalid_request_error"``). LiteLLM's proxy puts the HTTP status in ``code`` instead;
clients read the status from the response, so we keep OpenAI's meaning.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from langchain_customllm._exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ContextLengthExceededError,
    CustomLLMError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestTimeoutError,
    ResponseError,
    StreamError,
)
from langchain_customllm._json import dumps
from langchain_customllm._replicas import ReplicasUnavailableError

__all__ = ["GatewayError", "gateway_error"]

logger = logging.getLogger("langchain_customllm.serve")


class GatewayError(Exception):
    """An error the gateway answers with.

    Attributes:
        status: The HTTP status.
        message: What was wrong and, where known, what to do.
        type: OpenAI's error family (``invalid_request_error``, ``server_error``, ...).
        code: A short machine-readable code, or None.
        param: The request field at fault, or None.
        headers: Response headers to add (``Retry-After``).
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or {}

    def payload(self) -> dict[str, Any]:
        """The ``{"error": {...}}`` object."""
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def json(self) -> bytes:
        """The error body, encoded."""
        return dumps(self.payload())


def _retry_after(exc: APIStatusError | ReplicasUnavailableError) -> dict[str, str]:
    if exc.retry_after is None:
        return {}
    # Retry-After is whole seconds (RFC 9110); never round a wait down to "now".
    return {"retry-after": str(max(1, math.ceil(exc.retry_after)))}


def _backend(model: str | None) -> str:
    return f"the backend of model {model!r}" if model else "the backend"


def gateway_error(exc: BaseException, model: str | None = None) -> GatewayError:
    """The error to answer for an exception raised while serving ``model``.

    Args:
        exc: What was raised: a `GatewayError`, a `CustomLLMError`, or anything else (a
            bug, answered as a 500 that says no more than that).
        model: The gateway's name of the model being called, for messages.

    Returns:
        The error to answer with.
    """
    if isinstance(exc, GatewayError):
        return exc
    if not isinstance(exc, CustomLLMError):
        # A bug, here or in a model's adapter: its details go to the log, not the client.
        logger.error("unexpected error serving model %r", model, exc_info=exc)
        return GatewayError(
            500,
            "The gateway failed while serving this request (see its log).",
            type="server_error",
        )
    # The model's message, already free of its key (the model's Redactor).
    text = exc.message
    if isinstance(exc, ConfigurationError):
        # Raised before sending: a per-call value the model refuses (temperature=-1, a
        # tool choice the server cannot honour) is the request's fault.
        return GatewayError(400, text, param=exc.setting)
    if isinstance(exc, ContextLengthExceededError):
        return GatewayError(400, text, code="context_length_exceeded")
    if isinstance(exc, RateLimitError):
        return GatewayError(
            429,
            f"{_backend(model)} is rate limiting: {text}",
            type="rate_limit_error",
            code="rate_limit_exceeded",
            headers=_retry_after(exc),
        )
    if isinstance(exc, BadRequestError):
        if exc.status_code == 413:
            return GatewayError(413, text, code="request_too_large")
        return GatewayError(400, text)
    if isinstance(exc, APITimeoutError | RequestTimeoutError):
        return GatewayError(
            504, f"{_backend(model)} timed out: {text}", type="server_error", code="timeout"
        )
    if isinstance(exc, AuthenticationError | PermissionDeniedError | NotFoundError):
        # The backend refused the gateway's own key or does not know the configured model:
        # the gateway's configuration is at fault, not the client's request or key.
        return GatewayError(
            502,
            f"{_backend(model)} refused the gateway's request ({text}); check this model's "
            "entry in the gateway's configuration",
            type="server_error",
            code="backend_configuration",
        )
    # A 503, or every replica of the model resting: the backend is unavailable for now.
    if isinstance(exc, ReplicasUnavailableError) or (
        isinstance(exc, APIStatusError) and exc.status_code == 503
    ):
        return GatewayError(
            503,
            f"{_backend(model)} is unavailable: {text}",
            type="server_error",
            code="backend_unavailable",
            headers=_retry_after(exc),
        )
    if isinstance(exc, APIConnectionError):
        return GatewayError(
            502,
            f"{_backend(model)} could not be reached: {text}",
            type="server_error",
            code="backend_unreachable",
        )
    if isinstance(exc, APIStatusError | ResponseError | StreamError):
        return GatewayError(
            502, f"{_backend(model)} failed: {text}", type="server_error", code="backend_error"
        )
    return GatewayError(502, f"{_backend(model)} failed: {text}", type="server_error")
