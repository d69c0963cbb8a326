"""Unit tests for langchain_customllm._exceptions: the messages errors carry.

Extraction from any body shape (HTML pages, empty, huge, invalid), httpx transport errors,
and no API key in any message. The error tree and status mapping: test_exceptions.py.
"""

from __future__ import annotations

import inspect
import json
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

# The Model* classes are langchain-core's from 1.6 on, the package's stand-ins before.
from langchain_customllm._core_errors import ModelConnectionError, ModelTimeoutError
from langchain_customllm._exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    BadRequestError,
    CustomLLMError,
    InternalServerError,
    error_from_httpx,
    error_from_response,
)
from tests.unit_tests._error_helpers import URL, make, openai_body

# ----------------------------------------------------------------- message extraction


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (openai_body("The model `gpt-x` does not exist"), "The model `gpt-x` does not exist"),
        ({"error": {"msg": "short form"}}, "short form"),
        ({"detail": "Invalid API Key"}, "Invalid API Key"),
        (
            {"error": "Input validation error: `temperature` must be strictly positive"},
            "Input validation error: `temperature` must be strictly positive",
        ),
        ({"message": "bad thing"}, "bad thing"),
        ({"msg": "another bad thing"}, "another bad thing"),
        ("plain text failure", "plain text failure"),
        ("  padded text \n", "padded text"),
        ('"a JSON string"', "a JSON string"),
    ],
)
def test_message_extracted_from_body_shapes(body: Any, expected: str) -> None:
    error = make(400, body=body)
    assert error.message.startswith(expected)
    assert expected in str(error)


def test_fastapi_validation_detail_list_is_rendered() -> None:
    detail = [{"loc": ["body", "model"], "msg": "field required", "type": "missing"}]
    error = make(422, body={"detail": detail})
    assert "field required" in error.message
    assert "model" in error.message
    assert error.body == {"detail": detail}


def test_unknown_json_shape_is_dumped() -> None:
    error = make(400, body={"error": {"code": "weird_code"}, "extra": 1})
    assert "weird_code" in error.message


@pytest.mark.parametrize(
    "page",
    [
        "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>nginx</body>",
        "<html><body><h1>404 Not Found</h1><p>secret internal path /srv/app</p></body></html>",
        "\n  <!doctype HTML>\n<html>oops</html>",
        "<HTML><BODY>x</BODY></HTML>",
    ],
)
@pytest.mark.parametrize("status", [404, 502])
def test_html_page_is_described_not_dumped(page: str, status: int) -> None:
    error = make(status, {"content-type": "text/html"}, page)
    assert "HTML" in error.message
    assert "<html" not in str(error).lower()
    assert "<!doctype" not in str(error).lower()
    assert "body>" not in str(error).lower()
    # The raw page is still available to whoever wants it.
    assert error.body == page


@pytest.mark.parametrize("content", [b"", b"   ", b"\n\n", b"{}", b"null"])
def test_empty_body(content: bytes) -> None:
    error = error_from_response(500, httpx.Headers({}), content)
    assert type(error) is InternalServerError
    if content.strip() in (b"", b"null"):
        assert "(empty body)" in error.message
    assert "HTTP 500" in str(error)


def test_empty_body_message_for_client_error() -> None:
    error = make(404, body=b"")
    assert error.message.startswith("(empty body)")


@pytest.mark.parametrize(
    "body",
    [
        "x" * 5000,
        openai_body("y" * 5000),
        {"detail": "z" * 5000},
        {"error": "w" * 5000},
        {"unknown": "v" * 5000},
    ],
)
def test_long_bodies_truncated(body: Any) -> None:
    error = make(400, body=body)
    assert len(error.message) < 700
    assert len(str(error)) < 800
    letter = next(c for c in "xyzwv" if c * 100 in error.message)
    assert letter * 400 in error.message
    assert letter * 1000 not in error.message


def test_invalid_utf8_body_does_not_raise() -> None:
    error = error_from_response(502, httpx.Headers({}), b"bad gateway \xff\xfe here")
    assert "bad gateway" in error.message
    assert "\ufffd" in error.message


@pytest.mark.parametrize("content", [b"[1, 2]", b"42", b"true", b"[]"])
def test_non_object_json_body_does_not_raise(content: bytes) -> None:
    error = error_from_response(400, httpx.Headers({}), content)
    assert type(error) is BadRequestError
    assert error.status_code == 400


@settings(max_examples=200, deadline=None)
@given(
    status=st.integers(400, 599),
    content=st.one_of(
        st.binary(max_size=200),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=20),
            lambda c: (
                st.lists(c, max_size=3)
                | st.dictionaries(
                    st.sampled_from(["error", "message", "detail", "msg", "code"]), c, max_size=3
                )
            ),
            max_leaves=8,
        ).map(lambda v: json.dumps(v).encode()),
    ),
)
def test_any_body_maps_without_raising(status: int, content: bytes) -> None:
    error = error_from_response(status, httpx.Headers({}), content)
    assert isinstance(error, APIStatusError)
    assert error.status_code == status
    assert error.message
    assert f"HTTP {status}" in str(error)
    assert len(error.message) < 1000
    assert isinstance(error.is_retryable, bool)


@pytest.mark.parametrize(
    ("status", "needle"),
    [
        (401, "api_key"),
        (404, "base_url"),
        (429, "max_retries"),
        (500, "Server error"),
        (503, "Server error"),
    ],
)
def test_messages_say_what_to_do(status: int, needle: str) -> None:
    assert needle in make(status, body=openai_body("nope")).message


# ------------------------------------------------------------------------ httpx errors

REQUEST = httpx.Request("POST", URL)


@pytest.mark.parametrize(
    "exc_type", [httpx.ConnectTimeout, httpx.ReadTimeout, httpx.WriteTimeout, httpx.PoolTimeout]
)
def test_httpx_timeouts_map_to_api_timeout(exc_type: type[httpx.TimeoutException]) -> None:
    error = error_from_httpx(exc_type("timed out", request=REQUEST), URL)
    assert type(error) is APITimeoutError
    assert isinstance(error, APIConnectionError)
    assert isinstance(error, ModelTimeoutError)
    assert isinstance(error, ModelConnectionError)
    assert isinstance(error, CustomLLMError)
    assert error.is_retryable is True
    assert error.status_code is None
    assert URL in error.message
    assert exc_type.__name__ in error.message


@pytest.mark.parametrize(
    "exc_type", [httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError]
)
def test_httpx_connection_errors_map_to_api_connection(
    exc_type: type[httpx.TransportError],
) -> None:
    error = error_from_httpx(exc_type("connection refused", request=REQUEST), URL)
    assert type(error) is APIConnectionError
    assert not isinstance(error, ModelTimeoutError)
    assert isinstance(error, ModelConnectionError)
    assert error.is_retryable is True
    assert URL in error.message
    assert exc_type.__name__ in error.message
    assert "connection refused" in error.message


def test_remote_protocol_error_says_connection_broke() -> None:
    exc = httpx.RemoteProtocolError("peer closed connection", request=REQUEST)
    error = error_from_httpx(exc, URL)
    assert "broke" in error.message
    assert "peer closed connection" in error.message


def test_connect_error_hints_at_base_url() -> None:
    error = error_from_httpx(httpx.ConnectError("refused", request=REQUEST), URL)
    assert "base_url" in error.message


# ------------------------------------------------------------------------- no key leak

SECRET = "sk-test-7f3a9c1e5b2d4f6a8c0e"


def test_httpx_error_message_never_contains_request_headers() -> None:
    request = httpx.Request(
        "POST", URL, headers={"Authorization": f"Bearer {SECRET}", "x-api-key": SECRET}
    )
    for exc in (
        httpx.ConnectError("refused", request=request),
        httpx.ReadTimeout("slow", request=request),
        httpx.RemoteProtocolError("closed", request=request),
    ):
        error = error_from_httpx(exc, URL)
        assert SECRET not in str(error)
        assert SECRET not in repr(error)
        assert SECRET not in error.message


def test_response_mapping_uses_only_body_and_response_headers() -> None:
    # The mapping cannot see request headers at all (the optional `describe` is the wire
    # format's hook to find the message in the body) ...
    assert list(inspect.signature(error_from_response).parameters) == [
        "status_code",
        "headers",
        "content",
        "describe",
    ]
    # ... and does not dump response headers either (only the request id is taken).
    headers = {
        "www-authenticate": f"Bearer realm={SECRET}",
        "set-cookie": f"session={SECRET}",
        "x-request-id": "req_1",
    }
    error = make(401, headers, {"detail": "Invalid API key"})
    assert SECRET not in str(error)
    assert SECRET not in repr(error)
    assert "req_1" in str(error)
