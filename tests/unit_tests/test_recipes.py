"""The failover and retry recipes of docs/errors.md, on scripted servers."""

from __future__ import annotations

import httpx
import pytest

from langchain_customllm import (
    APIConnectionError,
    APITimeoutError,
    BadRequestError,
    InternalServerError,
    RateLimitError,
)
from tests.unit_tests.fakes import FakeServer, chat_body


def test_with_fallbacks_moves_to_the_backup_server() -> None:
    down, up = FakeServer(), FakeServer()
    for _ in range(2):
        down.add(httpx.ConnectError("refused"))
    up.json(chat_body("from backup"))
    primary = down.chat(max_retries=1)
    llm = primary.with_fallbacks(
        [up.chat()],
        exceptions_to_handle=(APIConnectionError, InternalServerError, RateLimitError),
    )
    assert llm.invoke("q").content == "from backup"
    assert len(down.requests) == 2


def test_with_fallbacks_does_not_hide_a_bad_request() -> None:
    bad, backup = FakeServer(), FakeServer()
    bad.json({"error": {"message": "unknown field"}}, status=400)
    llm = bad.chat().with_fallbacks(
        [backup.chat()], exceptions_to_handle=(APIConnectionError, InternalServerError)
    )
    with pytest.raises(BadRequestError, match="unknown field"):
        llm.invoke("q")
    assert backup.requests == []  # a 400 must not be silently answered by the backup


def test_with_retry_retries_the_chain(server: FakeServer) -> None:
    server.add(httpx.ConnectError("refused"))
    server.json(chat_body("second time"))
    llm = server.chat(max_retries=0).with_retry(
        retry_if_exception_type=(APIConnectionError, APITimeoutError),
        stop_after_attempt=3,
        wait_exponential_jitter=False,
    )
    assert llm.invoke("q").content == "second time"
    assert len(server.requests) == 2
