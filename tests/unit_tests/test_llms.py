"""CustomLLM (text completion) over a scripted server, on both twins."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

import pytest
from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackHandler

from langchain_customllm import CustomLLM, StreamError
from tests._calls import run_invoke, run_stream
from tests.unit_tests.fakes import FakeServer, completion_chunks, sse


def completion_body(text: str = " Paris.", finish: str = "stop") -> dict[str, Any]:
    return {
        "id": "cmpl-7",
        "object": "text_completion",
        "model": "smollm2",
        "choices": [{"index": 0, "text": text, "finish_reason": finish}],
        "usage": {"prompt_tokens": 6, "completion_tokens": 2, "total_tokens": 8},
    }


def test_completion_request(server: FakeServer, mode: str) -> None:
    server.json(completion_body())
    out = run_invoke(server.llm(max_tokens=5, temperature=0), "The capital of France is", mode)
    assert out == " Paris."
    assert server.requests[0].url.path == "/v1/completions"
    assert server.bodies[0] == {
        "model": "smollm2",
        "prompt": "The capital of France is",
        "max_tokens": 5,
        "temperature": 0,
    }


def test_stream_text_and_final_info(server: FakeServer, mode: str) -> None:
    server.stream(sse(*completion_chunks([" Par", "is", "."])))
    chunks = run_stream(server.llm(), "The capital of France is", mode)
    assert chunks == [" Par", "is", ".", ""]


def test_stop_across_chunks(server: FakeServer, mode: str) -> None:
    server.stream(sse(*completion_chunks(["one\n", "\ntwo"], finish="length")))
    assert "".join(run_stream(server.llm(stop=["\n\n"]), "q", mode)) == "one"


def test_stop_on_whole_answer(server: FakeServer, mode: str) -> None:
    server.json(completion_body("one\n\ntwo", finish="length"))
    assert run_invoke(server.llm(stop=["\n\n"]), "q", mode) == "one"


def test_generate_reports_usage_and_model(server: FakeServer) -> None:
    server.json(completion_body(" a"))
    server.json(completion_body(" b", finish="length"))
    result = server.llm().generate(["p1", "p2"])
    assert [g[0].text for g in result.generations] == [" a", " b"]
    assert result.llm_output == {
        "token_usage": {"prompt_tokens": 12, "completion_tokens": 4, "total_tokens": 16},
        "model_name": "smollm2",
    }
    info = result.generations[1][0].generation_info
    assert info is not None
    assert info["finish_reason"] == "length"
    assert info["token_usage"] == {"prompt_tokens": 6, "completion_tokens": 2, "total_tokens": 8}


async def test_agenerate_reports_usage(server: FakeServer) -> None:
    server.json(completion_body(" a"))
    result = await server.llm().agenerate(["p1"])
    assert result.llm_output is not None
    assert result.llm_output["token_usage"]["total_tokens"] == 8


def test_streaming_flag_generate_merges_chunks(server: FakeServer) -> None:
    server.stream(sse(*completion_chunks([" a", " b"])))
    result = server.llm(streaming=True).generate(["p"])
    assert result.generations[0][0].text == " a b"
    assert result.generations[0][0].generation_info["finish_reason"] == "stop"  # type: ignore[index]


class Order(BaseCallbackHandler):
    def __init__(self, log: list[str]) -> None:
        self.log = log

    def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        self.log.append(f"token:{token}")


class AsyncOrder(AsyncCallbackHandler):
    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def on_llm_new_token(
        self, token: str, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any
    ) -> None:
        self.log.append(f"token:{token}")


def test_token_callback_fires_before_each_yield(server: FakeServer) -> None:
    server.stream(sse(*completion_chunks(["a", "b"])))
    log: list[str] = []
    for chunk in server.llm().stream("q", config={"callbacks": [Order(log)]}):
        log.append(f"yield:{chunk}")
    assert log == ["token:a", "yield:a", "token:b", "yield:b", "token:", "yield:"]


async def test_async_token_callback_fires_before_each_yield(server: FakeServer) -> None:
    server.stream(sse(*completion_chunks(["a", "b"])))
    log: list[str] = []
    async for chunk in server.llm().astream("q", config={"callbacks": [AsyncOrder(log)]}):
        log.append(f"yield:{chunk}")
    assert log == ["token:a", "yield:a", "token:b", "yield:b", "token:", "yield:"]


def test_stream_cut_raises_with_partial_text(server: FakeServer, mode: str) -> None:
    server.stream(sse(*completion_chunks(["Once", " upon"], finish=None), done=False))
    with pytest.raises(StreamError) as info:
        run_stream(server.llm(), "q", mode)
    assert info.value.partial_text == "Once upon"


def test_identity() -> None:
    llm = CustomLLM(model="smollm2", provider="llamacpp", max_tokens=3)
    assert llm._llm_type == "customllm"
    assert llm._get_ls_params(model="x") == {
        "ls_provider": "llamacpp",
        "ls_model_name": "x",
        "ls_model_type": "llm",
        "ls_max_tokens": 3,
    }
    assert llm._identifying_params["model"] == "smollm2"


def test_async_works_across_event_loops(server: FakeServer) -> None:
    server.json(completion_body(" a"))
    server.json(completion_body(" b"))
    llm = server.llm()
    assert asyncio.run(llm.ainvoke("1")) == " a"
    assert asyncio.run(llm.ainvoke("2")) == " b"


def _counting_handler(state: dict[str, int]) -> Any:
    import threading
    import time

    import httpx

    lock = threading.Lock()

    def handler(request: httpx.Request) -> httpx.Response:
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        time.sleep(0.05)  # long enough for the other requests to overlap, if sent together
        with lock:
            state["now"] -= 1
        return httpx.Response(200, json=completion_body(" x"))

    return handler


def test_batch_sends_prompts_side_by_side() -> None:
    import httpx

    state = {"now": 0, "max": 0}
    client = httpx.Client(transport=httpx.MockTransport(_counting_handler(state)))
    llm = CustomLLM(model="m", http_client=client)
    assert llm.batch(["a", "b", "c", "d"]) == [" x"] * 4
    assert state["max"] > 1


async def test_abatch_sends_prompts_concurrently() -> None:
    import httpx

    state = {"now": 0, "max": 0}

    async def handler(request: httpx.Request) -> httpx.Response:
        state["now"] += 1
        state["max"] = max(state["max"], state["now"])
        await asyncio.sleep(0.02)
        state["now"] -= 1
        return httpx.Response(200, json=completion_body(" y"))

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    llm = CustomLLM(model="m", http_async_client=client)
    assert await llm.abatch(["a", "b", "c", "d"]) == [" y"] * 4
    assert state["max"] == 4


# ------------------------------------------------------------------ logprobs, one shape


def _legacy(tokens: list[str], start: int) -> dict[str, Any]:
    offsets = [start + sum(len(t) for t in tokens[:i]) for i in range(len(tokens))]
    return {
        "tokens": tokens,
        "token_logprobs": [-0.5] * len(tokens),
        "top_logprobs": [{t: -0.5} for t in tokens],
        "text_offset": offsets,
    }


def _with_logprobs(chunks: list[dict[str, Any]], per_chunk: list[Any]) -> list[dict[str, Any]]:
    # The closing chunk (finish_reason only) carries none.
    for chunk, logprobs in zip(chunks, per_chunk, strict=False):
        chunk["choices"][0]["logprobs"] = logprobs
    return chunks


def test_streamed_legacy_logprobs_keep_every_token(server: FakeServer) -> None:
    # vLLM streams a few tokens' logprobs per event: all of them are the answer's.
    prompt = "The capital of France is"
    chunks = completion_chunks([" Par", "is", "."])
    server.stream(
        sse(
            *_with_logprobs(
                chunks, [_legacy([" Par"], 24), _legacy(["is"], 28), _legacy(["."], 30)]
            )
        )
    )
    result = server.llm(streaming=True).generate([prompt], logprobs=1)
    info = result.generations[0][0].generation_info or {}
    assert info["logprobs"]["tokens"] == [" Par", "is", "."]
    assert info["logprobs"]["text_offset"] == [24, 28, 30]
    assert info["logprobs"]["top_logprobs"] == [{" Par": -0.5}, {"is": -0.5}, {".": -0.5}]


def test_chat_shaped_completion_logprobs_become_the_legacy_shape(server: FakeServer) -> None:
    # llama.cpp's llama-server answers /v1/completions with the chat shape (measured).
    body = completion_body(" Paris.")
    body["choices"][0]["logprobs"] = {
        "content": [
            {
                "id": 1,
                "token": " Paris",
                "logprob": -0.1,
                "bytes": [32],
                "top_logprobs": [
                    {"token": " Paris", "logprob": -0.1},
                    {"token": " the", "logprob": -2.5},
                ],
            },
            {"id": 2, "token": ".", "logprob": -0.3, "bytes": [46], "top_logprobs": []},
        ]
    }
    server.json(body)
    result = server.llm().generate(["The capital of France is"], logprobs=2)
    info = result.generations[0][0].generation_info or {}
    assert info["logprobs"] == {
        "tokens": [" Paris", "."],
        "token_logprobs": [-0.1, -0.3],
        "top_logprobs": [{" Paris": -0.1, " the": -2.5}, {}],
        "text_offset": [24, 30],
    }


def test_answer_without_logprobs_has_none(server: FakeServer) -> None:
    server.json(completion_body())
    info = server.llm().generate(["p"]).generations[0][0].generation_info or {}
    assert "logprobs" not in info
