"""The gateway's ``/v1/images/generations``: image models served as OpenAI's images API."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from langchain_customllm import Pricing
from tests.unit_tests._image_helpers import KEY, ImageServer, b64_of, openai_answer
from tests.unit_tests._serve_helpers import gateway


async def test_base64_and_urls_with_the_request_fields_sent_on() -> None:
    images = ImageServer()
    async with gateway({"painter": images.model()}) as client:
        whole = await client.post(
            "/v1/images/generations",
            json={"model": "painter", "prompt": "A red kite", "n": 2, "size": "16x16"},
        )
        urls = await client.post(
            "/v1/images/generations",
            json={"model": "painter", "prompt": "A kite", "response_format": "url"},
        )
    assert whole.status_code == 200, whole.text
    data = whole.json()["data"]
    assert [d["b64_json"] for d in data] == [b64_of("A red kite", 0), b64_of("A red kite", 1)]
    assert base64.b64decode(data[0]["b64_json"]).startswith(b"\x89PNG")
    assert images.bodies[0] == {"model": "painter", "prompt": "A red kite", "n": 2, "size": "16x16"}
    assert urls.json()["data"] == [{"url": "https://img.test/0.png"}]
    assert "x-customllm-cost" not in whole.headers


async def test_usage_and_cost_per_image() -> None:
    usage = {"input_tokens": 12, "output_tokens": 200, "total_tokens": 212}
    images = ImageServer(lambda body: httpx.Response(200, json=openai_answer(body, usage=usage)))
    model = images.model(pricing=Pricing(input=0, output=0, per_image=0.04))
    async with gateway({"painter": model}) as client:
        answer = await client.post(
            "/v1/images/generations", json={"model": "painter", "prompt": "A kite", "n": 2}
        )
    body = answer.json()
    assert body["usage"]["input_tokens"] == 12
    assert body["usage"]["cost"] == pytest.approx(0.08)
    assert float(answer.headers["x-customllm-cost"]) == pytest.approx(0.08)
    metrics = (await _metrics(model)).splitlines()
    assert any(
        line.startswith("customllm_requests_total") and 'model="painter"' in line
        for line in metrics
    )


async def _metrics(model: Any) -> str:
    async with gateway({"painter": model}) as client:
        await client.post("/v1/images/generations", json={"model": "painter", "prompt": "x"})
        return (await client.get("/metrics")).text


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"model": "painter", "prompt": ""}, 400, "prompt"),
        ({"model": "painter", "prompt": "x", "n": 0}, 400, "n"),
        ({"model": "painter", "prompt": "x", "response_format": "png"}, 400, "response_format"),
        ({"model": "painter", "prompt": "x", "stream": True}, 400, "not served"),
        ({"model": "nobody", "prompt": "x"}, 404, "painter"),
    ],
)
async def test_bad_requests_are_refused_before_the_backend(
    body: dict[str, Any], status: int, says: str
) -> None:
    images = ImageServer()
    async with gateway({"painter": images.model()}) as client:
        answer = await client.post("/v1/images/generations", json=body)
    assert answer.status_code == status, answer.text
    assert says in answer.json()["error"]["message"]
    assert images.bodies == []


async def test_a_chat_model_is_not_an_image_model_and_back() -> None:
    images = ImageServer()
    async with gateway({"painter": images.model()}) as client:
        chat = await client.post(
            "/v1/chat/completions",
            json={"model": "painter", "messages": [{"role": "user", "content": "hi"}]},
        )
    assert chat.status_code == 400
    assert "/v1/images/generations" in chat.json()["error"]["message"]


async def test_a_backend_refusal_is_a_bad_gateway_without_the_key() -> None:
    def refuse(body: dict[str, Any]) -> httpx.Response:
        return httpx.Response(401, json={"error": {"message": f"bad key {KEY}"}})

    images = ImageServer(refuse)
    async with gateway({"painter": images.model(max_retries=0)}) as client:
        answer = await client.post(
            "/v1/images/generations", json={"model": "painter", "prompt": "x"}
        )
    # The backend refused the gateway's own key: the gateway's configuration is at fault.
    assert answer.status_code == 502
    assert answer.json()["error"]["code"] == "backend_configuration"
    assert KEY not in answer.text


async def test_an_answer_with_too_few_images_is_a_bad_gateway() -> None:
    def one(body: dict[str, Any]) -> httpx.Response:
        return httpx.Response(200, json=openai_answer({**body, "n": 1}))

    images = ImageServer(one)
    async with gateway({"painter": images.model()}) as client:
        answer = await client.post(
            "/v1/images/generations", json={"model": "painter", "prompt": "x", "n": 2}
        )
    assert answer.status_code == 502, answer.text
