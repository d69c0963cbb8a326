"""Stream idle timeouts, TLS settings, clear-text warnings and key redaction.

Every case about a call runs on all four call paths (invoke, ainvoke, stream, astream) for
ChatCustomLLM and CustomLLM; a stream fault reaches invoke/ainvoke through ``streaming=True``
(the streaming endpoint behind invoke).
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from langchain_customllm import (
    APITimeoutError,
    AuthenticationError,
    ChatCustomLLM,
    StreamError,
    StreamTimeoutError,
)
from langchain_customllm import _reader as reader_module
from tests._calls import STREAM_PATHS, call, text_of
from tests.unit_tests.fakes import KEY, FakeServer, chat_chunks, completion_chunks, sse


def streamed_model(server: FakeServer, kind: str, path: str, **kwargs: Any) -> Any:
    """A model of ``kind`` whose every path reads a stream (invoke through streaming=True)."""
    factory = server.chat if kind == "chat" else server.llm
    if path not in STREAM_PATHS:
        # Only when asked: a chat model *set* to streaming=False would not stream at all.
        kwargs["streaming"] = True
    return factory(**kwargs)


def events(kind: str, pieces: list[str]) -> list[dict[str, Any]]:
    """Stream events carrying ``pieces`` and no end: chat or text-completion chunks."""
    if kind == "chat":
        return chat_chunks(pieces, finish=None)
    return completion_chunks(pieces, finish=None)


def test_read_timeout_mid_stream_is_a_stream_timeout(
    server: FakeServer, kind: str, path: str
) -> None:
    server.stream(
        sse(*events(kind, ["Once", " upon"]), done=False),
        raise_after=httpx.ReadTimeout("read timed out"),
    )
    seen: list[Any] = []
    model = streamed_model(server, kind, path, stream_chunk_timeout=2.0)
    with pytest.raises(StreamTimeoutError, match="stopped sending mid-stream") as info:
        call(model, path, "q", seen=seen)
    assert isinstance(info.value, APITimeoutError)  # and so a ModelTimeoutError
    assert info.value.partial_text == "Once upon"
    assert text_of(seen) == ("Once upon" if path in STREAM_PATHS else "")
    assert len(server.requests) == 1  # output had begun: never retried


def test_trickle_without_events_hits_the_chunk_timeout(
    server: FakeServer, kind: str, path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Bytes keep coming (SSE keep-alive comments) but no event completes: a clock that
    # advances 1 s per read stands in for a slow trickle, with no real waiting.
    clock = iter(range(1000))
    monkeypatch.setattr(reader_module.time, "monotonic", lambda: float(next(clock)))
    first = sse(*events(kind, ["Hi"]), done=False)
    server.stream([first] + [b": keep-alive\n\n"] * 10)
    model = streamed_model(server, kind, path, stream_chunk_timeout=2.5)
    with pytest.raises(StreamTimeoutError, match=r"No complete stream event for 2\.5 s") as info:
        call(model, path, "q")
    assert info.value.partial_text == "Hi"


def test_chunk_timeout_arms_the_body_read_timeout(server: FakeServer, kind: str, path: str) -> None:
    seen: list[dict[str, float]] = []
    live: list[dict[str, float]] = []
    body = sse(*(chat_chunks(["ok"]) if kind == "chat" else completion_chunks(["ok"])))

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(dict(request.extensions["timeout"]))  # as sent
        live.append(request.extensions["timeout"])  # as the body is then read
        return httpx.Response(200, content=body)

    server.add(answer)
    model = streamed_model(server, kind, path, stream_chunk_timeout=1.5, timeout=30)
    assert text_of(call(model, path, "q")) == "ok"
    # Our timeout applies even on a user-provided client; the wait for the headers keeps
    # it, and once they are in, each body read may wait stream_chunk_timeout.
    assert seen[0] == {"connect": 30, "read": 30, "write": 30, "pool": 30}
    assert live[0]["read"] == 1.5


def test_key_echoed_by_the_server_is_redacted(server: FakeServer, kind: str, path: str) -> None:
    # A gateway that echoes the request, headers included, in its error body.
    server.json(
        {"error": {"message": f"bad key: Authorization: Bearer {KEY}", "echo": [KEY]}},
        status=401,
    )
    model = server.chat() if kind == "chat" else server.llm()
    with pytest.raises(AuthenticationError) as info:
        call(model, path, "q")
    err = info.value
    for text in (str(err), repr(err), err.message, repr(err.body), repr(err.args)):
        assert KEY not in text
    assert "**********" in err.message


def test_key_echoed_in_a_stream_error_event_is_redacted(
    server: FakeServer, kind: str, path: str
) -> None:
    body = sse(*events(kind, ["a"]), {"error": {"message": f"echo {KEY}"}}, done=False)
    server.stream(body)
    with pytest.raises(StreamError) as info:
        call(streamed_model(server, kind, path), path, "q")
    assert KEY not in str(info.value)
    assert KEY not in repr(info.value.body)
    assert info.value.partial_text == "a"


def test_cleartext_key_to_a_remote_host_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="langchain_customllm")
    ChatCustomLLM(model="m", base_url="http://gpu-box.internal:8000/v1", api_key=KEY)
    ChatCustomLLM(model="m", base_url="http://127.0.0.1:8000/v1", api_key=KEY)
    ChatCustomLLM(model="m", base_url="http://localhost:8000/v1", api_key=KEY)
    ChatCustomLLM(model="m", base_url="https://gpu-box.internal/v1", api_key=KEY)
    ChatCustomLLM(model="m", base_url="http://gpu-box.internal:8000/v1", api_key=None)
    warnings = [r for r in caplog.records if "clear text" in r.getMessage()]
    assert len(warnings) == 1
    assert "gpu-box.internal" in warnings[0].getMessage()
    assert KEY not in caplog.text


def test_tls_verification_is_on_by_default() -> None:
    client = ChatCustomLLM(model="m", base_url="https://x.test/v1")._runtime().client
    context = client.pools._ssl()
    assert not isinstance(context, bool)
    assert context.verify_mode.name == "CERT_REQUIRED"
    assert context.check_hostname is True
    # One context, loaded once, shared by every client.
    assert ChatCustomLLM(model="n")._runtime().client.pools._ssl() is context


def test_tls_off_and_bad_files() -> None:
    assert ChatCustomLLM(model="m", verify=False)._runtime().client.pools._ssl() is False
    with pytest.raises(ValueError, match="Cannot load the TLS files"):
        ChatCustomLLM(model="m", verify="/nonexistent/ca.pem")
    with pytest.raises(ValueError, match="needs TLS verification"):
        ChatCustomLLM(model="m", verify=False, cert="/x.pem")


def test_ca_bundle_and_client_cert(tmp_path: pytest.TempPathFactory) -> None:
    trustme = pytest.importorskip("trustme", reason="trustme generates throwaway certificates")
    ca = trustme.CA()
    bundle = tmp_path / "ca.pem"  # type: ignore[operator]
    ca.cert_pem.write_to_path(str(bundle))
    leaf = ca.issue_cert("client.test")
    pem = tmp_path / "client.pem"  # type: ignore[operator]
    leaf.private_key_and_cert_chain_pem.write_to_path(str(pem))
    client = ChatCustomLLM(model="m", verify=str(bundle), cert=str(pem))._runtime().client
    context = client.pools._ssl()
    assert not isinstance(context, bool)
    assert context.verify_mode.name == "CERT_REQUIRED"
    assert len(context.get_ca_certs()) == 1
