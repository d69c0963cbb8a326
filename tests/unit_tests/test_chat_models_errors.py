"""ChatCustomLLM over a scripted server when things go wrong: typed errors, retries,
broken streams; and tracing parameters and identity. Every case on both twins (sync and
async); the happy path is in test_chat_models.py.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from langchain_core.exceptions import ContextOverflowError

from langchain_customllm import (
    APIConnectionError,
    AuthenticationError,
    ChatCustomLLM,
    ContextLengthExceededError,
    CustomLLM,
    InternalServerError,
    NotFoundError,
    RateLimitError,
    ResponseError,
    StreamError,
)

# langchain-core's own classes from 1.6 on; the package's stand-ins before (make lowest).
from langchain_customllm._core_errors import ModelAuthenticationError, ModelNotFoundError
from tests._calls import merge, run_invoke, run_stream
from tests.unit_tests.fakes import (
    FakeServer,
    chat_body,
    chat_chunks,
    sse,
)

# ---------------------------------------------------------------- errors and retries


@pytest.mark.parametrize(
    ("status", "body", "error", "core_error"),
    [
        (401, {"detail": "Invalid API key"}, AuthenticationError, ModelAuthenticationError),
        (404, {"error": {"message": "model 'x' not found"}}, NotFoundError, ModelNotFoundError),
        (
            400,
            {"error": {"message": "too long", "code": "context_length_exceeded"}},
            ContextLengthExceededError,
            ContextOverflowError,
        ),
    ],
)
def test_status_errors_are_typed_and_not_retried(
    server: FakeServer,
    mode: str,
    status: int,
    body: dict[str, object],
    error: type[Exception],
    core_error: type[Exception],
) -> None:
    server.json(body, status=status, headers={"x-request-id": "req-42"})
    with pytest.raises(error) as info:
        run_invoke(server.chat(), "q", mode)
    assert isinstance(info.value, core_error)
    assert info.value.status_code == status
    assert info.value.request_id == "req-42"
    assert len(server.requests) == 1


def test_5xx_is_retried_then_succeeds(server: FakeServer, mode: str) -> None:
    server.json({"error": "busy"}, status=503)
    server.json({"error": "busy"}, status=500)
    server.json(chat_body("ok"))
    assert run_invoke(server.chat(), "q", mode).content == "ok"
    assert len(server.requests) == 3
    assert len(server.sleeps) == 2
    assert 0.375 <= server.sleeps[0] <= 0.5  # 0.5 s with up to 25 % jitter
    assert 0.75 <= server.sleeps[1] <= 1.0


def test_retries_give_up_after_max_retries(server: FakeServer, mode: str) -> None:
    for _ in range(3):
        server.json({"error": {"message": "boom"}}, status=500)
    with pytest.raises(InternalServerError, match="boom"):
        run_invoke(server.chat(max_retries=2), "q", mode)
    assert len(server.requests) == 3


def test_retry_after_is_honoured(server: FakeServer, mode: str) -> None:
    server.json({"error": "slow down"}, status=429, headers={"retry-after": "2"})
    server.json(chat_body("ok"))
    assert run_invoke(server.chat(), "q", mode).content == "ok"
    assert server.sleeps == [2.0]


def test_retry_after_over_120s_raises_at_once(server: FakeServer, mode: str) -> None:
    server.json({"error": "come back later"}, status=429, headers={"retry-after": "300"})
    with pytest.raises(RateLimitError) as info:
        run_invoke(server.chat(), "q", mode)
    assert info.value.retry_after == 300.0
    assert len(server.requests) == 1
    assert server.sleeps == []


def test_connection_error_is_retried_then_typed(server: FakeServer, mode: str) -> None:
    for _ in range(3):
        server.add(httpx.ConnectError("refused"))
    with pytest.raises(APIConnectionError, match="is the server running"):
        run_invoke(server.chat(), "q", mode)
    assert len(server.requests) == 3


def test_stream_open_is_retried(server: FakeServer, mode: str) -> None:
    server.json({"error": "warming up"}, status=503)
    server.stream(sse(*chat_chunks(["ok"])))
    assert merge(run_stream(server.chat(), "q", mode)).content == "ok"
    assert len(server.requests) == 2


def test_non_json_200_is_a_typed_error(server: FakeServer, mode: str) -> None:
    server.add(httpx.Response(200, text="<html>proxy login</html>"))
    with pytest.raises(ResponseError, match="not JSON"):
        run_invoke(server.chat(), "q", mode)


def test_wrong_shape_200_is_a_typed_error(server: FakeServer, mode: str) -> None:
    server.json({"outputs": ["hi"]})
    with pytest.raises(ResponseError, match="no `choices`"):
        run_invoke(server.chat(), "q", mode)


def test_error_event_mid_stream_keeps_partial_text(server: FakeServer, mode: str) -> None:
    chunks = chat_chunks(["Once upon", " a time"], finish=None)
    body = sse(*chunks, {"error": {"message": "model crashed", "code": 500}}, done=False)
    server.stream(body)
    with pytest.raises(StreamError, match="model crashed") as info:
        run_stream(server.chat(), "q", mode)
    assert info.value.partial_text == "Once upon a time"
    assert info.value.status_code == 500
    assert len(server.requests) == 1  # never retried once output began


def test_stream_cut_without_finish_is_not_complete(server: FakeServer, mode: str) -> None:
    server.stream(sse(*chat_chunks(["Once upon", " a"], finish=None), done=False))
    with pytest.raises(StreamError, match="ended before") as info:
        run_stream(server.chat(), "q", mode)
    assert info.value.partial_text == "Once upon a"


def test_connection_reset_mid_stream_keeps_partial_text(server: FakeServer, mode: str) -> None:
    server.stream(
        sse(*chat_chunks(["Once"], finish=None), done=False),
        raise_after=httpx.RemoteProtocolError("peer closed connection"),
    )
    with pytest.raises(APIConnectionError, match="broke") as info:
        run_stream(server.chat(), "q", mode)
    assert info.value.partial_text == "Once"
    assert len(server.requests) == 1


def test_breaking_out_of_a_stream_closes_the_response(server: FakeServer) -> None:
    stream = server.stream(sse(*chat_chunks(["a", "b", "c", "d"])))
    for _chunk in server.chat().stream("q"):
        break
    assert stream.closed


async def test_cancelling_an_astream_closes_the_response(server: FakeServer) -> None:
    stream = server.stream(sse(*chat_chunks(["a", "b", "c", "d"])))
    agen = server.chat().astream("q")
    async for _chunk in agen:
        break
    await agen.aclose()
    # Python finalizes the inner async generators through the event loop's asyncgen hook,
    # which closes the response on the next turns of the loop.
    for _ in range(5):
        await asyncio.sleep(0)
    assert stream.closed


# ---------------------------------------------------------------- tracing and identity


def test_ls_params_honour_model_override() -> None:
    llm = ChatCustomLLM(model="smollm2", provider="vllm", temperature=0.1, max_tokens=5)
    params = llm._get_ls_params(stop=["x"], model="other")
    assert params == {
        "ls_provider": "vllm",
        "ls_model_name": "other",
        "ls_model_type": "chat",
        "ls_temperature": 0.1,
        "ls_max_tokens": 5,
        "ls_stop": ["x"],
    }
    assert llm._get_ls_params()["ls_model_name"] == "smollm2"
    assert llm._llm_type == "customllm-chat"
    assert llm._identifying_params["model"] == "smollm2"
    assert llm._identifying_params["wire_format"] == "openai"


def test_model_name_alias_and_env_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUSTOMLLM_BASE_URL", "http://gpu-box:8000/v1/")
    llm = ChatCustomLLM(model_name="m")
    assert llm.model == "m"
    assert llm.base_url == "http://gpu-box:8000/v1"


def test_bad_base_url_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="must be an http:// or https:// URL with a host"):
        ChatCustomLLM(model="m", base_url="localhost:8000/v1")


def test_unknown_wire_format_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"Known formats: .*openai"):
        ChatCustomLLM(model="m", wire_format="nope")


def test_client_is_created_once_and_pooled(server: FakeServer) -> None:
    server.json(chat_body())
    server.json(chat_body())
    llm = server.chat()
    first = llm._runtime().client
    llm.invoke("a")
    llm.invoke("b")
    assert llm._runtime().client is first


@pytest.mark.parametrize("cls", [ChatCustomLLM, CustomLLM])
def test_unknown_setting_is_an_error_not_ignored(cls: type) -> None:
    with pytest.raises(ValueError, match="temprature"):
        cls(model="m", temprature=0.2)
