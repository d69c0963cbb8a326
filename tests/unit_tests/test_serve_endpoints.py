"""The gateway's other endpoints and its guard: completions, embeddings, keys, caps, CORS."""

from __future__ import annotations

import base64
import struct
from collections.abc import AsyncIterator

import httpx
import pytest

from langchain_customllm import ConfigurationError, CustomLLMEmbeddings, request_headers
from langchain_customllm.serve import ClientKeys, GatewayOptions
from tests.unit_tests import _embed_helpers as emb
from tests.unit_tests._serve_helpers import CLIENT_KEY, USER, events, gateway
from tests.unit_tests.fakes import FakeServer, chat_body, completion_chunks, sse

COMPLETION = {
    "id": "cmpl-1",
    "object": "text_completion",
    "model": "smollm2",
    "choices": [{"index": 0, "text": " Paris.", "finish_reason": "length"}],
    "usage": {"prompt_tokens": 6, "completion_tokens": 2, "total_tokens": 8},
}


def _chat(server: FakeServer, **kwargs: object) -> object:
    return server.chat(**{"server_profile": "generic", "max_retries": 0, **kwargs})


# ------------------------------------------------------------------ completions


async def test_completion_whole_and_several_prompts(server: FakeServer) -> None:
    for _ in range(3):
        server.json(COMPLETION)
    llm = server.llm(server_profile="generic", max_retries=0)
    async with gateway({"text": llm}) as client:
        one = await client.post(
            "/v1/completions", json={"model": "text", "prompt": "The capital is", "max_tokens": 2}
        )
        two = await client.post("/v1/completions", json={"model": "text", "prompt": ["a", "b"]})
    assert one.status_code == 200, one.text
    body = one.json()
    assert body["object"] == "text_completion"
    assert body["choices"] == [
        {"index": 0, "text": " Paris.", "logprobs": None, "finish_reason": "length"}
    ]
    assert body["usage"] == {"prompt_tokens": 6, "completion_tokens": 2, "total_tokens": 8}
    assert server.bodies[0]["prompt"] == "The capital is"
    assert server.bodies[0]["max_tokens"] == 2
    assert [c["index"] for c in two.json()["choices"]] == [0, 1]
    assert two.json()["usage"]["total_tokens"] == 16


async def test_completion_stream_carries_finish_reason_and_usage(server: FakeServer) -> None:
    usage = {
        "id": "cmpl-1",
        "object": "text_completion",
        "choices": [],
        "usage": {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6},
    }
    server.stream(sse(*completion_chunks([" Par", "is"], finish="length"), usage))
    llm = server.llm(server_profile="generic", max_retries=0)
    async with gateway({"text": llm}) as client:
        response = await client.post(
            "/v1/completions",
            json={
                "model": "text",
                "prompt": "The capital is",
                "stream": True,
                "stream_options": {"include_usage": True},
            },
        )
    got = events(response)
    assert got[-1] == "[DONE]"
    assert "".join(c["text"] for e in got[:-2] for c in e["choices"]) == " Paris"
    assert got[-3]["choices"][0]["finish_reason"] == "length"
    assert got[-2]["usage"]["prompt_tokens"] == 4
    assert all(e["object"] == "text_completion" for e in got[:-1])


# ------------------------------------------------------------------ embeddings


async def test_embeddings_float_and_base64() -> None:
    server = emb.EmbedServer()
    model = server.model(pricing={"input": 1.0, "output": 0.0})
    async with gateway({"emb": model}) as client:
        floats = await client.post("/v1/embeddings", json={"model": "emb", "input": ["ab", "c"]})
        packed = await client.post(
            "/v1/embeddings",
            json={"model": "emb", "input": "ab", "encoding_format": "base64"},
        )
    body = floats.json()
    assert [d["embedding"] for d in body["data"]] == [emb.vector_of("ab"), emb.vector_of("c")]
    assert [d["index"] for d in body["data"]] == [0, 1]
    assert body["usage"]["prompt_tokens"] == 4
    assert body["usage"]["total_tokens"] == 4
    assert body["usage"]["cost"] == pytest.approx(4 / 1e6)
    raw = base64.b64decode(packed.json()["data"][0]["embedding"])
    assert list(struct.unpack(f"<{len(raw) // 4}f", raw)) == emb.vector_of("ab")


async def test_embeddings_refuse_other_widths_and_unknown_fields() -> None:
    model = emb.EmbedServer().model()
    async with gateway({"emb": model}) as client:
        width = await client.post(
            "/v1/embeddings", json={"model": "emb", "input": "a", "dimensions": 8}
        )
        extra = await client.post(
            "/v1/embeddings", json={"model": "emb", "input": "a", "truncate": True}
        )
    assert width.status_code == 400
    assert width.json()["error"]["param"] == "dimensions"
    assert extra.status_code == 400
    assert "truncate" in extra.json()["error"]["message"]


# ------------------------------------------------------------------ client keys


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"authorization": "Bearer wrong-key"}, 401),
        ({"authorization": f"Basic {CLIENT_KEY}"}, 401),
        ({"authorization": f"Bearer {CLIENT_KEY}"}, 200),
        ({"x-api-key": CLIENT_KEY}, 200),
    ],
)
async def test_client_keys(server: FakeServer, headers: dict[str, str], status: int) -> None:
    if status == 200:
        server.json(chat_body())
    keys = ClientKeys(["another-key-abcdef", CLIENT_KEY])
    async with gateway({"m": _chat(server)}, client_keys=keys) as client:
        response = await client.post(
            "/v1/chat/completions", json={"model": "m", "messages": USER}, headers=headers
        )
        health = await client.get("/health")
    assert response.status_code == status
    assert health.status_code == 200
    if status == 401:
        assert response.json()["error"]["code"] == "invalid_api_key"
        assert CLIENT_KEY not in response.text
        assert not server.requests


async def test_metrics_and_models_need_the_key_too(server: FakeServer) -> None:
    async with gateway({"m": _chat(server)}, client_keys=ClientKeys([CLIENT_KEY])) as client:
        assert (await client.get("/metrics")).status_code == 401
        assert (await client.get("/v1/models")).status_code == 401


def test_client_keys_load_from_env_and_file(tmp_path: pytest.TempPathFactory) -> None:
    path = tmp_path / "keys.txt"  # type: ignore[operator]
    path.write_text("# team keys\nkey-from-file-1\n\nkey-from-file-2\n")
    keys = ClientKeys.load(["GW_KEYS"], [path], environ={"GW_KEYS": "key-a, key-b"})
    assert len(keys) == 4
    assert keys.accepts(b"key-b")
    assert keys.accepts(b"key-from-file-2")
    assert not keys.accepts(b"key-c")
    assert not keys.accepts(None)
    assert "key" not in repr(keys).replace("keys", "")
    with pytest.raises(ConfigurationError, match="GW_MISSING"):
        ClientKeys.load(["GW_MISSING"], environ={})
    with pytest.raises(ConfigurationError, match="cannot read"):
        ClientKeys.load(files=[tmp_path / "nope"], environ={})  # type: ignore[operator]


def test_no_keys_accepts_anything() -> None:
    assert ClientKeys().accepts(None)
    assert not ClientKeys()


# ------------------------------------------------------------------ caps, CORS


async def test_body_over_the_cap_is_413_by_length_and_when_chunked(server: FakeServer) -> None:
    big = b'{"model": "m", "messages": [{"role": "user", "content": "' + b"x" * 300 + b'"}]}'

    async def chunked() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 64):
            yield big[start : start + 64]

    async with gateway({"m": _chat(server)}, max_body_bytes=200) as client:
        sized = await client.post("/v1/chat/completions", content=big)
        streamed = await client.post("/v1/chat/completions", content=chunked())
    for response in (sized, streamed):
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "request_too_large"
    assert not server.requests


async def test_cors_is_off_by_default_and_explicit_when_on(server: FakeServer) -> None:
    preflight = {
        "origin": "https://app.example.com",
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization,content-type",
    }
    async with gateway({"m": _chat(server)}) as client:
        off = await client.options("/v1/chat/completions", headers=preflight)
    origins = ("https://app.example.com",)
    keys = ClientKeys([CLIENT_KEY])
    async with gateway({"m": _chat(server)}, cors_origins=origins, client_keys=keys) as client:
        on = await client.options("/v1/chat/completions", headers=preflight)
        other = await client.options(
            "/v1/chat/completions", headers={**preflight, "origin": "https://evil.example"}
        )
    assert "access-control-allow-origin" not in off.headers
    assert on.status_code == 200
    assert on.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "access-control-allow-origin" not in other.headers


def test_options_refuse_a_wildcard_origin_and_bad_caps() -> None:
    with pytest.raises(ConfigurationError, match="name each origin"):
        GatewayOptions(cors_origins=("*",))
    with pytest.raises(ConfigurationError, match="max_tokens"):
        GatewayOptions(max_tokens=0)


# ------------------------------------------------------------------ formats without passthrough


async def test_custom_format_refuses_vendor_parameters(server: FakeServer) -> None:
    fmt = {
        "kind": "custom",
        "chat_path": "/predict",
        "request": {"inputs": "{prompt}"},
        "response": {"text": "out"},
    }
    model = server.chat(wire_format=fmt, max_retries=0)
    server.json({"out": "Paris"})
    async with gateway({"inhouse": model}) as client:
        refused = await client.post(
            "/v1/chat/completions",
            json={"model": "inhouse", "messages": USER, "presence_penalty": 1},
        )
        fine = await client.post(
            "/v1/chat/completions", json={"model": "inhouse", "messages": USER, "user": "u"}
        )
    assert refused.status_code == 400
    assert "presence_penalty" in refused.json()["error"]["message"]
    assert fine.json()["choices"][0]["message"]["content"] == "Paris"
    assert "user" not in server.bodies[0]


# ------------------------------------------------------------------ request_headers


async def test_request_headers_nest_and_refuse_credentials(server: FakeServer) -> None:
    server.json(chat_body())
    model = _chat(server)
    outer = request_headers({"x-request-id": "outer", "x-trace": "t"})
    with outer, request_headers({"x-request-id": "inner"}):
        await model.ainvoke("hi")
    sent = server.requests[0].headers
    assert sent["x-request-id"] == "inner"
    assert sent["x-trace"] == "t"
    with (
        pytest.raises(ConfigurationError, match="credential"),
        request_headers({"x-api-key": "secret-value"}),
    ):
        pass
    with (
        pytest.raises(ConfigurationError, match="cannot carry"),
        request_headers({"x-request-id": "line\nbreak"}),
    ):
        pass


def test_request_headers_reach_embeddings_too() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=emb.openai_answer(["a"]))

    model = CustomLLMEmbeddings(
        model="embedder",
        base_url=emb.URL,
        http_client=httpx.Client(transport=httpx.MockTransport(answer)),
    )
    with request_headers({"x-request-id": "emb-1"}):
        model.embed_documents(["a"])
    assert seen[0].headers["x-request-id"] == "emb-1"


async def test_models_of_a_kind_without_an_endpoint_are_left_out_by_name(
    server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING", logger="langchain_customllm.serve"):
        async with gateway({"m": _chat(server), "odd": object()}) as client:
            listed = (await client.get("/v1/models")).json()
    assert [m["id"] for m in listed["data"]] == ["m"]
    assert "odd (object)" in caplog.text
