"""Each answer's cost, on every path: invoke, stream, events, chains, both models, both twins.

Costs are floats; langchain-core cannot add floats when it merges usage (langchain #36015),
and core 1.8 merges the streamed messages of every chain n-ary. So a streamed chunk's
``usage_metadata`` holds token counts and its cost is in ``response_metadata["cost"]``;
what core merges for the run's end (``on_llm_end``, ``generate_from_stream``) gets the cost
in ``usage_metadata`` as ``invoke`` does. Every path that merges chunks (core's own
``stream``, ``generate_from_stream``, chains, ``astream_events``) is run here.
"""

from __future__ import annotations

import asyncio
import logging
import pathlib
from typing import Any

import pytest
from langchain_core.caches import InMemoryCache
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.load import dumpd
from langchain_core.messages import AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk, LLMResult
from langchain_core.outputs.chat_generation import merge_chat_generation_chunks
from langchain_core.prompts import ChatPromptTemplate, PromptTemplate

from langchain_customllm import ChatCustomLLM, CustomLLM, Pricing, PricingTable
from langchain_customllm import pricing as pricing_module
from langchain_customllm._chunks import UsageSafeChunk
from tests._calls import merge, run_invoke, run_stream
from tests.unit_tests.fakes import (
    FakeServer,
    chat_body,
    chat_chunks,
    completion_chunks,
    sse,
)

PRICE = Pricing(input=1.0, output=2.0, per_request=0.5)
USAGE = {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500}
# 1000 input tokens at $1/M, 500 output tokens at $2/M, plus $0.5 per request.
COST = {"input_cost": 0.001, "output_cost": 0.001, "request_cost": 0.5, "total_cost": 0.502}
TOKENS = {"input_tokens": 1000, "output_tokens": 500, "total_tokens": 1500}
USAGE_WITH_COST = {**TOKENS, "input_cost": 0.001, "output_cost": 0.001, "total_cost": 0.502}


@pytest.fixture(autouse=True)
def fresh_explanations(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pricing_module, "_explained", set())


class Ends(BaseCallbackHandler):
    """Keeps what ``on_llm_end`` received: core builds it by merging the chunks."""

    def __init__(self) -> None:
        self.results: list[LLMResult] = []

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        self.results.append(response)


def chat_stream(server: FakeServer, usage: dict[str, Any] | None = USAGE) -> None:
    server.stream(sse(*chat_chunks(["The ", "capital ", "is ", "Paris."], usage=usage)))


def text_stream(server: FakeServer) -> None:
    final = {"id": "cmpl-1", "object": "text_completion", "model": "smollm2", "choices": []}
    server.stream(sse(*completion_chunks([" Par", "is", "."]), {**final, "usage": USAGE}))


def completion_body(text: str = " Paris.") -> dict[str, Any]:
    return {
        "id": "cmpl-7",
        "object": "text_completion",
        "model": "smollm2",
        "choices": [{"index": 0, "text": text, "finish_reason": "stop"}],
        "usage": USAGE,
    }


# ---------------------------------------------------------------- chat: invoke


def test_invoke_usage_and_response_metadata(server: FakeServer, mode: str) -> None:
    server.json(chat_body(usage=USAGE))
    result = run_invoke(server.chat(pricing=PRICE), "q", mode)
    assert result.usage_metadata == pytest.approx(USAGE_WITH_COST)
    assert all(isinstance(result.usage_metadata[k], float) for k in COST if k != "request_cost")
    assert result.response_metadata["cost"] == pytest.approx(COST)


def test_invoke_cached_and_reasoning_at_their_prices(server: FakeServer, mode: str) -> None:
    usage = {
        **USAGE,
        "prompt_tokens_details": {"cached_tokens": 600},
        "completion_tokens_details": {"reasoning_tokens": 100},
    }
    server.json(chat_body(usage=usage))
    price = Pricing(input=1.0, output=2.0, cached_input=0.1, reasoning=4.0)
    result = run_invoke(server.chat(pricing=price), "q", mode)
    assert result.usage_metadata["input_cost"] == pytest.approx((400 * 1.0 + 600 * 0.1) / 1e6)
    assert result.usage_metadata["output_cost"] == pytest.approx((400 * 2.0 + 100 * 4.0) / 1e6)
    assert result.response_metadata["token_usage"]["prompt_tokens_details"] == {
        "cached_tokens": 600
    }


def test_no_pricing_no_cost_fields(server: FakeServer) -> None:
    server.json(chat_body(usage=USAGE))
    result = server.chat().invoke("q")
    assert result.usage_metadata == {
        "input_tokens": 1000,
        "output_tokens": 500,
        "total_tokens": 1500,
    }
    assert "cost" not in result.response_metadata


def test_streaming_flag_invoke_merges_with_costs(server: FakeServer, mode: str) -> None:
    # streaming=True: core's generate_from_stream merges the chunks n-ary.
    chat_stream(server)
    result = run_invoke(server.chat(pricing=PRICE, streaming=True), "q", mode)
    assert result.content == "The capital is Paris."
    assert result.usage_metadata == pytest.approx(USAGE_WITH_COST)
    assert result.response_metadata["cost"] == pytest.approx(COST)


# ---------------------------------------------------------------- chat: streams


def test_stream_cost_on_exactly_one_chunk(server: FakeServer, mode: str) -> None:
    chat_stream(server)
    ends = Ends()
    chunks = run_stream(server.chat(pricing=PRICE), "q", mode, config={"callbacks": [ends]})
    with_usage = [c for c in chunks if c.usage_metadata is not None]
    with_cost = [c for c in chunks if "cost" in c.response_metadata]
    assert len(with_usage) == len(with_cost) == 1
    assert with_usage[0] is chunks[-1]
    # Token counts only on a streamed chunk: float costs would break core's n-ary merges.
    assert chunks[-1].usage_metadata == TOKENS
    full = merge(chunks)
    assert full.content == "The capital is Paris."
    assert full.usage_metadata == TOKENS
    assert full.response_metadata["cost"] == pytest.approx(COST)
    # What core merged for on_llm_end (n-ary, chunks[0] + chunks[1:]) has them too.
    (end,) = ends.results
    message = end.generations[0][0].message  # type: ignore[attr-defined]
    assert message.usage_metadata == pytest.approx(USAGE_WITH_COST)


def test_prompt_chain_stream(server: FakeServer, mode: str) -> None:
    chat_stream(server)
    chain = ChatPromptTemplate.from_messages([("human", "{q}")]) | server.chat(pricing=PRICE)
    chunks = run_stream(chain, {"q": "Capital of France?"}, mode)
    assert sum(1 for c in chunks if c.usage_metadata) == 1
    assert merge(chunks).usage_metadata == TOKENS
    assert merge(chunks).response_metadata["cost"] == pytest.approx(COST)
    # How core 1.8's chains merge the streamed messages: n-ary.
    assert chunks[0] + chunks[1:] == merge(chunks)


def test_astream_events_chat(server: FakeServer) -> None:
    chat_stream(server)
    chain = ChatPromptTemplate.from_messages([("human", "{q}")]) | server.chat(pricing=PRICE)

    async def collect() -> list[Any]:
        return [e async for e in chain.astream_events({"q": "q"}, version="v2")]

    events = asyncio.run(collect())
    streamed = [e["data"]["chunk"] for e in events if e["event"] == "on_chat_model_stream"]
    assert sum(1 for c in streamed if c.usage_metadata) == 1
    (end,) = [e for e in events if e["event"] == "on_chat_model_end"]
    assert end["data"]["output"].usage_metadata == pytest.approx(USAGE_WITH_COST)
    (chain_end,) = [e for e in events if e["event"] == "on_chain_end" and not e["parent_ids"]]
    # The chain merged the streamed messages itself: tokens in usage, the cost beside them.
    assert chain_end["data"]["output"].usage_metadata == TOKENS
    assert chain_end["data"]["output"].response_metadata["cost"] == pytest.approx(COST)


def test_stream_without_usage_has_no_cost(server: FakeServer, mode: str) -> None:
    chat_stream(server, usage=None)
    chunks = run_stream(server.chat(pricing=PRICE, missing_usage="none"), "q", mode)
    assert all(c.usage_metadata is None for c in chunks)
    assert all("cost" not in c.response_metadata for c in chunks)


def test_core_still_cannot_merge_float_costs() -> None:
    # The core bug all this works around (langchain #36015): usage-less chunks add up to an
    # all-int zero usage, to which a later chunk's float cost cannot be added. If this test
    # fails, core has fixed it and streamed chunks could carry their costs again.
    plain = [AIMessageChunk(content=t) for t in ("a", "b", "c")]
    last = AIMessageChunk(content="", usage_metadata=USAGE_WITH_COST)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Unknown value types"):
        _ = plain[0] + [*plain[1:], last]


def test_merged_stream_gets_the_cost_in_its_usage() -> None:
    def chunks() -> list[ChatGenerationChunk]:
        plain = [UsageSafeChunk(message=AIMessageChunk(content=t)) for t in ("a", "b", "c")]
        end = AIMessageChunk(content="", usage_metadata=TOKENS, response_metadata={"cost": COST})  # type: ignore[arg-type]
        return [*plain, UsageSafeChunk(message=end)]

    stream = chunks()
    merged = merge_chat_generation_chunks(stream)
    assert merged is not None
    assert merged.message.content == "abc"
    assert merged.message.usage_metadata == USAGE_WITH_COST  # type: ignore[attr-defined]
    assert stream[-1].message.usage_metadata == TOKENS  # type: ignore[attr-defined]
    # The end in the middle, and pairwise merges, give the same.
    a, b, c, end = chunks()
    mixed = merge_chat_generation_chunks([a, b, end, c])
    assert mixed is not None
    assert mixed.message.usage_metadata == USAGE_WITH_COST  # type: ignore[attr-defined]
    assert (a + b + c + end).message.usage_metadata == USAGE_WITH_COST  # type: ignore[attr-defined]
    # Without a cost (no price) the merged usage stays as the server counted it.
    plain = [
        UsageSafeChunk(
            message=AIMessageChunk(content=t, usage_metadata=TOKENS if t == "b" else None)
        )
        for t in "ab"
    ]  # type: ignore[arg-type]
    assert (plain[0] + plain[1:]).message.usage_metadata == TOKENS  # type: ignore[attr-defined]


def test_single_chunk_stream_carries_its_cost(server: FakeServer, mode: str) -> None:
    # A stream with nothing before its end (here: only a usage event): nothing is merged
    # into that one chunk, so it carries the cost as invoke does.
    usage_only = {"id": "c1", "object": "chat.completion.chunk", "model": "smollm2"}
    server.stream(
        sse(
            {**usage_only, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
            {**usage_only, "choices": [], "usage": USAGE},
        )
    )
    ends = Ends()
    chunks = run_stream(server.chat(pricing=PRICE), "q", mode, config={"callbacks": [ends]})
    assert len(chunks) == 1
    assert chunks[0].usage_metadata == pytest.approx(USAGE_WITH_COST)
    (end,) = ends.results
    assert end.generations[0][0].message.usage_metadata == pytest.approx(USAGE_WITH_COST)  # type: ignore[attr-defined]


def test_safe_chunk_serializes_as_a_plain_chunk() -> None:
    chunk = UsageSafeChunk(message=AIMessageChunk(content="x"))
    assert (
        dumpd(chunk)["id"] == dumpd(ChatGenerationChunk(message=AIMessageChunk(content="x")))["id"]
    )


# ---------------------------------------------------------------- prices by name


def test_table_prices_a_dated_snapshot(server: FakeServer) -> None:
    body = {**chat_body(usage=USAGE), "model": "gpt-4o-2024-08-06"}
    server.json(body)
    table = PricingTable({"gpt-4o": {"input": 1.0, "output": 2.0, "per_request": 0.5}})
    result = server.chat(model="gpt-4o", pricing=table).invoke("q")
    assert result.usage_metadata == pytest.approx(USAGE_WITH_COST)


def test_unknown_model_cost_absent_and_explained_once(
    server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="langchain_customllm.pricing")
    for _ in range(3):
        server.json(chat_body(usage=USAGE))
    llm = server.chat(pricing={"models": {"other-model": {"input": 1, "output": 1}}})
    results = [llm.invoke("q") for _ in range(3)]
    for result in results:
        assert result.usage_metadata == {
            "input_tokens": 1000,
            "output_tokens": 500,
            "total_tokens": 1500,
        }
        assert "cost" not in result.response_metadata
    (record,) = [r for r in caplog.records if r.name == "langchain_customllm.pricing"]
    assert record.levelno == logging.DEBUG
    assert "'smollm2'" in record.getMessage()


def test_pricing_field_forms(tmp_path: pathlib.Path, server: FakeServer) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text("models:\n  smollm2: {input: 1.0, output: 2.0, per_request: 0.5}\n")
    forms: list[Any] = [
        PRICE,
        {"input": 1.0, "output": 2.0, "per_request": 0.5},
        {"smollm2": {"input": 1.0, "output": 2.0, "per_request": 0.5}},
        PricingTable.load(path),
        str(path),
    ]
    for form in forms:
        server.json(chat_body(usage=USAGE))
        assert server.chat(pricing=form).invoke("q").usage_metadata == pytest.approx(
            USAGE_WITH_COST
        )


def test_bad_pricing_fails_at_construction(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ValueError, match="Cannot read pricing table"):
        ChatCustomLLM(model="m", pricing=str(tmp_path / "missing.yaml"))
    with pytest.raises(ValueError, match="output: Field required"):
        CustomLLM(model="m", pricing={"input": 1})


def test_model_construct_still_prices(server: FakeServer) -> None:
    server.json(chat_body(usage=USAGE))
    built = server.chat(pricing=PRICE)
    llm = ChatCustomLLM.model_construct(**{k: getattr(built, k) for k in built.model_fields_set})
    assert llm.invoke("q").usage_metadata == pytest.approx(USAGE_WITH_COST)


# ---------------------------------------------------------------- text LLM


def test_llm_generate_cost_per_generation_and_summed(server: FakeServer) -> None:
    server.json(completion_body(" a"))
    server.json(completion_body(" b"))
    result = server.llm(pricing=PRICE).generate(["p1", "p2"])
    for generations in result.generations:
        info = generations[0].generation_info
        assert info is not None
        assert info["cost"] == pytest.approx(COST)
    assert result.llm_output is not None
    assert result.llm_output["cost"] == pytest.approx({k: 2 * v for k, v in COST.items()})
    assert result.llm_output["token_usage"]["total_tokens"] == 3000


def test_llm_without_price_has_no_cost(server: FakeServer) -> None:
    server.json(completion_body())
    result = server.llm().generate(["p"])
    assert "cost" not in (result.generations[0][0].generation_info or {})
    assert result.llm_output is not None
    assert "cost" not in result.llm_output


def test_llm_invoke_and_stream_report_cost_to_callbacks(server: FakeServer, mode: str) -> None:
    server.json(completion_body())
    text_stream(server)
    llm = server.llm(pricing=PRICE)
    ends = Ends()
    assert run_invoke(llm, "q", mode, config={"callbacks": [ends]}) == " Paris."
    assert "".join(run_stream(llm, "q", mode, config={"callbacks": [ends]})) == " Paris."
    for end in ends.results:
        info = end.generations[0][0].generation_info
        assert info is not None
        assert info["cost"] == pytest.approx(COST)
        assert info["token_usage"]["total_tokens"] == 1500


def test_llm_chain_stream_and_events(server: FakeServer) -> None:
    text_stream(server)
    text_stream(server)
    chain = PromptTemplate.from_template("{q}") | server.llm(pricing=PRICE)
    assert "".join(chain.stream({"q": "x"})) == " Paris."

    async def collect() -> list[Any]:
        return [e async for e in chain.astream_events({"q": "x"}, version="v2")]

    (end,) = [e for e in asyncio.run(collect()) if e["event"] == "on_llm_end"]
    info = end["data"]["output"]["generations"][0][0]["generation_info"]
    assert info["cost"] == pytest.approx(COST)


def test_llm_streaming_flag_generate(server: FakeServer) -> None:
    text_stream(server)
    result = server.llm(pricing=PRICE, streaming=True).generate(["p"])
    assert result.llm_output is not None
    assert result.llm_output["cost"] == pytest.approx(COST)


# ---------------------------------------------------------------- LangChain's cache


def test_chat_cache_hit_is_marked_free_by_core(server: FakeServer) -> None:
    # What langchain-core 1.7.2 does on a hit: the cached message comes back with its
    # token counts and our input/output costs, and usage_metadata["total_cost"] set to
    # the int 0 (BaseChatModel._convert_cached_generations). No request is sent.
    server.json(chat_body(usage=USAGE))
    llm = server.chat(pricing=PRICE, cache=InMemoryCache())
    first = llm.invoke("same")
    second = llm.invoke("same")
    assert len(server.requests) == 1
    assert first.usage_metadata["total_cost"] == pytest.approx(0.502)
    assert second.usage_metadata["total_cost"] == 0
    assert type(second.usage_metadata["total_cost"]) is int
    assert second.usage_metadata["input_tokens"] == 1000


def test_llm_cache_hit_sends_nothing(server: FakeServer) -> None:
    server.json(completion_body())
    llm = server.llm(pricing=PRICE, cache=InMemoryCache())
    assert llm.invoke("same") == llm.invoke("same")
    assert len(server.requests) == 1
