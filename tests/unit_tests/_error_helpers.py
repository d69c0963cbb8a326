"""Shared by the test_exceptions*.py modules: a mapped status error, an OpenAI error body."""

from __future__ import annotations

import json
from typing import Any

import httpx

from langchain_customllm._exceptions import APIStatusError, error_from_response

URL = "http://llm.invalid/v1/chat/completions"


def make(status: int, headers: dict[str, str] | None = None, body: Any = b"") -> APIStatusError:
    if isinstance(body, dict | list):
        body = json.dumps(body).encode()
    elif isinstance(body, str):
        body = body.encode()
    return error_from_response(status, httpx.Headers(headers or {}), body)


def openai_body(message: str, code: Any = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "code": code}}
