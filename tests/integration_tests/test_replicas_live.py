"""Replicas behind one model, on real llama.cpp servers (issue 18).

Three ``llama-server`` replicas on loopback (`_replica_fixtures.py`), reached through
counting forwarders so every test checks what each server really received against what the
model's `replica_stats()` and ``response_metadata["replica"]`` say: round-robin spreads
1,000 requests evenly, least-busy sends most work to the faster replicas when one is
slowed, sticky routing keeps a session on one replica, embeddings spread too, and the
gateway fronts two replicas for the ``openai`` SDK. Killing a replica mid-run is
`test_replicas_failover_live.py`.

Requests are tiny (one or two tokens of a short prompt): the machine has 2 cores for three
servers and the client, and what is measured is where requests go, not how fast.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import openai
import pytest

from langchain_customllm import ChatCustomLLM, CustomLLM, CustomLLMEmbeddings
from tests._calls import merge
from tests.integration_tests._replica_fixtures import (
    GATEWAY_PORT,
    REPLICA_PORT,
    Replica,
    stats_by_url,
)
from tests.integration_tests._serve_fixtures import (
    GATEWAY_KEY,
    KEY_VARIABLE,
    GatewayProcess,
    write_models,
)
from tests.integration_tests.conftest import MODEL
from tests.servers.tcp_proxy import ForwardingProxy

pytestmark = pytest.mark.integration

PROMPT = "Say hi."
CHAT = "POST /v1/chat/completions"
EMBEDDINGS_PROXY_PORTS = (REPLICA_PORT + 9, REPLICA_PORT + 10)


def _chat(proxies: Sequence[ForwardingProxy], **settings: Any) -> ChatCustomLLM:
    settings = {"max_tokens": 1, "temperature": 0, "max_retries": 0, **settings}
    return ChatCustomLLM(model=MODEL, base_url=[p.base_url for p in proxies], **settings)


def _served(proxies: Sequence[ForwardingProxy], line: str = CHAT) -> dict[str, int]:
    """What each server received through its proxy: base_url -> requests of that kind."""
    return {p.base_url: p.requests().count(line) for p in proxies}


async def _run(model: ChatCustomLLM, total: int, in_flight: int) -> list[Any]:
    """``total`` ainvokes with exactly ``in_flight`` of them running at any time."""
    results: list[Any] = []
    remaining = iter(range(total))

    async def worker() -> None:
        for _ in remaining:
            results.append(await model.ainvoke(PROMPT))

    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return results


async def test_round_robin_spreads_1000_requests_evenly(
    proxies: list[ForwardingProxy], closing: Callable[[Any], Any]
) -> None:
    model = closing(_chat(proxies, routing="round_robin"))
    results = await _run(model, total=1000, in_flight=32)

    answered = Counter(r.response_metadata["replica"] for r in results)
    stats = stats_by_url(model)
    served = _served(proxies)
    print(f"round robin, 1000 at 32 in flight: served {served}")
    assert sum(served.values()) == 1000  # max_retries=0: each request sent exactly once
    for url in served:
        # Three views agree: the model's counters, the answers' metadata, the servers.
        assert stats[url].requests == served[url] == answered[url], (url, stats[url])
        assert stats[url].errors == 0
        assert stats[url].in_flight == 0
        assert abs(served[url] - 1000 / 3) <= 0.15 * 1000 / 3, served


async def test_least_busy_sends_most_work_to_the_faster_replicas(
    proxies: list[ForwardingProxy], closing: Callable[[Any], Any]
) -> None:
    # Every request to the third replica waits 500 ms in its proxy: it stays in flight longer,
    # so least-busy routing (the default) finds it busy more often and sends it less. At 6 in
    # flight the servers answer in tens of ms, so the delay dominates; with many more in
    # flight the 2 shared cores make every answer slow and the difference shrinks (at 16 in
    # flight and +300 ms the slow one still got 25 %, against a third for round-robin).
    slow = proxies[2]
    slow.delay = 0.5
    model = closing(_chat(proxies))
    await _run(model, total=240, in_flight=6)

    served = _served(proxies)
    stats = stats_by_url(model)
    print(f"least busy, 240 at 6 in flight, one replica +500 ms: served {served}")
    assert sum(served.values()) == 240
    fast = [served[p.base_url] for p in proxies[:2]]
    # Round-robin would give each 80. Least-busy: the slow one gets well under a third,
    # each fast one clearly more than it.
    assert served[slow.base_url] < 0.5 * min(fast), served
    assert served[slow.base_url] >= 1, served  # it is slowed, not excluded
    for url, count in served.items():
        assert stats[url].requests == count
    # The delay is a floor under every answer of the slow replica (not a timing check).
    slow_latency = stats[slow.base_url].latency_ms
    assert slow_latency is not None
    assert slow_latency >= 500
    assert all((stats[p.base_url].latency_ms or 0) < slow_latency for p in proxies[:2])


async def test_the_metadata_names_the_replica_that_answered(
    proxies: list[ForwardingProxy], closing: Callable[[Any], Any]
) -> None:
    """On every path, the replica in the answer is the server whose proxy saw the request."""
    chat = closing(_chat(proxies, routing="round_robin"))
    text = CustomLLM(
        model=MODEL,
        base_url=[p.base_url for p in proxies],
        routing="round_robin",
        max_tokens=1,
        max_retries=0,
    )
    closing(text)

    def call(path: str) -> str:
        if path == "invoke":
            return str(chat.invoke(PROMPT).response_metadata["replica"])
        if path == "stream":
            return str(merge(list(chat.stream(PROMPT))).response_metadata["replica"])
        info = text.generate([PROMPT]).generations[0][0].generation_info or {}
        return str(info.get("replica"))

    def posts(proxy: ForwardingProxy) -> int:  # the calls, not a server detection's GETs
        return sum(line.startswith("POST ") for line in proxy.requests())

    seen = []
    for path in ("invoke", "ainvoke", "stream", "llm") * 3:
        before = {p.base_url: posts(p) for p in proxies}
        if path == "ainvoke":
            replica = str((await chat.ainvoke(PROMPT)).response_metadata["replica"])
        else:
            replica = await asyncio.to_thread(call, path)
        grew = [p.base_url for p in proxies if posts(p) > before[p.base_url]]
        assert grew == [replica], (path, replica, grew)
        seen.append(replica)
    # Round-robin over three: each model went to every replica.
    assert set(seen) == {p.base_url for p in proxies}


async def test_a_sticky_key_keeps_a_session_on_one_replica(
    proxies: list[ForwardingProxy], closing: Callable[[Any], Any]
) -> None:
    model = closing(_chat(proxies, sticky_key="session"))
    abc = {"metadata": {"session": "abc"}}
    answers = await asyncio.gather(*(model.ainvoke(PROMPT, config=abc) for _ in range(12)))
    replicas = {a.response_metadata["replica"] for a in answers}
    assert len(replicas) == 1, replicas
    (home,) = replicas
    assert _served(proxies)[home] == 12
    assert sum(_served(proxies).values()) == 12
    # Other sessions are spread: 12 sessions on one replica would be a 1 in 3**11 chance.
    others = await asyncio.gather(
        *(model.ainvoke(PROMPT, config={"metadata": {"session": f"s{i}"}}) for i in range(12))
    )
    assert len({a.response_metadata["replica"] for a in others}) >= 2


async def test_a_sticky_key_in_configurable_routes_like_metadata(
    proxies: list[ForwardingProxy], closing: Callable[[Any], Any]
) -> None:
    """A key in ``configurable`` routes as in the metadata (core 1.8 no longer copies it)."""
    model = closing(_chat(proxies, sticky_key="session"))
    for path in ("ainvoke", "astream"):
        homes = set()
        for value in ("abc", "def", "ghi"):
            by_metadata = await model.ainvoke(PROMPT, config={"metadata": {"session": value}})
            configurable = {"configurable": {"session": value}}
            if path == "ainvoke":
                answer = await model.ainvoke(PROMPT, config=configurable)
            else:
                answer = merge([c async for c in model.astream(PROMPT, config=configurable)])
            assert answer.response_metadata["replica"] == by_metadata.response_metadata["replica"]
            homes.add(answer.response_metadata["replica"])


async def test_embeddings_spread_across_replicas(
    embeddings_replicas: list[Replica], closing: Callable[[Any], Any]
) -> None:
    with (
        ForwardingProxy(embeddings_replicas[0].port, EMBEDDINGS_PROXY_PORTS[0]) as first,
        ForwardingProxy(embeddings_replicas[1].port, EMBEDDINGS_PROXY_PORTS[1]) as second,
    ):
        embedder = closing(
            CustomLLMEmbeddings(
                model=MODEL,
                base_url=[first.base_url, second.base_url],
                routing="round_robin",
                max_retries=0,
            )
        )
        texts = [f"Sentence number {i} about cats." for i in range(20)]
        vectors = await asyncio.gather(*(embedder.aembed_query(t) for t in texts))
        served = _served([first, second], "POST /v1/embeddings")
        stats = stats_by_url(embedder)
        assert served == {first.base_url: 10, second.base_url: 10}
        assert {url: stats[url].requests for url in served} == served
        assert all(len(v) == 576 for v in vectors)
        # Same model, same text: one replica's vector is the other's.
        again = await asyncio.gather(*(embedder.aembed_query(texts[0]) for _ in range(2)))
        assert _served([first, second], "POST /v1/embeddings") == {
            first.base_url: 11,
            second.base_url: 11,
        }
        assert max(abs(a - b) for a, b in zip(*again, strict=True)) < 1e-4


def test_the_gateway_fronts_two_replicas(
    proxies: list[ForwardingProxy],
    embeddings_replicas: list[Replica],
    tmp_path: Path,
) -> None:
    pair = proxies[:2]
    config = write_models(
        tmp_path / "models.yaml",
        {
            "smollm2-pool": {
                "model": MODEL,
                "base_url": [p.base_url for p in pair],
                "routing": "round_robin",
                "max_retries": 0,
            },
            "smollm2-embed-pool": {
                "type": "embeddings",
                "model": MODEL,
                "base_url": [r.base_url for r in embeddings_replicas],
                "routing": "round_robin",
            },
        },
    )
    gateway = GatewayProcess(
        config, GATEWAY_PORT, ("--api-key-env", KEY_VARIABLE), log=tmp_path / "gateway.log"
    )
    with gateway:
        client = openai.OpenAI(base_url=gateway.url, api_key=GATEWAY_KEY, max_retries=0)
        messages = [{"role": "user", "content": PROMPT}]
        for _ in range(10):
            answer = client.chat.completions.create(
                model="smollm2-pool",
                messages=messages,
                max_tokens=2,  # type: ignore[arg-type]
            )
            assert answer.choices[0].finish_reason in ("stop", "length")
        chunks = list(
            client.chat.completions.create(
                model="smollm2-pool",
                messages=messages,  # type: ignore[arg-type]
                max_tokens=2,
                stream=True,
            )
        )
        assert chunks
        assert chunks[-1].choices[0].finish_reason in ("stop", "length")
        embedded = client.embeddings.create(model="smollm2-embed-pool", input=["a", "b"])
        assert [len(d.embedding) for d in embedded.data] == [576, 576]
        client.close()
    served = _served(pair)
    print(f"gateway, 11 chat requests over two replicas: served {served}")
    assert sorted(served.values()) == [5, 6], (served, gateway.output()[-2000:])
