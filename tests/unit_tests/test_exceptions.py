"""Unit tests for langchain_customllm._exceptions: the error tree, status mapping,
context-overflow detection, request ids and str().

Message extraction from bodies, httpx errors and key leaks: test_exceptions_messages.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.exceptions import ContextOverflowError

# The Model* classes are langchain-core's from 1.6 on, the package's stand-ins before.
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
from langchain_customllm._exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ConflictError,
    ContextLengthExceededError,
    CustomLLMError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestTimeoutError,
    ResponseError,
    StreamError,
)
from tests.unit_tests._error_helpers import make, openai_body

# ----------------------------------------------------------------------- status mapping

STATUS_MAP: list[tuple[int, type[APIStatusError], type[ModelError] | None]] = [
    (400, BadRequestError, ModelInvalidRequestError),
    (401, AuthenticationError, ModelAuthenticationError),
    (403, PermissionDeniedError, ModelPermissionDeniedError),
    (404, NotFoundError, ModelNotFoundError),
    (408, RequestTimeoutError, ModelTimeoutError),
    (409, ConflictError, None),
    (413, BadRequestError, ModelInvalidRequestError),
    (422, BadRequestError, ModelInvalidRequestError),
    (429, RateLimitError, ModelRateLimitError),
    (500, InternalServerError, ModelAPIError),
    (502, InternalServerError, ModelAPIError),
    (503, InternalServerError, ModelAPIError),
    (504, InternalServerError, ModelAPIError),
    (418, APIStatusError, None),
]


@pytest.mark.parametrize(("status", "cls", "core_cls"), STATUS_MAP)
def test_status_maps_to_class(
    status: int, cls: type[APIStatusError], core_cls: type[ModelError] | None
) -> None:
    error = make(status, body=openai_body("something went wrong"))
    assert type(error) is cls
    assert isinstance(error, APIStatusError)
    assert isinstance(error, CustomLLMError)
    assert isinstance(error, ModelError)
    assert isinstance(error, Exception)
    if core_cls is not None:
        assert isinstance(error, core_cls)
    assert not isinstance(error, ContextOverflowError)
    assert not isinstance(error, ModelConnectionError)
    assert error.status_code == status
    assert error.body == openai_body("something went wrong")
    # Catchable as the langchain-core class, as user code would.
    if core_cls is not None:
        with pytest.raises(core_cls):
            raise error


@pytest.mark.parametrize(
    ("status", "wrong"),
    [
        (401, ModelPermissionDeniedError),
        (403, ModelAuthenticationError),
        (404, ModelInvalidRequestError),
        (429, ModelAPIError),
        (500, ModelRateLimitError),
        (400, ModelNotFoundError),
        (418, ModelAPIError),
        (418, ModelInvalidRequestError),
    ],
)
def test_status_does_not_map_to_unrelated_core_class(status: int, wrong: type) -> None:
    assert not isinstance(make(status), wrong)


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (408, True),
        (409, True),
        (413, False),
        (418, False),
        (422, False),
        (429, True),
        (500, True),
        (502, True),
        (503, True),
        (504, True),
    ],
)
def test_is_retryable_per_status(status: int, retryable: bool) -> None:
    assert make(status).is_retryable is retryable


def test_is_retryable_is_per_instance_from_x_should_retry() -> None:
    normal = make(429)
    told_no = make(429, {"X-Should-Retry": "false"})
    told_yes = make(400, {"x-should-retry": "true"})
    assert type(normal) is type(told_no) is RateLimitError
    assert normal.is_retryable is True
    assert told_no.is_retryable is False
    assert told_yes.is_retryable is True
    assert type(told_yes) is BadRequestError
    # The class attributes are untouched.
    assert RateLimitError.is_retryable is True
    assert BadRequestError.is_retryable is False
    assert make(400).is_retryable is False


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"Retry-After": "3"}, 3.0),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"RETRY-AFTER": "1.25"}, 1.25),
    ],
)
def test_retry_after_attribute(headers: dict[str, str], expected: float | None) -> None:
    assert make(429, headers).retry_after == expected
    assert make(503, headers).retry_after == expected


# ---------------------------------------------------------------------- context overflow

VLLM_MESSAGE = (
    "This model's maximum context length is 2048 tokens. However, you requested 2100 tokens "
    "(2000 in the messages, 100 in the completion). Please reduce the length of the messages "
    "or completion."
)
# llama.cpp's llama-server (tools/server): ERROR_TYPE_EXCEED_CONTEXT_SIZE, HTTP 400.
LLAMA_CPP_BODY = {
    "error": {
        "code": 400,
        "message": (
            "request (4096 tokens) exceeds the available context size (2048 tokens), "
            "try increasing it"
        ),
        "type": "exceed_context_size_error",
        "n_prompt_tokens": 4096,
        "n_ctx": 2048,
    }
}


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, openai_body("Input too long", code="context_length_exceeded")),
        (400, {"error": {"code": "context_length_exceeded"}}),
        (400, openai_body(VLLM_MESSAGE)),
        (400, {"object": "error", "message": VLLM_MESSAGE, "code": 400}),
        (422, {"detail": VLLM_MESSAGE}),
        (413, {"error": "Request exceeds the context window of this model"}),
        (400, "prompt has too many tokens for this model"),
        (400, {"error": "The input exceeds the context length"}),
        (400, {"error": "input exceeds the context"}),
        # llama.cpp: by its error type alone, and by its words alone.
        (400, {"error": {"code": 400, "message": "no", "type": "exceed_context_size_error"}}),
        (400, {"error": "request (9 tokens) exceeds the available context size (8 tokens)"}),
    ],
)
def test_context_overflow_detected(status: int, body: Any) -> None:
    error = make(status, body=body)
    assert type(error) is ContextLengthExceededError
    assert isinstance(error, ContextOverflowError)
    assert isinstance(error, BadRequestError)
    assert isinstance(error, ModelInvalidRequestError)
    assert isinstance(error, CustomLLMError)
    assert error.is_retryable is False
    assert "shorten the prompt or lower max_tokens" in error.message


def test_context_overflow_message_keeps_server_words() -> None:
    error = make(400, body=openai_body(VLLM_MESSAGE))
    assert VLLM_MESSAGE in error.message
    assert "HTTP 400" in str(error)


def test_context_overflow_detected_from_llama_cpp_body() -> None:
    error = make(400, body=LLAMA_CPP_BODY)
    assert type(error) is ContextLengthExceededError, (
        f"llama.cpp's context overflow was mapped to {type(error).__name__}: {error}"
    )
    assert error.is_retryable is False


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        (400, openai_body("temperature must be between 0 and 2"), BadRequestError),
        (
            422,
            {"detail": [{"loc": ["body", "messages"], "msg": "field required"}]},
            BadRequestError,
        ),
        # The phrase only counts for 400/413/422.
        (500, openai_body(VLLM_MESSAGE), InternalServerError),
        (404, openai_body("maximum context length unknown for model x"), NotFoundError),
    ],
)
def test_not_context_overflow(status: int, body: Any, cls: type) -> None:
    error = make(status, body=body)
    assert type(error) is cls
    assert not isinstance(error, ContextOverflowError)


# ------------------------------------------------------------------- request id, str()


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"x-request-id": "req_123"}, "req_123"),
        ({"X-Request-ID": "req_ABC"}, "req_ABC"),
        ({"request-id": "r-9"}, "r-9"),
        ({"x-litellm-call-id": "lite-1"}, "lite-1"),
        ({"x-amzn-RequestId": "amz-1"}, "amz-1"),
        ({"x-request-id": "first", "request-id": "second"}, "first"),
        ({"x-request-id": "", "request-id": "second"}, "second"),
        ({"x-correlation-id": "nope"}, None),
        ({}, None),
    ],
)
def test_request_id(headers: dict[str, str], expected: str | None) -> None:
    assert make(500, headers).request_id == expected


def test_str_contains_message_status_and_request_id() -> None:
    error = make(404, {"X-Request-Id": "req_42"}, openai_body("model 'foo' not found"))
    text = str(error)
    assert error.message in text
    assert "model 'foo' not found" in text
    assert "HTTP 404" in text
    assert "req_42" in text


def test_str_without_request_id_or_status() -> None:
    error = make(400, {}, openai_body("bad"))
    assert "request id" not in str(error)
    assert str(CustomLLMError("plain")) == "plain"
    assert str(StreamError("cut", status_code=500)) == "cut (HTTP 500)"
    assert str(ResponseError("odd", request_id="r1")) == "odd [request id r1]"


def test_base_error_attributes() -> None:
    error = StreamError("cut off", status_code=None, body={"a": 1}, partial_text="Hel")
    assert error.message == "cut off"
    assert error.partial_text == "Hel"
    assert error.body == {"a": 1}
    assert error.status_code is None
    assert error.request_id is None
    assert isinstance(error, ModelError)
    assert error.is_retryable is False


def test_error_tree() -> None:
    assert issubclass(ConfigurationError, ValueError)
    assert issubclass(ConfigurationError, CustomLLMError)
    assert issubclass(APITimeoutError, APIConnectionError)
    assert issubclass(APITimeoutError, ModelTimeoutError)
    assert issubclass(APIConnectionError, ModelConnectionError)
    assert issubclass(ContextLengthExceededError, BadRequestError)
    assert issubclass(ContextLengthExceededError, ContextOverflowError)
    assert issubclass(RequestTimeoutError, ModelTimeoutError)
    for cls in (StreamError, ResponseError, APIStatusError, ConflictError):
        assert issubclass(cls, CustomLLMError)
    assert not issubclass(StreamError, APIStatusError)
    assert not issubclass(ResponseError, APIStatusError)
