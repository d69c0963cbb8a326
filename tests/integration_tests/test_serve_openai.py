"""The official ``openai`` SDK against ``customllm serve`` fronting llama.cpp's llama-server.

Sync, async, streaming (with usage), tools, text completions, embeddings (the SDK's default
base64 encoding), the model list, errors and metrics: the gateway is a real subprocess (the
real CLI), the backend the session's llama-server serving SmolLM2-135M.
"""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from langchain_customllm import CustomLLMEmbeddings
from tests.integration_tests._serve_fixtures import GATEWAY_KEY

pytestmark = pytest.mark.integration

QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


@pytest.fixture
def client(gateway_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway_url, api_key=GATEWAY_KEY, max_retries=0)


@pytest.fixture
def aclient(gateway_url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gateway_url, api_key=GATEWAY_KEY, max_retries=0)


def test_sync_chat_with_request_id_and_cost(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="smollm2-priced",
        messages=QUESTION,
        max_tokens=8,
        temperature=0,
        extra_headers={"x-request-id": "sdk-test-1"},
    )
    assert raw.headers["x-request-id"] == "sdk-test-1"
    answer = raw.parse()
    assert answer.model == "smollm2-priced"
    assert answer.choices[0].message.content
    assert answer.choices[0].finish_reason in ("stop", "length")
    assert answer.usage is not None
    assert answer.usage.prompt_tokens > 0
    assert answer.usage.completion_tokens > 0
    cost = (answer.usage.model_extra or {})["cost"]
    expected = (answer.usage.prompt_tokens * 0.15 + answer.usage.completion_tokens * 0.6) / 1e6
    assert cost == pytest.approx(expected)
    assert float(raw.headers["x-customllm-cost"]) == pytest.approx(cost)


async def test_async_chat(aclient: openai.AsyncOpenAI) -> None:
    answer = await aclient.chat.completions.create(
        model="smollm2", messages=QUESTION, max_tokens=8, temperature=0
    )
    assert answer.choices[0].message.content
    assert answer.object == "chat.completion"


def test_stream_with_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="smollm2",
        messages=QUESTION,
        max_tokens=8,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finish = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert text.strip()
    assert finish in (["stop"], ["length"])
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0


async def test_async_stream(aclient: openai.AsyncOpenAI) -> None:
    stream = await aclient.chat.completions.create(
        model="smollm2", messages=QUESTION, max_tokens=8, temperature=0, stream=True
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text.strip()


def test_forced_tool_call(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(
        model="smollm2",
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        max_tokens=60,
        temperature=0,
    )
    [call] = answer.choices[0].message.tool_calls or []
    assert call.function.name == "get_weather"
    assert isinstance(json.loads(call.function.arguments), dict)
    assert call.id


def test_streamed_tool_call(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="smollm2",
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[WEATHER],
        tool_choice="required",
        max_tokens=60,
        temperature=0,
        stream=True,
    )
    calls = [
        call
        for chunk in stream
        if chunk.choices
        for call in chunk.choices[0].delta.tool_calls or []
    ]
    assert calls[0].function is not None
    assert calls[0].function.name == "get_weather"
    arguments = "".join(c.function.arguments or "" for c in calls if c.function)
    assert isinstance(json.loads(arguments), dict)


def test_tool_result_round_trip(client: openai.OpenAI) -> None:
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }
    answer = client.chat.completions.create(
        model="smollm2",
        messages=[
            {"role": "user", "content": "What is the weather in Paris?"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_1", "content": "Sunny, 24 C"},
        ],
        tools=[WEATHER],
        max_tokens=16,
        temperature=0,
    )
    assert answer.choices[0].message.content or answer.choices[0].message.tool_calls


def test_text_completion(client: openai.OpenAI) -> None:
    answer = client.completions.create(
        model="smollm2-text", prompt="The capital of France is", max_tokens=6, temperature=0
    )
    assert answer.object == "text_completion"
    assert answer.choices[0].text
    assert answer.usage is not None
    assert answer.usage.completion_tokens > 0
    stream = client.completions.create(
        model="smollm2-text", prompt="One, two,", max_tokens=6, temperature=0, stream=True
    )
    assert "".join(c.choices[0].text for c in stream if c.choices).strip()


def test_embeddings_match_the_model_called_directly(
    client: openai.OpenAI, embeddings_base_url: str
) -> None:
    texts = ["The cat sat on the mat.", "Paris is in France."]
    answer = client.embeddings.create(model="smollm2-embed", input=texts)  # base64 on the wire
    floats = client.embeddings.create(
        model="smollm2-embed", input=texts[0], encoding_format="float"
    )
    direct = CustomLLMEmbeddings(model="smollm2", base_url=embeddings_base_url).embed_documents(
        texts
    )
    got = [item.embedding for item in answer.data]
    assert [len(v) for v in got] == [len(v) for v in direct]
    for mine, theirs in zip(got, direct, strict=True):
        assert mine == pytest.approx(theirs, rel=1e-4, abs=1e-5)
    assert floats.data[0].embedding == pytest.approx(got[0], rel=1e-5, abs=1e-6)
    assert answer.usage.prompt_tokens > 0


def test_models_list(client: openai.OpenAI) -> None:
    names = {model.id for model in client.models.list()}
    assert {"smollm2", "smollm2-text", "smollm2-embed"} <= names


def test_errors_are_the_sdks_typed_errors(client: openai.OpenAI, gateway_url: str) -> None:
    wrong = openai.OpenAI(base_url=gateway_url, api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong.chat.completions.create(model="smollm2", messages=QUESTION)
    with pytest.raises(openai.NotFoundError, match="smollm2"):
        client.chat.completions.create(model="gpt-nope", messages=QUESTION)
    with pytest.raises(openai.BadRequestError, match="max_tokens"):
        client.chat.completions.create(model="smollm2", messages=QUESTION, max_tokens=100_000)
    with pytest.raises(openai.BadRequestError, match="role"):
        client.chat.completions.create(
            model="smollm2",
            messages=[{"role": "wizard", "content": "hi"}],  # type: ignore[list-item,misc]
        )


def test_metrics_count_the_calls(client: openai.OpenAI, gateway_url: str) -> None:
    client.chat.completions.create(model="smollm2", messages=QUESTION, max_tokens=4)
    root = gateway_url[: -len("/v1")]
    text = httpx.get(
        f"{root}/metrics", headers={"authorization": f"Bearer {GATEWAY_KEY}"}, trust_env=False
    ).text
    assert (
        'customllm_requests_total{model="smollm2",route="/v1/chat/completions",status="200"}'
        in text
    )
    assert 'customllm_tokens_total{model="smollm2",kind="completion"}' in text
