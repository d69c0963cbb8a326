"""The API key never shows: not in repr, str, dumps, errors or logs."""

from __future__ import annotations

import json
import logging

import httpx
import pytest
from langchain_core.load import dumpd, dumps

from langchain_customllm import APITimeoutError, AuthenticationError, ChatCustomLLM, CustomLLM
from tests.unit_tests.fakes import KEY, FakeServer


@pytest.mark.parametrize("cls", [ChatCustomLLM, CustomLLM])
def test_key_not_in_repr_str_or_dumps(cls: type) -> None:
    llm = cls(model="m", api_key=KEY, default_headers={"x-extra-auth": KEY, "x-tenant": "blue"})
    texts = [
        repr(llm),
        str(llm),
        str(llm.model_dump()),
        json.dumps(dumpd(llm)),
        dumps(llm),
        repr(llm._runtime().client),
        str(llm._identifying_params),
    ]
    for text in texts:
        assert KEY not in text
    kwargs = dumpd(llm)["kwargs"]
    assert kwargs["api_key"] == {"lc": 1, "type": "secret", "id": ["CUSTOMLLM_API_KEY"]}
    assert kwargs["default_headers"]["x-tenant"] == "blue"  # only credential-like ones hidden
    assert llm.model_dump()["default_headers"] == {"x-extra-auth": "**********", "x-tenant": "blue"}


def test_key_read_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUSTOMLLM_API_KEY", KEY)
    llm = ChatCustomLLM(model="m")
    assert llm.api_key is not None
    assert llm.api_key.get_secret_value() == KEY
    assert KEY not in repr(llm)


def test_key_not_in_errors_or_logs(server: FakeServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    server.json({"error": "busy"}, status=503)
    # A careless gateway echoing the header back must not make us print it either: we
    # only ever show the body's message, and this body does not contain the header.
    server.json({"detail": "Invalid API key"}, status=401, headers={"x-request-id": "r1"})
    with pytest.raises(AuthenticationError) as info:
        server.chat().invoke("q")
    err = info.value
    for text in (str(err), repr(err), err.message, json.dumps(err.body), caplog.text):
        assert KEY not in text
    assert "Retrying" in caplog.text  # the retry was logged, without the key
    assert server.requests[0].headers["authorization"] == f"Bearer {KEY}"


def test_key_only_read_in_the_client() -> None:
    # The brief: one place calls get_secret_value().
    import pathlib

    import langchain_customllm

    root = pathlib.Path(langchain_customllm.__file__).parent
    users = [
        p.relative_to(root).as_posix()
        for p in root.rglob("*.py")
        if "get_secret_value()" in p.read_text()
    ]
    assert users == ["_auth.py"]


def test_timeout_error_message_has_no_key(server: FakeServer) -> None:
    for _ in range(3):
        server.add(httpx.ReadTimeout("timed out"))
    with pytest.raises(APITimeoutError, match="timed out") as info:
        server.chat().invoke("q")
    assert KEY not in str(info.value)
