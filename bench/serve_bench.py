"""The gateway's overhead: ``customllm serve`` and the LiteLLM proxy in front of the same stub.

Three ways to the stub server (``stub_server.py``, pre-rendered answers, so it is never the
bottleneck), measured in the same run, by the same load generator (aiohttp, one process),
interleaved over rounds (the order rotates), medians over the rounds:

- **direct**: the client talks to the stub;
- **customllm serve**: the real CLI (one uvicorn worker, access log off), a ``models.yaml``
  entry pointing at the stub, a client key;
- **LiteLLM proxy**: ``litellm --config`` (the version the matrix installs, its venv in the
  user cache), one ``openai/`` model pointing at the stub, a master key, no database.

What is measured:

- added latency: sequential whole answers (``stream: false``); the p50 and p99 of each path
  minus the direct path's;
- streamed chunks per second: one long stream (``max_tokens`` = chunks);
- requests per second with 64 and 256 streams in flight (16 chunks each, read to the end).

Targets (issue 17, 2 cores): at most 1 ms added at p50; at least 3x the LiteLLM proxy's
requests per second. Usage: ``python bench/serve_bench.py [--rounds N] [--quick]
[--skip-litellm] [--no-write]``; results in ``bench/results/serve.json`` and RESULTS.md's
generated block (``--skip-litellm``: no LiteLLM row, to measure the gateway alone). Ports:
``CUSTOMLLM_BENCH_GATEWAY_PORT``, ``CUSTOMLLM_BENCH_LITELLM_PORT``,
``CUSTOMLLM_BENCH_STUB_PORT``. Where the gateway's time goes: ``bench/serve_stages.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from harness import BENCH, ROOT, log, machine, rotated, start_stub, write_generated

LITELLM_PYTHON = Path.home() / ".cache/langchain-customllm/litellm-server/bin"
GATEWAY_PORT = int(os.environ.get("CUSTOMLLM_BENCH_GATEWAY_PORT", "8862"))
LITELLM_PORT = int(os.environ.get("CUSTOMLLM_BENCH_LITELLM_PORT", "8869"))
KEY = "sk-bench-0123456789"
MESSAGES = [{"role": "user", "content": "Hello"}]


def _wait(url: str, process: subprocess.Popen[bytes], timeout: float = 90.0) -> None:
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the process exited ({process.returncode})")
        try:
            with opener.open(url, timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up in {timeout} s")


def start_gateway(stub: str, work: Path) -> subprocess.Popen[bytes]:
    """``customllm serve`` (this tree's) in front of the stub; waits for ``/health``."""
    config = work / "models.yaml"
    entry = {"model": "stub-model", "base_url": stub, "server_profile": "generic"}
    config.write_text(json.dumps({"models": {"stub-model": entry}}))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BENCH_GATEWAY_KEYS": KEY}
    command = [
        sys.executable, "-m", "langchain_customllm", "serve", str(config),
        "--port", str(GATEWAY_PORT), "--api-key-env", "BENCH_GATEWAY_KEYS",
        "--log-level", "warning", "--max-tokens", "none",
    ]  # fmt: skip
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)  # noqa: S603
    _wait(f"http://127.0.0.1:{GATEWAY_PORT}/health", process)
    return process


def start_litellm(stub: str, work: Path) -> subprocess.Popen[bytes]:
    """The LiteLLM proxy in front of the stub; waits for its readiness."""
    config = work / "litellm.yaml"
    model = {"model": "openai/stub-model", "api_base": stub, "api_key": "none"}
    config.write_text(
        json.dumps({"model_list": [{"model_name": "stub-model", "litellm_params": model}]})
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_URL", "REDIS_", "LITELLM_"))
    }
    env.update(
        LITELLM_MASTER_KEY=KEY,
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        LITELLM_TELEMETRY="False",
        LITELLM_LOG="ERROR",
    )
    command = [
        str(LITELLM_PYTHON / "litellm"), "--config", str(config),
        "--host", "127.0.0.1", "--port", str(LITELLM_PORT), "--num_workers", "1",
    ]  # fmt: skip
    process = subprocess.Popen(  # noqa: S603
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _wait(f"http://127.0.0.1:{LITELLM_PORT}/health/readiness", process, timeout=180)
    return process


async def _whole(session: aiohttp.ClientSession, url: str) -> None:
    body = {"model": "stub-model", "messages": MESSAGES, "max_tokens": 9}
    async with session.post(f"{url}/chat/completions", json=body) as answer:
        assert answer.status == 200, await answer.text()
        await answer.read()


async def _stream(session: aiohttp.ClientSession, url: str, chunks: int) -> int:
    body = {"model": "stub-model", "messages": MESSAGES, "max_tokens": chunks, "stream": True}
    events = 0
    async with session.post(f"{url}/chat/completions", json=body) as answer:
        assert answer.status == 200, await answer.text()
        async for line in answer.content:
            if line.startswith(b"data: {"):
                events += 1
    return events


def _session(concurrency: int) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    headers = {"authorization": f"Bearer {KEY}"}
    return aiohttp.ClientSession(connector=connector, headers=headers, trust_env=False)


async def latencies(url: str, count: int) -> list[float]:
    """Seconds per whole answer, one request at a time."""
    out = []
    async with _session(1) as session:
        for _ in range(20):
            await _whole(session, url)
        for _ in range(count):
            start = time.perf_counter()
            await _whole(session, url)
            out.append(time.perf_counter() - start)
    return out


async def chunk_rate(url: str, chunks: int) -> float:
    """Content events per second of one long stream."""
    async with _session(1) as session:
        await _stream(session, url, 64)
        start = time.perf_counter()
        events = await _stream(session, url, chunks)
        return events / (time.perf_counter() - start)


async def request_rate(url: str, concurrency: int, total: int) -> float:
    """Streamed requests per second with ``concurrency`` in flight."""
    async with _session(concurrency) as session:
        await asyncio.gather(*(_stream(session, url, 16) for _ in range(concurrency)))
        queue = iter(range(total))

        async def worker() -> None:
            for _ in queue:
                await _stream(session, url, 16)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return total / (time.perf_counter() - start)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(paths: dict[str, str], rounds: int, quick: bool) -> dict[str, Any]:
    """Every measurement on every path, interleaved over rounds; medians per path."""
    sequential = 200 if quick else 1000
    chunks = 2000 if quick else 20000
    samples: dict[str, dict[str, list[float]]] = {name: {} for name in paths}
    for rnd in range(rounds):
        for name in rotated(list(paths), rnd):
            url = paths[name]
            lat = await latencies(url, sequential)
            got = samples[name]
            got.setdefault("p50", []).append(_pct(lat, 0.5))
            got.setdefault("p99", []).append(_pct(lat, 0.99))
            got.setdefault("chunks/s", []).append(await chunk_rate(url, chunks))
            for concurrency in (64, 256):
                total = concurrency * (4 if quick else 8)
                rate = await request_rate(url, concurrency, total)
                got.setdefault(f"req/s@{concurrency}", []).append(rate)
            log(f"round {rnd + 1}/{rounds} {name}: " + ", ".join(
                f"{k}={v[-1]:.4g}" for k, v in got.items()
            ))  # fmt: skip
    return {
        name: {k: statistics.median(v) for k, v in got.items()} for name, got in samples.items()
    }


def render(res: dict[str, Any]) -> str:
    """The Markdown table of a run (without LiteLLM's row when it was not measured)."""
    direct, ours = res["direct"], res["customllm serve"]
    theirs = res.get("LiteLLM proxy")
    load = res.get("load")
    lines = [
        f"Machine: {res['machine']['cores']} cores, {res['machine']['cpu']}; rounds: "
        f"{res['rounds']} (medians). All processes (stub, gateway or proxy, load generator) "
        "share these cores."
        + (f" Load average (1, 5 min) at the end: {load[0]:.1f}, {load[1]:.1f}." if load else "")
        + ("" if theirs else " The LiteLLM proxy was not measured in this run (--skip-litellm)."),
        "",
        "| path | p50 (ms) | p99 (ms) | added p50 (ms) | added p99 (ms) | chunks/s (1 stream) "
        "| req/s, 64 streams | req/s, 256 streams |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in ("direct", "customllm serve", "LiteLLM proxy"):
        row = res.get(name)
        if row is None:
            continue
        added = "" if name == "direct" else f"{(row['p50'] - direct['p50']) * 1e3:.2f}"
        added99 = "" if name == "direct" else f"{(row['p99'] - direct['p99']) * 1e3:.2f}"
        lines.append(
            f"| {name} | {row['p50'] * 1e3:.2f} | {row['p99'] * 1e3:.2f} | {added} | {added99} "
            f"| {row['chunks/s']:,.0f} | {row['req/s@64']:,.0f} | {row['req/s@256']:,.0f} |"
        )
    if theirs:
        lines += [
            "",
            f"customllm serve vs LiteLLM proxy: {ours['req/s@64'] / theirs['req/s@64']:.1f}x "
            f"the requests/s at 64 streams, {ours['req/s@256'] / theirs['req/s@256']:.1f}x at "
            f"256; {ours['chunks/s'] / theirs['chunks/s']:.1f}x the chunks/s of one stream.",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Start the three paths, measure, print and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="fewer requests per round")
    parser.add_argument("--no-write", action="store_true", help="print, do not write results")
    parser.add_argument(
        "--skip-litellm", action="store_true",
        help="do not start the LiteLLM proxy (its row and the ratios are left out)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    # SIGTERM (a timeout) unwinds like Ctrl-C, so the servers below are stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    stub, stub_url = start_stub()
    processes = [stub]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            processes.append(start_gateway(stub_url, work))
            paths = {
                "direct": stub_url,
                "customllm serve": f"http://127.0.0.1:{GATEWAY_PORT}/v1",
            }
            if not args.skip_litellm:
                processes.append(start_litellm(stub_url, work))
                paths["LiteLLM proxy"] = f"http://127.0.0.1:{LITELLM_PORT}/v1"
            res: dict[str, Any] = asyncio.run(measure(paths, args.rounds, args.quick))
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
    res["rounds"] = args.rounds
    res["machine"] = machine()
    res["load"] = os.getloadavg()
    body = render(res)
    print(body)
    if not args.no_write:
        write_generated(BENCH / "results" / "serve.json", res, "bench/serve_bench.py", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
