"""The cost reaches LangSmith: the real `langsmith` client, a loopback collector, a real model.

``LANGSMITH_TRACING=true`` with ``LANGSMITH_ENDPOINT`` at the collector in
`tests.servers.langsmith_collector`; a prompt chain runs against the llama.cpp server (invoke), and
streams through the Ollama emulator (real text from the same server, and token counts in the
stream, which llama.cpp's own OpenAI stream does not send). After a flush, the LLM run the
SDK posted must carry ``ls_provider``, ``ls_model_name``, token counts and the costs, and our
API key must appear in no request the collector saw.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.prompts import ChatPromptTemplate, PromptTemplate
from langchain_core.tracers.langchain import wait_for_all_tracers
from langsmith import run_trees
from langsmith import utils as ls_utils

from langchain_customllm import ChatCustomLLM, CustomLLM, Pricing, cost_for
from langchain_customllm.formats import TokenUsage
from tests.integration_tests.conftest import MODEL
from tests.servers import langsmith_collector as collector_server
from tests.servers import ollama
from tests.servers.base import Backend, LoopbackServer

SECRET = "sk-test-SECRET-123"
LS_KEY = "lsv2-collector-not-a-real-key"
# Illustrative prices, large enough that the costs of a few tokens are far from zero.
PRICING = Pricing(input=100.0, output=200.0, per_request=0.5)
_ENV = {
    "LANGSMITH_TRACING": "true",
    "LANGSMITH_API_KEY": LS_KEY,
    "LANGSMITH_PROJECT": "customllm-cost-test",
    "LANGSMITH_DISABLE_RUN_COMPRESSION": "true",
}
_CLEARED = (
    "LANGCHAIN_TRACING_V2",
    "LANGCHAIN_ENDPOINT",
    "LANGCHAIN_API_KEY",
    "LANGSMITH_RUNS_ENDPOINTS",
)


def _reset_langsmith() -> None:
    # The SDK caches its environment reads and one global client: start from scratch.
    if run_trees._CLIENT is not None:
        run_trees._CLIENT.flush()
        run_trees._CLIENT = None
    ls_utils.get_env_var.cache_clear()
    ls_utils.get_tracer_project.cache_clear()


@pytest.fixture
def collector() -> Iterator[LoopbackServer]:
    saved = {name: os.environ.get(name) for name in [*_ENV, "LANGSMITH_ENDPOINT", *_CLEARED]}
    with collector_server.serve() as server:
        try:
            for name in _CLEARED:
                os.environ.pop(name, None)
            os.environ.update({**_ENV, "LANGSMITH_ENDPOINT": server.url})
            _reset_langsmith()
            yield server
        finally:
            wait_for_all_tracers()
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            _reset_langsmith()


def _flush() -> None:
    wait_for_all_tracers()
    assert run_trees._CLIENT is not None, "nothing was traced"
    run_trees._CLIENT.flush()


def _llm_runs(server: LoopbackServer) -> list[dict[str, Any]]:
    runs = collector_server.runs(server.requests).values()
    return [run for run in runs if run.get("run_type") == "llm"]


def _only(items: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(items) == 1, items
    return items[0]


def _assert_no_secret(server: LoopbackServer) -> None:
    assert server.requests, "the collector saw nothing"
    for request in server.requests:
        seen = request["raw"] + json.dumps(request["headers"]).encode() + request["path"].encode()
        assert SECRET.encode() not in seen, request["path"]


def _usage_of(run: dict[str, Any]) -> dict[str, Any]:
    message = run["outputs"]["generations"][0][0]["message"]
    usage: dict[str, Any] = message["kwargs"]["usage_metadata"]
    return usage


def _assert_costed(run: dict[str, Any]) -> None:
    metadata = run["extra"]["metadata"]
    assert metadata["ls_provider"] == "customllm"
    assert metadata["ls_model_name"] == MODEL
    usage = _usage_of(run)
    assert usage["input_tokens"] > 5
    assert usage["output_tokens"] > 0
    expected = cost_for(
        TokenUsage(usage["input_tokens"], usage["output_tokens"], usage["total_tokens"]), PRICING
    )
    assert usage["input_cost"] == pytest.approx(expected.input_cost)
    assert usage["output_cost"] == pytest.approx(expected.output_cost)
    assert usage["total_cost"] == pytest.approx(expected.total_cost)
    # The tracer also copies the run's usage into extra.metadata, where LangSmith reads it.
    assert metadata["usage_metadata"]["total_cost"] == pytest.approx(expected.total_cost)


def _chain(llm: ChatCustomLLM) -> Any:
    prompt = ChatPromptTemplate.from_messages([("system", "Be brief."), ("human", "{q}")])
    return prompt | llm


def test_invoke_run_carries_provider_tokens_and_cost(
    collector: LoopbackServer, base_url: str
) -> None:
    llm = ChatCustomLLM(
        model=MODEL, base_url=base_url, api_key=SECRET, max_tokens=16, pricing=PRICING
    )
    answer = _chain(llm).invoke({"q": "What is the capital of France?"})
    _flush()

    run = _only(_llm_runs(collector))
    _assert_costed(run)
    assert _usage_of(run)["total_cost"] == pytest.approx(answer.usage_metadata["total_cost"])
    _assert_no_secret(collector)


def test_stream_run_carries_provider_tokens_and_cost(
    collector: LoopbackServer, base_url: str
) -> None:
    with ollama.serve(Backend(base_url)) as emulator:
        llm = ChatCustomLLM(
            model=MODEL,
            base_url=emulator.url,
            wire_format="ollama",
            api_key=SECRET,
            max_tokens=16,
            pricing=PRICING,
        )
        chunks = list(_chain(llm).stream({"q": "What is the capital of France?"}))
    _flush()

    assert len(chunks) > 2
    assert sum(1 for c in chunks if c.usage_metadata) == 1
    run = _only(_llm_runs(collector))
    _assert_costed(run)
    _assert_no_secret(collector)


@pytest.mark.parametrize("missing_usage", ["tokenize", "none"])
def test_stream_without_usage_is_counted_or_has_no_cost_not_zero(
    collector: LoopbackServer, base_url: str, missing_usage: str
) -> None:
    # A stream without usage (llama-server sends it only when asked; stream_usage=False does
    # not ask): by default counted with the server's tokenizer and priced; with
    # missing_usage="none" there are no tokens, so no cost is invented.
    llm = ChatCustomLLM(
        model=MODEL,
        base_url=base_url,
        api_key=SECRET,
        max_tokens=8,
        pricing=PRICING,
        stream_usage=False,
        missing_usage=missing_usage,
    )
    chunks = list(_chain(llm).stream({"q": "Say hi."}))
    _flush()

    assert chunks
    run = _only(_llm_runs(collector))
    assert run["extra"]["metadata"]["ls_model_name"] == MODEL
    message = run["outputs"]["generations"][0][0]["message"]["kwargs"]
    usage = message.get("usage_metadata") or {}
    if missing_usage == "none":
        assert "cost" not in message["response_metadata"]
        assert "total_cost" not in usage
    else:
        assert message["response_metadata"]["usage_source"] == "tokenized"
        assert usage["output_tokens"] > 0
        assert usage["total_cost"] > 0
    _assert_no_secret(collector)


def test_text_llm_run_carries_cost(collector: LoopbackServer, base_url: str) -> None:
    llm = CustomLLM(model=MODEL, base_url=base_url, api_key=SECRET, max_tokens=8, pricing=PRICING)
    (PromptTemplate.from_template("The capital of {country} is") | llm).invoke(
        {"country": "France"}
    )
    _flush()

    run = _only(_llm_runs(collector))
    assert run["extra"]["metadata"]["ls_provider"] == "customllm"
    assert run["extra"]["metadata"]["ls_model_name"] == MODEL
    generation = run["outputs"]["generations"][0][0]
    usage = generation["generation_info"]["token_usage"]
    assert usage["prompt_tokens"] > 3
    expected = cost_for(
        TokenUsage(usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]),
        PRICING,
    )
    assert generation["generation_info"]["cost"]["total_cost"] == pytest.approx(expected.total_cost)
    assert run["outputs"]["llm_output"]["cost"]["total_cost"] == pytest.approx(expected.total_cost)
    _assert_no_secret(collector)
