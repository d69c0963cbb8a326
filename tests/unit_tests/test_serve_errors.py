"""The gateway's errors: OpenAI's error JSON with the status each failure deserves."""

from __future__ import annotations

import httpx
import pytest

from langchain_customllm import (
    APIConnectionError,
    ConfigurationError,
    ContextLengthExceededError,
    CustomLLMError,
    InternalServerError,
    RateLimitError,
    StreamTimeoutError,
)
from langchain_customllm.serve import GatewayError, gateway_error
from tests.unit_tests._serve_helpers import USER, events, gateway
from tests.unit_tests.fakes import KEY, FakeServer, chat_chunks, sse


def _chat(server: FakeServer, **kwargs: object) -> object:
    return server.chat(**{"server_profile": "generic", "max_retries": 0, **kwargs})


def _error(response: httpx.Response) -> dict[str, object]:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object, got list"),
        (b'{"messages": []}', "model: Field required"),
        (b'{"model": "m", "messages": [{"role": "tool", "content": "x"}]}', "tool_call_id"),
        (b'{"model": "m", "messages": [{"role": "user"}]}', "needs `content`"),
        (b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 99}', "n: "),
    ],
)
async def test_bad_requests_say_what_is_wrong(
    server: FakeServer, content: bytes, expected: str
) -> None:
    async with gateway({"m": _chat(server)}) as client:
        response = await client.post("/v1/chat/completions", content=content)
    assert response.status_code == 400
    error = _error(response)
    assert error["type"] == "invalid_request_error"
    assert expected in str(error["message"])
    assert not server.requests


async def test_bad_tool_call_arguments_name_the_call(server: FakeServer) -> None:
    call = {"id": "c9", "type": "function", "function": {"name": "f", "arguments": "{oops"}}
    messages = [*USER, {"role": "assistant", "tool_calls": [call]}]
    async with gateway({"m": _chat(server)}) as client:
        response = await client.post(
            "/v1/chat/completions", json={"model": "m", "messages": messages}
        )
    assert response.status_code == 400
    assert "'c9'" in str(_error(response)["message"])


async def test_a_value_the_model_refuses_is_a_400_in_its_words(server: FakeServer) -> None:
    async with gateway({"m": _chat(server)}) as client:
        response = await client.post(
            "/v1/chat/completions", json={"model": "m", "messages": USER, "temperature": -1}
        )
    assert response.status_code == 400
    assert "temperature" in str(_error(response)["message"])


async def test_unknown_model_is_404_listing_the_known_ones(server: FakeServer) -> None:
    async with gateway({"local": _chat(server), "other": _chat(server)}) as client:
        response = await client.post(
            "/v1/chat/completions", json={"model": "locl", "messages": USER}
        )
    assert response.status_code == 404
    error = _error(response)
    assert error["code"] == "model_not_found"
    assert "did you mean 'local'" in str(error["message"])
    assert "local, other" in str(error["message"])


async def test_model_of_another_kind_names_its_endpoint(server: FakeServer) -> None:
    async with gateway({"text": server.llm(server_profile="generic")}) as client:
        response = await client.post(
            "/v1/chat/completions", json={"model": "text", "messages": USER}
        )
    assert response.status_code == 400
    assert "/v1/completions" in str(_error(response)["message"])


async def test_unknown_path_and_method_are_openai_errors(server: FakeServer) -> None:
    async with gateway({"m": _chat(server)}) as client:
        missing = await client.get("/v1/nothing")
        method = await client.get("/v1/chat/completions")
    assert missing.status_code == 404
    assert _error(missing)["type"] == "invalid_request_error"
    assert method.status_code == 405


async def test_backend_rate_limit_is_a_429_with_its_retry_after(server: FakeServer) -> None:
    slow = {"error": {"message": "slow"}}
    server.add(httpx.Response(429, json=slow, headers={"retry-after": "7"}))
    async with gateway({"m": _chat(server)}) as client:
        response = await client.post("/v1/chat/completions", json={"model": "m", "messages": USER})
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert _error(response)["type"] == "rate_limit_error"


@pytest.mark.parametrize(
    ("answer", "status", "code"),
    [
        (httpx.Response(500, json={"error": {"message": "boom"}}), 502, "backend_error"),
        (httpx.Response(503, json={"error": {"message": "loading"}}), 503, "backend_unavailable"),
        (httpx.ReadTimeout("slow"), 504, "timeout"),
        (httpx.ConnectError("refused"), 502, "backend_unreachable"),
        (httpx.Response(404, json={"error": {"message": "gone"}}), 502, "backend_configuration"),
        (httpx.Response(200, content=b"<html>"), 502, "backend_error"),
    ],
)
async def test_backend_failures_are_5xx(
    server: FakeServer, answer: object, status: int, code: str
) -> None:
    server.add(answer)  # type: ignore[arg-type]
    async with gateway({"m": _chat(server)}) as client:
        response = await client.post("/v1/chat/completions", json={"model": "m", "messages": USER})
    assert response.status_code == status
    error = _error(response)
    assert error["code"] == code
    assert error["type"] == "server_error"
    assert "'m'" in str(error["message"])


async def test_backend_refusing_the_gateways_key_is_not_the_clients_401(
    server: FakeServer,
) -> None:
    # The backend echoes the key it was sent: the gateway must never pass it on.
    echo = {"error": {"message": f"Invalid key 'Bearer {KEY}' for this model"}}
    server.add(httpx.Response(401, json=echo))
    async with gateway({"m": _chat(server)}) as client:
        response = await client.post("/v1/chat/completions", json={"model": "m", "messages": USER})
    assert response.status_code == 502
    assert KEY not in response.text
    assert "**********" in response.text


async def test_backend_echoing_its_key_mid_stream_is_masked_too(server: FakeServer) -> None:
    failure = {"error": {"message": f"upstream said: key {KEY} expired"}}
    server.stream(sse(*chat_chunks(["Pa"], finish=None), failure, done=False))
    async with gateway({"m": _chat(server)}) as client:
        response = await client.post(
            "/v1/chat/completions", json={"model": "m", "messages": USER, "stream": True}
        )
    assert KEY not in response.text


async def test_a_stream_that_fails_part_way_ends_with_an_error_event(
    server: FakeServer,
) -> None:
    server.stream(
        sse(*chat_chunks(["Pa", "ris"], finish=None), done=False),
        raise_after=httpx.ReadError("connection reset"),
    )
    async with gateway({"m": _chat(server)}) as client:
        response = await client.post(
            "/v1/chat/completions", json={"model": "m", "messages": USER, "stream": True}
        )
        metrics = (await client.get("/metrics")).text
    assert response.status_code == 200
    got = events(response)
    assert "[DONE]" not in got
    assert "".join(c["delta"].get("content", "") for e in got[:-1] for c in e["choices"]) == "Paris"
    error = got[-1]["error"]
    assert error["type"] == "server_error"
    assert error["code"] == "backend_unreachable"
    assert server.streams[0].closed
    assert 'type="server_error"' in metrics


async def test_a_stream_that_fails_before_its_first_event_gets_its_status(
    server: FakeServer,
) -> None:
    busy = {"error": {"message": "busy"}}
    server.add(httpx.Response(429, json=busy, headers={"retry-after": "2"}))
    async with gateway({"m": _chat(server)}) as client:
        response = await client.post(
            "/v1/chat/completions", json={"model": "m", "messages": USER, "stream": True}
        )
    assert response.status_code == 429
    assert response.headers["retry-after"] == "2"
    assert _error(response)["code"] == "rate_limit_exceeded"


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (ConfigurationError("bad value"), 400),
        (ContextLengthExceededError("too long", status_code=400), 400),
        (RateLimitError("slow", status_code=429), 429),
        (InternalServerError("down", status_code=500), 502),
        (InternalServerError("down", status_code=503), 503),
        (StreamTimeoutError("quiet"), 504),
        (APIConnectionError("refused"), 502),
        (CustomLLMError("other"), 502),
        (RuntimeError("a bug"), 500),
    ],
)
def test_gateway_error_maps_the_tree(exc: BaseException, status: int) -> None:
    error = gateway_error(exc, "m")
    assert error.status == status
    assert isinstance(error, GatewayError)
    if status == 500:
        assert "a bug" not in error.message  # internals are logged, not answered


def test_rate_limit_retry_after_rounds_up() -> None:
    exc = RateLimitError("slow", status_code=429)
    exc.retry_after = 0.2
    assert gateway_error(exc).headers == {"retry-after": "1"}


def test_every_replica_resting_is_503_with_the_first_rejoin_as_retry_after() -> None:
    from langchain_customllm import ReplicasUnavailableError

    exc = ReplicasUnavailableError(
        "No replica can take the request",
        failures={"http://a/v1": "APIConnectionError: refused"},
        retry_after=4.2,
    )
    error = gateway_error(exc, "m")
    assert error.status == 503
    assert error.headers == {"retry-after": "5"}
    assert error.code == "backend_unavailable"
