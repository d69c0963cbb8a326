"""Where our time goes: layered timings, profiles by component, import cost, pools.

Complements ``run.py`` (which compares clients) by taking *our* paths apart:

1. Layers: the same work timed with one layer added at a time (raw httpx; our client's
   events; + parsing and assembly; + LangChain objects; + langchain-core's ``invoke`` /
   ``stream`` machinery), interleaved over rounds, next to langchain-core's own floor
   measured with a chat model that does no I/O at all.
2. Profiles (pyinstrument, statistical, 1 ms interval) of ``ChatCustomLLM`` ``invoke``,
   ``stream``, ``astream_events(v2)`` and ``abatch``: self time per component (ours,
   langchain-core, pydantic, httpx stack, json, asyncio, ...), time spent in C builtins
   counted for the Python code that called them; the call trees go to ``bench/profiles/``.
3. Import: ``-X importtime``: what ``from langchain_customllm import ChatCustomLLM`` loads on
   top of ``langchain_core.language_models.chat_models`` (what any chat model must load).
4. Concurrency and pools: how many requests each client really keeps in flight in
   ``abatch(max_concurrency=64)`` (the stub delays answers and counts), and httpx's async
   pool limits vs the aiohttp transport.

Parts 1 are in ``layers.py``, 2 and 3 in ``breakdown.py``, what this shares with
``run.py`` in ``harness.py``. Private APIs of the package are used read-only; if they
change, that layer shows n/a. Usage: ``python bench/prof.py [--quick] [--no-write]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections import defaultdict
from typing import Any

import clients as bc
import httpx
from breakdown import import_cost, micro, profiles
from harness import BENCH, log, rotated, start_stub, write_generated
from layers import _layers, invoke_without_sockets, time_async_layers, time_layers

from langchain_customllm import ChatCustomLLM

PROFILE_JSON = BENCH / "results" / "profile.json"


# --------------------------------------------------------------------------- pools


async def concurrency_probe(base_url: str, delay_ms: int, calls: int) -> dict[str, Any]:
    """How many requests each client really keeps in flight under max_concurrency=64."""
    from langchain_openai import ChatOpenAI

    from langchain_customllm import CustomLLM

    headers = {"x-stub-delay-ms": str(delay_ms)}
    stats_url = base_url + "/stats"
    models: dict[str, Any] = {
        "ChatCustomLLM": ChatCustomLLM(model=bc.MODEL, base_url=base_url, default_headers=headers),
        "CustomLLM": CustomLLM(model=bc.MODEL, base_url=base_url, default_headers=headers),
        "ChatOpenAI": ChatOpenAI(
            model=bc.MODEL,
            base_url=base_url,
            api_key="bench",  # type: ignore[arg-type]
            default_headers=headers,
        ),
    }
    out = {}
    async with httpx.AsyncClient() as http:
        for name, model in models.items():
            await http.get(stats_url)
            t0 = time.perf_counter()
            await model.abatch([bc.PROMPT] * calls, config={"max_concurrency": 64})
            wall = time.perf_counter() - t0
            stats = (await http.get(stats_url)).json()
            out[name] = {"wall_s": wall, **stats}
    for model in models.values():
        if hasattr(model, "_client") and callable(model._client):
            await model.aclose()
    return out


async def pool_study(base_url: str, calls: int, rounds: int) -> dict[str, float]:
    """req/s of abatch-like load through different async pools (interleaved)."""
    variants = [
        bc.raw_httpx(base_url, 16, name="raw httpx AsyncClient() (pool 100/20)", sync=False),
        bc.raw_httpx_pool64(base_url, 16),
        bc.raw_httpx_aiohttp(base_url, 16),
        bc.raw_httpx2(base_url, 16),
        bc.chat_customllm(base_url, 16, name="ChatCustomLLM (default: its own HTTP/1.1 transport)"),
        bc.chat_customllm_default_pool(base_url, 16),
        bc.chat_customllm_aiohttp(base_url, 16),
    ]
    for v in variants:
        assert v.abatch is not None
        await v.abatch(64, 64)
    rates: dict[str, list[float]] = defaultdict(list)
    for rnd in range(rounds):
        for v in rotated(variants, rnd):
            assert v.abatch is not None
            t0 = time.perf_counter()
            await v.abatch(calls, 64)
            rates[v.name].append(calls / (time.perf_counter() - t0))
    for v in variants:
        await v.aclose()
    return {k: statistics.median(r) for k, r in rates.items()}


# --------------------------------------------------------------------------- report


def _us(x: float | None) -> str:
    return "n/a" if x is None else f"{x:,.1f}"


def _layer_table(rows: dict[str, dict[str, float] | None], unit: str, base: str) -> list[str]:
    out = [
        f"| layer | wall µs/{unit} | client CPU µs/{unit} | CPU added by this layer | "
        f"Python calls/{unit} | calls added | CPU x raw httpx |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    prev: dict[str, float] | None = None
    ref = rows.get(base)
    for name, v in rows.items():
        if v is None:
            out.append(f"| {name} | n/a | n/a | | | | |")
            continue
        first = prev is None or name.startswith(("floor", "raw"))
        step = "" if first or prev is None else f"{v['cpu_us'] - prev['cpu_us']:+,.1f}"
        dcalls = "" if first or prev is None else f"{v['calls'] - prev['calls']:+,.0f}"
        ratio = f"{v['cpu_us'] / ref['cpu_us']:.2f}" if ref else ""
        out.append(
            f"| {name} | {v['wall_us']:,.1f} | {v['cpu_us']:,.1f} | {step} | "
            f"{v['calls']:,.0f} | {dcalls} | {ratio} |"
        )
        if not name.startswith("floor"):
            prev = v
    return out


def render(res: dict[str, Any]) -> str:
    """Markdown for the generated profile block."""
    out = [f"Run: {res['date']}; settings: {res['settings']}.", ""]
    out += ["#### Layers: sequential invoke (µs per call, medians of interleaved rounds)", ""]
    out += _layer_table(res["invoke_layers"], "call", "raw httpx (post + json.loads)")
    out += ["", "#### Layers: sync stream (per chunk)", ""]
    out += _layer_table(res["stream_layers"], "chunk", "raw httpx (iter_lines + json.loads)")
    out += ["", "#### Async streams (per chunk)", ""]
    out += _layer_table(
        res["async_layers"], "chunk", "raw httpx AsyncClient (aiter_lines + json.loads)"
    )
    for name, prof in res["profiles"].items():
        out += [
            "",
            f"#### Profile: ChatCustomLLM {name} (self time by component; "
            f"tree in bench/profiles/{name}.txt)",
            "",
            "| component | share of time |",
            "|---|---:|",
        ]
        out += [f"| {k} | {v * 100:.1f}% |" for k, v in prof["components"].items() if v >= 0.005]
        out += ["", "Top self time (function, with the C builtins it called):", ""]
        out += [f"- {v * 100:.1f}% `{k}`" for k, v in prof["top_functions"][:8]]
    out += [
        "",
        "#### invoke without sockets (httpx.MockTransport, same answer bytes; µs per call, "
        "median of interleaved rounds)",
        "",
        "| what | µs/call | x raw httpx |",
        "|---|---:|---:|",
    ]
    nos = res["no_sockets"]
    ref = nos.get("raw httpx: post + json.loads") or 1.0
    out += [f"| {k} | {v:,.1f} | {v / ref:.2f} |" for k, v in nos.items()]
    out += ["", "#### Micro-costs on the hot paths (µs per operation, best of 5)", ""]
    out += ["| operation | µs |", "|---|---:|"]
    out += [f"| {k} | {_us(v)} |" for k, v in res["micro"].items()]
    imp = res["import"]
    out += [
        "",
        f"#### Import: what `from langchain_customllm import ChatCustomLLM` adds after "
        f"`langchain_core.language_models.chat_models` ({imp['total_ms']:.0f} ms, "
        "-X importtime, median)",
        "",
        "Self time by top-level package (≥ 0.5 ms): "
        + ", ".join(f"{k} {v:.1f} ms" for k, v in imp["by_package_ms"].items()),
        "",
        "| our module | self ms | cumulative ms |",
        "|---|---:|---:|",
    ]
    out += [f"| {m} | {s:.1f} | {c:.1f} |" for m, (s, c) in imp["ours_modules_ms"].items()]
    out += ["", "| heaviest other modules it loads | self ms | cumulative ms |", "|---|---:|---:|"]
    out += [f"| {m} | {s:.1f} | {c:.1f} |" for m, (s, c) in imp["heaviest_ms"].items()]
    probe = res["concurrency"]
    out += [
        "",
        f"#### Requests really in flight: abatch of {res['settings']['probe_calls']} calls, "
        f"max_concurrency=64, stub answers after {res['settings']['probe_delay_ms']} ms",
        "",
        "| client | most in flight at once | wall s |",
        "|---|---:|---:|",
    ]
    out += [f"| {k} | {v['max_inflight']} | {v['wall_s']:.2f} |" for k, v in probe.items()]
    out += [
        "",
        f"#### Async pools: abatch-like load, {res['settings']['pool_calls']} calls, "
        "64 in flight (req/s, median)",
        "",
        "| pool / transport | req/s |",
        "|---|---:|",
    ]
    out += [f"| {k} | {v:,.0f} |" for k, v in res["pools"].items()]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    """Run every part; write the results."""
    p = argparse.ArgumentParser(description="where ChatCustomLLM's time goes")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args(argv)
    q = args.quick
    settings = {
        "rounds": 3 if q else 7,
        "invoke_reps": 100 if q else 150,
        "chunks": 5000 if q else 10000,
        "stream_rounds": 2 if q else 3,
        "profile_calls": 300 if q else 500,
        "import_runs": 3 if q else 5,
        "probe_calls": 128,
        "probe_delay_ms": 50,
        "pool_calls": 500 if q else 1000,
        "pool_rounds": 1,
    }
    res: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "settings": settings,
        "loadavg": os.getloadavg(),
    }
    log("import: -X importtime")
    res["import"] = import_cost(settings["import_runs"])
    log("micro-costs")
    res["micro"] = micro()
    log("invoke without sockets")
    res["no_sockets"] = invoke_without_sockets(settings["rounds"], 200)
    server, base_url = start_stub()
    try:
        invoke, stream, cleanup = _layers(base_url, settings["chunks"])
        log("layers: invoke")
        res["invoke_layers"] = time_layers(invoke, settings["rounds"], settings["invoke_reps"], 1)
        log("layers: stream")
        res["stream_layers"] = time_layers(stream, settings["stream_rounds"], 1, settings["chunks"])
        cleanup()
        log("layers: async streams")
        res["async_layers"] = asyncio.run(
            time_async_layers(base_url, settings["chunks"], settings["stream_rounds"])
        )
        res["profiles"] = profiles(base_url, settings["chunks"], settings["profile_calls"])
        log("concurrency probe")
        res["concurrency"] = asyncio.run(
            concurrency_probe(base_url, settings["probe_delay_ms"], settings["probe_calls"])
        )
        log("pool study")
        res["pools"] = asyncio.run(
            pool_study(base_url, settings["pool_calls"], settings["pool_rounds"])
        )
    finally:
        server.terminate()
        server.wait(timeout=10)
    res["loadavg_end"] = os.getloadavg()
    sys.stdout.write(render(res) + "\n")
    if not args.no_write:
        write_generated(PROFILE_JSON, res, "bench/prof.py", render(res))
        log("wrote bench/results/profile.json and the profile block of bench/RESULTS.md")


if __name__ == "__main__":
    main()
