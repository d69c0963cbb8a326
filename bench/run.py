"""The benchmark harness of issue 7: ours vs raw httpx vs ChatOpenAI, side by side.

One process run measures every client, interleaved (A B C D, then B C D A, ...: the order
rotates each round), over several rounds, and reports medians and each client's cost
relative to raw httpx *measured in the same round*, so load from other processes on this
small machine hits all clients alike and cancels out of the ratios.

Scenarios (see ``clients.py`` for what each client does):

- import: fresh interpreters, ``python -c "import X"`` minus ``python -c "pass"``, bytecode
  cached in a private ``PYTHONPYCACHEPREFIX`` (so no one pays for compiling);
- invoke: sequential sync ``invoke``, µs per call;
- abatch: ``abatch`` of 2,000 calls with ``max_concurrency=64``, req/s (plus transports);
- stream / astream / astream_events(v2): one response of 20,000 chunks, chunks/s;
- peak RSS: VmHWM of a fresh process running the abatch scenario with one client;
- llama.cpp end to end (its C++ llama-server): time to first token and total time, ours vs
  raw httpx.

The stub server (``stub_server.py``) runs as a separate process; its CPU time (from
``/proc/<pid>/stat``) is recorded per measurement to show it is never the bottleneck.
The scenarios are in ``scenarios.py``, the report in ``report.py``, and what this shares
with ``prof.py`` (timing, interleaving, the stub, the results file) in ``harness.py``.

Usage: ``python bench/run.py [--quick] [--skip import,...,llama] [--no-write]``. Results go to
``bench/results/latest.json`` and the generated part of ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from typing import Any

import clients as bc
from harness import (
    BENCH,
    OPENAI,
    RAW,
    RESULTS_MD,
    ROOT,
    Recorder,
    log,
    machine,
    paired_ratio,
    start_stub,
    summarize,
    write_generated,
)
from report import render
from scenarios import (
    rss_child,
    scenario_async,
    scenario_import,
    scenario_invoke,
    scenario_llama,
    scenario_rss,
    scenario_rss_floor,
    scenario_stream,
)

RESULTS_JSON = BENCH / "results" / "latest.json"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command line."""
    p = argparse.ArgumentParser(description="ours vs raw httpx vs ChatOpenAI (issue 7)")
    p.add_argument("--quick", action="store_true", help="fewer rounds and smaller sizes")
    p.add_argument("--rounds", type=int, default=7, help="invoke rounds")
    p.add_argument("--invoke-calls", type=int, default=200, help="invoke calls per round")
    p.add_argument("--batch-rounds", type=int, default=3)
    p.add_argument("--calls", type=int, default=2000, help="abatch calls")
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--stream-rounds", type=int, default=3)
    p.add_argument("--chunks", type=int, default=20000, help="chunks of the streamed response")
    p.add_argument("--import-rounds", type=int, default=5)
    p.add_argument("--rss-rounds", type=int, default=2)
    p.add_argument(
        "--rss-calls", type=int, default=640, help="abatch calls in each peak-RSS process"
    )
    p.add_argument("--llama-rounds", type=int, default=9)
    p.add_argument("--llama-max-tokens", type=int, default=64)
    p.add_argument(
        "--skip", default="", help="comma-separated: import,invoke,stream,async,rss,llama"
    )
    p.add_argument("--no-write", action="store_true", help="print only; keep RESULTS.md")
    p.add_argument("--rss-child", help=argparse.SUPPRESS)
    p.add_argument("--base-url", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.rounds, args.invoke_calls, args.batch_rounds, args.calls = 3, 100, 2, 500
        args.stream_rounds, args.chunks, args.import_rounds = 2, 5000, 3
        args.rss_rounds, args.rss_calls, args.llama_rounds = 1, 320, 2
    return args


def main(argv: list[str] | None = None) -> None:
    """Run everything, write the results."""
    args = parse_args(argv)
    if args.rss_child:
        rss_child(args.rss_child, args.base_url, args.calls, args.concurrency)
        return
    skip = set(filter(None, args.skip.split(",")))
    began = time.perf_counter()
    res: dict[str, Any] = {"machine": machine(), "scenarios": {}, "paired": {}}
    res["settings"] = {
        k: getattr(args, k)
        for k in (
            "rounds",
            "invoke_calls",
            "batch_rounds",
            "calls",
            "concurrency",
            "stream_rounds",
            "chunks",
            "import_rounds",
            "rss_rounds",
            "rss_calls",
        )
    }
    sc = res["scenarios"]
    if "import" not in skip:
        log(f"import: {args.import_rounds} rounds of fresh interpreters")
        sc["import"] = scenario_import(args.import_rounds)
    server, base_url = start_stub()
    log(f"stub server pid {server.pid} at {base_url}")
    rec = Recorder(server.pid)
    try:
        main_clients = {name: f(base_url, args.chunks) for name, f in bc.FACTORIES.items()}
        if "invoke" not in skip:
            log(f"invoke: {args.rounds} rounds x {args.invoke_calls} calls")
            scenario_invoke(rec, main_clients, args.rounds, args.invoke_calls)
        if "stream" not in skip:
            log(f"stream: {args.stream_rounds} rounds x {args.chunks} chunks")
            streams = {
                **main_clients,
                "raw httpx (iter_bytes)": bc.raw_httpx_bytes(base_url, args.chunks),
                bc.CORE_FLOOR: bc.core_floor(base_url, args.chunks),
            }
            scenario_stream(rec, streams, args.stream_rounds, args.chunks)
            streams["raw httpx (iter_bytes)"].close()
        if "async" not in skip:
            batch_extra = {
                c.name: c
                for c in (
                    # Pool-limit variants are in prof.py's pool study, to keep this short.
                    bc.chat_customllm_aiohttp(base_url, args.chunks),
                    bc.raw_httpx_aiohttp(base_url, args.chunks),
                    bc.raw_httpx2(base_url, args.chunks),
                )
            }
            floor = bc.core_floor(base_url, args.chunks)
            astream_extra = {
                "raw httpx-aiohttp": bc.raw_httpx_aiohttp(base_url, args.chunks),
                bc.CORE_FLOOR: floor,
            }
            events_extra = {bc.CORE_FLOOR: floor}
            asyncio.run(
                scenario_async(rec, main_clients, batch_extra, astream_extra, events_extra, args)
            )
        for client in main_clients.values():
            client.close()
        for scenario, samples in rec.samples.items():
            sc[scenario] = summarize(samples, RAW)
        for scenario in ("abatch", "astream_events"):
            if scenario in rec.samples:
                res["paired"][scenario] = {
                    name: paired_ratio(rec.samples[scenario], name, OPENAI)
                    for name in rec.samples[scenario]
                }
        if "rss" not in skip:
            log(f"peak RSS: {args.rss_rounds} rounds of fresh processes")
            sc["rss"] = scenario_rss(base_url, args.rss_rounds, args)
            sc["rss_floor_mib"] = scenario_rss_floor(max(args.rss_rounds, 3))
    finally:
        server.terminate()
        server.wait(timeout=10)
    if "llama" not in skip:
        try:
            sc["llama"] = scenario_llama(args.llama_rounds, args.llama_max_tokens)
        except Exception as exc:
            sc["llama"] = {"skipped": f"{type(exc).__name__}: {exc}"}
    shares = [r["server_cpu_share"] for s in rec.samples for r in sc[s].values()]
    cpu = [r["client_cpu_share"] for s in rec.samples for r in sc[s].values()]
    res["server_cpu_max"] = max(shares, default=0.0)
    res["client_cpu_min"] = min(cpu, default=0.0)
    res["client_cpu_max"] = max(cpu, default=0.0)
    res["raw_samples"] = rec.samples
    res["loadavg_end"] = os.getloadavg()
    res["elapsed_s"] = time.perf_counter() - began
    text = render(res)
    sys.stdout.write(text + "\n")
    if not args.no_write:
        write_generated(RESULTS_JSON, res, "bench/run.py", text)
        log(f"wrote {RESULTS_JSON.relative_to(ROOT)} and {RESULTS_MD.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
