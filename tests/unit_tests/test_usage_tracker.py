"""`track_usage` / `UsageTracker`: totals per model under threads, tasks, nesting, caches."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from langchain_core.caches import InMemoryCache
from langchain_core.callbacks import get_usage_metadata_callback
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.prompts import ChatPromptTemplate

from langchain_customllm import BadRequestError, ModelUsage, Pricing, UsageTracker, track_usage
from langchain_customllm import pricing as pricing_module
from tests.unit_tests.fakes import FakeServer, chat_body, chat_chunks, completion_chunks, sse

PRICE = Pricing(input=1.0, output=2.0)
USAGE = {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500}
CALL_COST = 0.002  # 1000 * $1/M + 500 * $2/M


@pytest.fixture(autouse=True)
def fresh_explanations(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pricing_module, "_explained", set())


def answers(server: FakeServer, n: int, usage: dict[str, Any] = USAGE) -> FakeServer:
    for _ in range(n):
        server.json(chat_body(usage=usage))
    return server


def text_answers(server: FakeServer, n: int) -> FakeServer:
    body = {
        "id": "cmpl-7",
        "object": "text_completion",
        "model": "smollm2",
        "choices": [{"index": 0, "text": " Paris.", "finish_reason": "stop"}],
        "usage": USAGE,
    }
    for _ in range(n):
        server.json(body)
    return server


def assert_calls(usage: ModelUsage, n: int) -> None:
    assert usage.requests == n
    assert usage.input_tokens == 1000 * n
    assert usage.output_tokens == 500 * n
    assert usage.cost == pytest.approx(CALL_COST * n)
    assert usage.unpriced_requests == 0


# ---------------------------------------------------------------- basic counting


def test_invoke_stream_and_text_llm(server: FakeServer) -> None:
    answers(server, 1)
    server.stream(sse(*chat_chunks(["Par", "is"], usage=USAGE)))
    text_answers(server, 1)
    chat = server.chat(pricing=PRICE)
    with track_usage() as usage:
        chat.invoke("q")
        list(chat.stream("q"))
        server.llm(pricing=PRICE).invoke("q")
    assert_calls(usage.total, 3)
    assert list(usage.by_model) == ["smollm2"]
    assert usage.total.total_tokens == 4500


def test_cached_and_reasoning_tokens(server: FakeServer) -> None:
    details = {
        **USAGE,
        "prompt_tokens_details": {"cached_tokens": 300},
        "completion_tokens_details": {"reasoning_tokens": 40},
    }
    answers(server, 1, details)
    text_answers(server, 0)
    server.json(
        {
            "id": "c",
            "object": "text_completion",
            "model": "smollm2",
            "choices": [{"index": 0, "text": "x", "finish_reason": "stop"}],
            "usage": details,
        }
    )
    with track_usage() as usage:
        server.chat().invoke("q")
        server.llm().invoke("q")
    assert usage.total.cached_tokens == 600
    assert usage.total.reasoning_tokens == 80


def test_nothing_counted_outside_the_block(server: FakeServer) -> None:
    answers(server, 2)
    chat = server.chat(pricing=PRICE)
    with track_usage() as usage:
        chat.invoke("q")
    chat.invoke("q")
    assert usage.total.requests == 1


def test_block_that_raises_still_resets(server: FakeServer) -> None:
    answers(server, 1)
    with pytest.raises(RuntimeError), track_usage() as usage:
        raise RuntimeError("boom")
    server.chat().invoke("q")
    assert usage.total.requests == 0


def test_failed_call_is_not_counted(server: FakeServer) -> None:
    server.json({"error": {"message": "bad"}}, status=400)
    with track_usage() as usage, pytest.raises(BadRequestError):
        server.chat(max_retries=0).invoke("q")
    assert usage.total.requests == 0


def test_explicit_callback_without_context(server: FakeServer) -> None:
    answers(server, 1)
    tracker = UsageTracker()
    server.chat(pricing=PRICE).invoke("q", config={"callbacks": [tracker]})
    assert_calls(tracker.total, 1)


# ---------------------------------------------------------------- concurrency


def test_batch_threads(server: FakeServer) -> None:
    answers(server, 8)
    with track_usage() as usage:
        server.chat(pricing=PRICE).batch(["q"] * 8, config={"max_concurrency": 4})
    assert_calls(usage.total, 8)


def test_abatch_and_gathered_tasks(server: FakeServer) -> None:
    answers(server, 6)
    chat = server.chat(pricing=PRICE)

    async def run() -> UsageTracker:
        async with track_usage() as usage:
            await chat.abatch(["q"] * 3)
            await asyncio.gather(*(chat.ainvoke("q") for _ in range(3)))
        return usage

    assert_calls(asyncio.run(run()).total, 6)


def test_concurrent_tasks_keep_separate_trackers(server: FakeServer) -> None:
    answers(server, 5)
    chat = server.chat(pricing=PRICE)

    async def worker(n: int) -> UsageTracker:
        async with track_usage() as usage:
            for _ in range(n):
                await chat.ainvoke("q")
                await asyncio.sleep(0)
        return usage

    async def run() -> list[UsageTracker]:
        return list(await asyncio.gather(worker(2), worker(3)))

    two, three = asyncio.run(run())
    assert_calls(two.total, 2)
    assert_calls(three.total, 3)


def test_threads_keep_separate_trackers(server: FakeServer) -> None:
    answers(server, 6)
    chat = server.chat(pricing=PRICE)
    results: dict[int, UsageTracker] = {}

    def worker(n: int) -> None:
        with track_usage() as usage:
            for _ in range(n):
                chat.invoke("q")
        results[n] = usage

    threads = [threading.Thread(target=worker, args=(n,)) for n in (1, 2, 3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for n, usage in results.items():
        assert_calls(usage.total, n)


def test_nested_trackers_count_inner_calls_in_outer(server: FakeServer) -> None:
    answers(server, 6)
    chat = server.chat(pricing=PRICE)
    with track_usage() as outer:
        chat.invoke("q")
        with track_usage() as inner:
            chat.batch(["q"] * 2)
            with track_usage() as innermost:
                chat.invoke("q")
        chat.invoke("q")

    async def after() -> None:
        async with track_usage() as again:
            await chat.ainvoke("q")
        assert_calls(again.total, 1)

    asyncio.run(after())
    assert_calls(innermost.total, 1)
    assert_calls(inner.total, 3)
    assert_calls(outer.total, 5)


def test_tracker_passed_explicitly_inside_a_nested_block_counts_once(server: FakeServer) -> None:
    answers(server, 1)
    with track_usage() as outer, track_usage():
        server.chat(pricing=PRICE).invoke("q", config={"callbacks": [outer]})
    assert_calls(outer.total, 1)


def test_a_context_manager_cannot_be_entered_twice() -> None:
    manager = track_usage()
    with manager, pytest.raises(RuntimeError, match="already active"):
        manager.__enter__()


# ---------------------------------------------------------------- other models


def usage_message(model: str, total_cost: float | None = None) -> AIMessage:
    usage: dict[str, Any] = {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}
    if total_cost is not None:
        usage["total_cost"] = total_cost
    return AIMessage(
        "hi",
        usage_metadata=usage,
        response_metadata={"model_name": model},  # type: ignore[arg-type]
    )


def test_any_chat_model_reporting_usage_metadata() -> None:
    other = GenericFakeChatModel(
        messages=iter([usage_message("gpt-x"), usage_message("gpt-x", total_cost=0.25)])
    )
    with track_usage() as usage:
        other.invoke("q")
        other.invoke("q")
    (model,) = usage.by_model
    assert model == "gpt-x"
    stats = usage.by_model["gpt-x"]
    assert stats.requests == 2
    assert stats.input_tokens == 20
    assert stats.cost == 0.25
    assert stats.unpriced_requests == 1


def test_tracker_pricing_prices_results_without_a_cost() -> None:
    other = GenericFakeChatModel(messages=iter([usage_message("gpt-x-2024-01-01")]))
    with track_usage(pricing={"gpt-x": {"input": 1_000, "output": 2_000}}) as usage:
        other.invoke("q")
    assert usage.total.cost == pytest.approx(0.02)
    assert usage.total.unpriced_requests == 0


def test_per_model_rows_use_ls_model_name(server: FakeServer) -> None:
    answers(server, 2)
    with track_usage() as usage:
        server.chat(pricing=PRICE).invoke("q")
        server.chat(model="other-alias", pricing=PRICE).invoke("q")
    assert sorted(usage.by_model) == ["other-alias", "smollm2"]
    assert_calls(usage.by_model["other-alias"], 1)


def test_core_usage_callback_cannot_add_costs_ours_can(server: FakeServer) -> None:
    # langchain-core's get_usage_metadata_callback adds usage with add_usage, which
    # rejects floats: it logs an error and keeps only the first call. Ours counts both.
    answers(server, 2)
    chat = server.chat(pricing=PRICE)
    with get_usage_metadata_callback() as core, track_usage() as ours:
        chat.invoke("q")
        chat.invoke("q")
    assert core.usage_metadata["smollm2"]["input_tokens"] == 1000
    assert_calls(ours.total, 2)


# ---------------------------------------------------------------- LangChain's cache


def test_chat_cache_hits_cost_nothing(server: FakeServer) -> None:
    answers(server, 1)
    chat = server.chat(pricing=PRICE, cache=InMemoryCache())
    with track_usage() as usage:
        chat.invoke("same")
        chat.invoke("same")
        chat.invoke("same")
    assert_calls(usage.total, 1)
    assert usage.total.cache_hits == 2


def test_chat_cache_hits_without_pricing(server: FakeServer) -> None:
    answers(server, 1)
    chat = server.chat(cache=InMemoryCache())
    with track_usage() as usage:
        chat.invoke("same")
        chat.invoke("same")
    assert usage.total.requests == 1
    assert usage.total.input_tokens == 1000
    assert usage.total.cache_hits == 1
    assert usage.total.cost is None


def test_llm_cache_hits_cost_nothing(server: FakeServer) -> None:
    text_answers(server, 1)
    llm = server.llm(pricing=PRICE, cache=InMemoryCache())
    with track_usage() as usage:
        llm.invoke("same")
        llm.invoke("same")
    assert_calls(usage.total, 1)


# ---------------------------------------------------------------- the table


def test_summary_table(server: FakeServer) -> None:
    answers(server, 3)
    with track_usage() as usage:
        server.chat(pricing=PRICE).batch(["q", "q"])
        server.chat(model="free-alias").invoke("q")
    assert str(usage) == (
        "model       requests  input  output  cached  reasoning  cost (USD)\n"
        "free-alias         1   1000     500       0          0        n/a*\n"
        "smollm2            2   2000    1000       0          0    0.004000\n"
        "total              3   3000    1500       0          0   0.004000*\n"
        "* 1 request(s) without a price or usage: not in the cost"
    )
    assert repr(usage) == (
        "UsageTracker(requests=3, input_tokens=3000, output_tokens=1500, cost=0.004)"
    )


def test_summary_table_tiny_costs_and_cache_note(server: FakeServer) -> None:
    answers(server, 1, {"prompt_tokens": 1, "completion_tokens": 0, "total_tokens": 1})
    chat = server.chat(pricing={"input": 0.01, "output": 0.01}, cache=InMemoryCache())
    with track_usage() as usage:
        chat.invoke("same")
        chat.invoke("same")
    lines = str(usage).splitlines()
    assert lines[-2].endswith("1.00e-08")
    assert lines[-1] == "1 answer(s) from LangChain's cache: no tokens, no cost"


def test_empty_tracker_and_reset(server: FakeServer) -> None:
    tracker = UsageTracker()
    assert str(tracker).splitlines()[-1].split() == ["total", "0", "0", "0", "0", "0", "n/a"]
    answers(server, 1)
    server.chat().invoke("q", config={"callbacks": [tracker]})
    tracker.reset()
    assert tracker.total == ModelUsage()


def test_chain_stream_with_tracker(server: FakeServer) -> None:
    server.stream(sse(*chat_chunks(["Par", "is"], usage=USAGE)))
    server.stream(sse(*completion_chunks(["x"])))
    chain = ChatPromptTemplate.from_messages([("human", "{q}")]) | server.chat(pricing=PRICE)
    with track_usage() as usage:
        list(chain.stream({"q": "q"}))
        # No usage in this stream, and none estimated: an unpriced request.
        list(server.llm(pricing=PRICE, missing_usage="none").stream("q"))
    assert usage.total.requests == 2
    assert usage.total.unpriced_requests == 1
    assert usage.total.cost == pytest.approx(CALL_COST)
