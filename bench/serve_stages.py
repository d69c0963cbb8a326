"""Where a gateway request's time goes: each stage of a whole answer, timed on its own.

``serve_bench.py`` measures what ``customllm serve`` adds from outside (over HTTP); this
script takes the same request apart, in one process, against the same stub server
(``stub_server.py``), interleaved over rounds (the order rotates), medians:

- one HTTP/1.1 round trip on plain asyncio streams (the floor of a hop in Python);
- httpcore's connection pool (httpx's default transport underneath), and
  ``httpx.AsyncClient`` on httpx's default transport and on ours
  (``langchain_customllm._h1.H1Transport``, which the package's async clients use);
- ``ChatCustomLLM._agenerate`` (the model's own call: request, HTTP, answer) and
  ``ainvoke`` (plus langchain-core's run: callbacks, tracing hooks, result objects);
- langchain-core alone: ``FakeListChatModel.ainvoke`` (no I/O);
- the gateway app in-process (plain ASGI calls, no server): with the model's ``ainvoke``
  replaced by a ready answer (the gateway's own cost), and whole.

Each stage reports CPU µs per request (``time.process_time``: less sensitive than wall time
to other processes on a shared machine) and its wall-clock p50. Usage:
``python bench/serve_stages.py [--rounds N] [--calls N]`` (prints a Markdown table).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpcore
import httpx
from harness import ROOT, log, rotated, start_stub

sys.path.insert(0, str(ROOT))

from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage, HumanMessage

from langchain_customllm import ChatCustomLLM
from langchain_customllm._h1 import H1Transport
from langchain_customllm.serve.app import create_app

BODY = {"model": "stub-model", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 9}
RAW = json.dumps(BODY).encode()
HEADERS = {"content-type": "application/json"}
CANNED = AIMessage(
    "Hello! How can I help you today?",
    response_metadata={"finish_reason": "stop"},
    usage_metadata={"input_tokens": 9, "output_tokens": 9, "total_tokens": 18},
)
Stage = Callable[[], Awaitable[Any]]


def _asgi_call(app: Any) -> Stage:
    """One ``POST /v1/chat/completions`` through the app, as a server would make it."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/v1/chat/completions", "raw_path": b"/v1/chat/completions",
        "query_string": b"", "root_path": "", "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(len(RAW)).encode())],
    }  # fmt: skip

    async def call() -> None:
        sent = False
        status: list[int] = []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": RAW, "more_body": False}
            await asyncio.Event().wait()  # the client stays: no disconnect
            raise AssertionError

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])

        await app(dict(scope), receive, send)
        assert status == [200], status

    return call


async def _raw_stage(base: str) -> tuple[Stage, Callable[[], None]]:
    host, port = base.split("//")[1].split("/")[0].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    request = (
        f"POST /v1/chat/completions HTTP/1.1\r\nhost: {host}\r\ncontent-type: "
        f"application/json\r\ncontent-length: {len(RAW)}\r\n\r\n"
    ).encode() + RAW

    async def call() -> None:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1]) for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )  # fmt: skip
        await reader.readexactly(length)

    return call, writer.close


async def _stages(base: str) -> tuple[dict[str, Stage], list[Any]]:
    url = f"{base}/chat/completions"
    raw, close_raw = await _raw_stage(base)
    anyio_pool = httpcore.AsyncConnectionPool()
    ours = H1Transport()
    httpx_default = httpx.AsyncClient(trust_env=False)
    httpx_ours = httpx.AsyncClient(trust_env=False, transport=H1Transport())
    model = ChatCustomLLM(model="stub-model", base_url=base, server_profile="generic")
    messages = [HumanMessage("Hello")]
    fake = FakeListChatModel(responses=["Hello! How can I help you today?"])
    canned_model = ChatCustomLLM(model="stub-model", base_url=base, server_profile="generic")
    object.__setattr__(canned_model, "ainvoke", _canned)
    stages: dict[str, Stage] = {
        "HTTP round trip, plain asyncio streams": raw,
        "httpcore pool (httpx's default transport)": lambda: anyio_pool.request(
            "POST", url, content=RAW, headers=HEADERS
        ),
        "our transport alone (H1Transport)": lambda: _direct(ours, url),
        "httpx.AsyncClient, default": lambda: httpx_default.post(url, content=RAW, headers=HEADERS),
        "httpx.AsyncClient, our transport": lambda: httpx_ours.post(
            url, content=RAW, headers=HEADERS
        ),
        "ChatCustomLLM._agenerate": lambda: model._agenerate(messages, max_tokens=9),
        "ChatCustomLLM.ainvoke": lambda: model.ainvoke(messages, max_tokens=9),
        "langchain-core alone: FakeListChatModel.ainvoke": lambda: fake.ainvoke(messages),
        "gateway app, model answer ready (its own cost)": _asgi_call(
            create_app({"stub-model": canned_model})
        ),
        "gateway app, whole (in-process ASGI)": _asgi_call(create_app({"stub-model": model})),
    }
    closers = [anyio_pool, ours, httpx_default, httpx_ours, model, close_raw]
    return stages, closers


async def _direct(transport: H1Transport, url: str) -> bytes:
    response = await transport.handle_async_request(
        httpx.Request("POST", url, content=RAW, headers=HEADERS)
    )
    try:
        return await response.aread()
    finally:
        await response.aclose()


async def _canned(*args: Any, **kwargs: Any) -> AIMessage:
    return CANNED


async def measure(base: str, rounds: int, calls: int) -> dict[str, dict[str, float]]:
    """CPU µs per call and wall p50 µs of every stage, medians over rounds."""
    stages, closers = await _stages(base)
    cpu: dict[str, list[float]] = {name: [] for name in stages}
    wall: dict[str, list[float]] = {name: [] for name in stages}
    for rnd in range(rounds):
        for name in rotated(list(stages), rnd):
            call = stages[name]
            for _ in range(20):
                await call()
            times = []
            start_cpu = time.process_time()
            for _ in range(calls):
                start = time.perf_counter()
                await call()
                times.append(time.perf_counter() - start)
            cpu[name].append((time.process_time() - start_cpu) / calls * 1e6)
            wall[name].append(statistics.median(times) * 1e6)
        log(f"round {rnd + 1}/{rounds} done")
    for closer in closers:
        result = closer() if callable(closer) else closer.aclose()
        if asyncio.iscoroutine(result):
            await result
    return {
        name: {"cpu_us": statistics.median(cpu[name]), "p50_us": statistics.median(wall[name])}
        for name in stages
    }


def main(argv: list[str] | None = None) -> int:
    """Start the stub, time every stage, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=300, help="calls per stage and round")
    args = parser.parse_args(argv)
    stub, base = start_stub()
    try:
        res = asyncio.run(measure(base, args.rounds, args.calls))
    finally:
        stub.terminate()
        stub.wait(timeout=30)
    print("| stage | CPU µs per request | wall p50 µs |\n|---|---:|---:|")
    for name, row in res.items():
        print(f"| {name} | {row['cpu_us']:,.0f} | {row['p50_us']:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
