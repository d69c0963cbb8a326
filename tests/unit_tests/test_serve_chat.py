"""The gateway's chat endpoint: OpenAI requests in, the model's answers out (whole and SSE)."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.unit_tests._serve_helpers import USER, deltas, events, gateway
from tests.unit_tests.fakes import FakeServer, chat_body, chat_chunks, sse

USAGE = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}


def _chat(server: FakeServer, **kwargs: object) -> object:
    return server.chat(**{"server_profile": "generic", "max_retries": 0, **kwargs})


async def test_whole_answer_request_id_usage_and_model_name(server: FakeServer) -> None:
    server.json(chat_body("Paris."))
    async with gateway({"local": _chat(server)}) as client:
        response = await client.post(
            "/v1/chat/completions",
            json={"model": "local", "messages": USER, "temperature": 0, "seed": 3},
            headers={"x-request-id": "req-42"},
        )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "req-42"
    assert server.requests[0].headers["x-request-id"] == "req-42"
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["model"] == "local"
    assert body["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Paris."},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    assert body["usage"] == {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}
    sent = server.bodies[0]
    assert sent["model"] == "smollm2"  # the entry's own model name goes to the backend
    assert sent["temperature"] == 0
    assert sent["seed"] == 3
    assert sent["messages"] == USER
    assert "x-customllm-cost" not in response.headers


async def test_a_request_without_an_id_gets_one_both_ways(server: FakeServer) -> None:
    server.json(chat_body())
    async with gateway({"m": _chat(server)}) as client:
        response = await client.post(
            "/v1/chat/completions",
            json={"model": "m", "messages": USER},
            headers={"x-request-id": "bad id\twith spaces"},
        )
    made = response.headers["x-request-id"]
    assert len(made) == 32
    assert server.requests[0].headers["x-request-id"] == made


async def test_priced_model_reports_cost_in_usage_and_header(server: FakeServer) -> None:
    server.json(chat_body(usage={"prompt_tokens": 1000, "completion_tokens": 500}))
    model = _chat(server, pricing={"input": 1.0, "output": 2.0})
    async with gateway({"m": model}) as client:
        response = await client.post("/v1/chat/completions", json={"model": "m", "messages": USER})
    cost = response.json()["usage"]["cost"]
    assert cost == pytest.approx(1000 / 1e6 * 1.0 + 500 / 1e6 * 2.0)
    assert float(response.headers["x-customllm-cost"]) == pytest.approx(cost)


async def test_stream_with_usage_ends_with_usage_then_done(server: FakeServer) -> None:
    server.stream(sse(*chat_chunks(["Pa", "ris"], usage=USAGE)))
    model = _chat(server, pricing={"input": 1.0, "output": 1.0})
    async with gateway({"m": model}) as client:
        response = await client.post(
            "/v1/chat/completions",
            json={
                "model": "m",
                "messages": USER,
                "stream": True,
                "stream_options": {"include_usage": True},
            },
        )
    assert response.headers["content-type"].startswith("text/event-stream")
    got = events(response)
    assert got[-1] == "[DONE]"
    assert got[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(d.get("content", "") for d in deltas(response))
    assert text == "Paris"
    finish = [c for e in got[:-1] for c in e["choices"] if c["finish_reason"]]
    assert [c["finish_reason"] for c in finish] == ["stop"]
    usage_event = got[-2]
    assert usage_event["choices"] == []
    assert usage_event["usage"]["prompt_tokens"] == 5
    assert usage_event["usage"]["completion_tokens"] == 2
    assert usage_event["usage"]["cost"] == pytest.approx(7 / 1e6)
    assert len({e["id"] for e in got[:-1]}) == 1


async def test_stream_without_include_usage_has_no_usage_chunk(server: FakeServer) -> None:
    server.stream(sse(*chat_chunks(["ok"], usage=USAGE)))
    async with gateway({"m": _chat(server)}) as client:
        response = await client.post(
            "/v1/chat/completions", json={"model": "m", "messages": USER, "stream": True}
        )
    got = events(response)
    assert got[-1] == "[DONE]"
    assert all("usage" not in e for e in got[:-1])


TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}


async def test_tools_and_tool_choice_reach_the_backend_and_calls_come_back(
    server: FakeServer,
) -> None:
    call = {**CALL, "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    server.json(chat_body(None, finish="tool_calls", tool_calls=[call]))
    choice = {"type": "function", "function": {"name": "get_weather"}}
    async with gateway({"m": _chat(server)}) as client:
        response = await client.post(
            "/v1/chat/completions",
            json={"model": "m", "messages": USER, "tools": [TOOL], "tool_choice": choice},
        )
    sent = server.bodies[0]
    assert sent["tools"][0]["function"]["name"] == "get_weather"
    assert sent["tool_choice"] == choice
    message = response.json()["choices"][0]["message"]
    assert response.json()["choices"][0]["finish_reason"] == "tool_calls"
    assert message["content"] is None
    [got] = message["tool_calls"]
    assert got["id"] == "call_1"
    assert got["function"]["name"] == "get_weather"
    assert json.loads(got["function"]["arguments"]) == {"city": "Paris"}


async def test_streamed_tool_call_deltas_name_the_call_once_with_its_index(
    server: FakeServer,
) -> None:
    base = {"id": "c", "object": "chat.completion.chunk", "model": "smollm2"}

    def delta(piece: dict[str, object], finish: str | None = None) -> dict[str, object]:
        return {**base, "choices": [{"index": 0, "delta": piece, "finish_reason": finish}]}

    first = {"index": 0, **CALL}
    server.stream(
        sse(
            delta({"tool_calls": [first]}),
            delta({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}),
            delta({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
            delta({}, "tool_calls"),
        )
    )
    async with gateway({"m": _chat(server)}) as client:
        response = await client.post(
            "/v1/chat/completions",
            json={"model": "m", "messages": USER, "tools": [TOOL], "stream": True},
        )
    calls = [c for d in deltas(response) for c in d.get("tool_calls", [])]
    assert calls[0]["id"] == "call_1"
    assert calls[0]["function"]["name"] == "get_weather"
    assert all(c["index"] == 0 for c in calls)
    assert all("id" not in c for c in calls[1:])
    assert "".join(c["function"]["arguments"] for c in calls) == '{"city": "Paris"}'
    finish = [c["finish_reason"] for e in events(response)[:-1] for c in e["choices"]]
    assert finish[-1] == "tool_calls"


async def test_history_with_tool_calls_tool_results_and_images_is_sent_on(
    server: FakeServer,
) -> None:
    server.json(chat_body("Sunny."))
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    call = {**CALL, "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Weather?"}, image]},
        {"role": "assistant", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    async with gateway({"m": _chat(server)}) as client:
        response = await client.post(
            "/v1/chat/completions", json={"model": "m", "messages": messages, "tools": [TOOL]}
        )
    assert response.status_code == 200, response.text
    sent = server.bodies[0]["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool"]
    assert sent[1]["content"][1]["image_url"]["url"].startswith("data:image/png")
    assert sent[2]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert json.loads(sent[2]["tool_calls"][0]["function"]["arguments"]) == {"city": "Paris"}
    assert sent[3] == {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}


async def test_response_format_stop_and_logprobs_reach_the_backend(server: FakeServer) -> None:
    logprobs = {"content": [{"token": "ok", "logprob": -0.1, "top_logprobs": []}]}
    body = chat_body("ok")
    body["choices"][0]["logprobs"] = logprobs
    server.json(body)
    schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
    async with gateway({"m": _chat(server)}) as client:
        response = await client.post(
            "/v1/chat/completions",
            json={
                "model": "m",
                "messages": USER,
                "response_format": schema,
                "stop": "\n",
                "logprobs": True,
                "top_logprobs": 2,
            },
        )
    sent = server.bodies[0]
    assert sent["response_format"] == schema
    assert sent["stop"] == ["\n"]
    assert sent["logprobs"] is True
    assert sent["top_logprobs"] == 2
    assert response.json()["choices"][0]["logprobs"] == logprobs


async def test_n_choices_are_that_many_calls(server: FakeServer) -> None:
    server.json(chat_body("one"))
    server.json(chat_body("two"))
    async with gateway({"m": _chat(server)}) as client:
        response = await client.post(
            "/v1/chat/completions", json={"model": "m", "messages": USER, "n": 2}
        )
    choices = response.json()["choices"]
    assert sorted(c["message"]["content"] for c in choices) == ["one", "two"]
    assert [c["index"] for c in choices] == [0, 1]
    assert response.json()["usage"]["total_tokens"] == 28
    assert all("n" not in b for b in server.bodies)


async def test_n_streamed_choices_interleave_by_index(server: FakeServer) -> None:
    server.stream(sse(*chat_chunks(["a", "b"])))
    server.stream(sse(*chat_chunks(["c"])))
    async with gateway({"m": _chat(server)}) as client:
        response = await client.post(
            "/v1/chat/completions",
            json={"model": "m", "messages": USER, "n": 2, "stream": True},
        )
    texts: dict[int, str] = {0: "", 1: ""}
    finished = []
    for event in events(response)[:-1]:
        for choice in event["choices"]:
            texts[choice["index"]] += choice["delta"].get("content", "")
            if choice["finish_reason"]:
                finished.append(choice["index"])
    assert sorted(texts.values()) == ["ab", "c"]
    assert sorted(finished) == [0, 1]
    assert events(response)[-1] == "[DONE]"


async def test_vendor_parameters_pass_through_to_openai_backends(server: FakeServer) -> None:
    server.json(chat_body())
    async with gateway({"m": _chat(server)}) as client:
        await client.post(
            "/v1/chat/completions",
            json={"model": "m", "messages": USER, "top_k": 5, "user": "u-1"},
        )
    assert server.bodies[0]["top_k"] == 5
    assert server.bodies[0]["user"] == "u-1"


async def test_max_tokens_cap_is_sent_when_nothing_else_is_and_refuses_more(
    server: FakeServer,
) -> None:
    server.json(chat_body())
    server.json(chat_body())
    async with gateway({"m": _chat(server), "short": _chat(server, max_tokens=8)}) as client:
        await client.post("/v1/chat/completions", json={"model": "m", "messages": USER})
        await client.post("/v1/chat/completions", json={"model": "short", "messages": USER})
        over = await client.post(
            "/v1/chat/completions",
            json={"model": "m", "messages": USER, "max_completion_tokens": 9000},
        )
    assert server.bodies[0]["max_tokens"] == 4096
    assert server.bodies[1]["max_tokens"] == 8  # the entry's own setting is kept
    assert over.status_code == 400
    assert over.json()["error"]["param"] == "max_tokens"
    assert "4096" in over.json()["error"]["message"]
    assert len(server.requests) == 2


async def test_models_health_and_metrics(server: FakeServer) -> None:
    server.json(chat_body(usage={"prompt_tokens": 10, "completion_tokens": 4}))
    model = _chat(server, pricing={"input": 1.0, "output": 1.0})
    async with gateway({"m": model, "other": _chat(server)}) as client:
        listed = (await client.get("/v1/models")).json()
        health = (await client.get("/health")).json()
        await client.post("/v1/chat/completions", json={"model": "m", "messages": USER})
        await client.post("/v1/chat/completions", json={"model": "nope", "messages": USER})
        metrics = (await client.get("/metrics")).text
    assert [m["id"] for m in listed["data"]] == ["m", "other"]
    assert listed["object"] == "list"
    assert health == {"status": "ok", "models": 2}
    lines = set(metrics.splitlines())
    route = 'route="/v1/chat/completions"'
    assert f'customllm_requests_total{{model="m",{route},status="200"}} 1' in lines
    assert f'customllm_requests_total{{model="",{route},status="404"}} 1' in lines
    assert f'customllm_errors_total{{model="",{route},type="invalid_request_error"}} 1' in lines
    assert 'customllm_tokens_total{model="m",kind="prompt"} 10' in lines
    assert 'customllm_tokens_total{model="m",kind="completion"} 4' in lines
    [cost] = [line for line in lines if line.startswith('customllm_cost_usd_total{model="m"}')]
    assert float(cost.split()[-1]) == pytest.approx(14 / 1e6)
    assert f'customllm_request_seconds_count{{model="m",{route}}} 1' in lines
    assert "# TYPE customllm_request_seconds histogram" in lines


@pytest.mark.parametrize("stream", [False, True])
async def test_request_headers_reach_the_backend_on_both_paths(
    server: FakeServer, stream: bool
) -> None:
    if stream:
        server.stream(sse(*chat_chunks(["ok"])))
    else:
        server.json(chat_body())
    async with gateway({"m": _chat(server)}) as client:
        await client.post(
            "/v1/chat/completions",
            json={"model": "m", "messages": USER, "stream": stream},
            headers={"x-request-id": "abc.123"},
        )
    request: httpx.Request = server.requests[0]
    assert request.headers["x-request-id"] == "abc.123"
