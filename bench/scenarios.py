"""The scenarios of ``run.py``: each client measured the same way, interleaved.

- import: fresh interpreters, ``python -c "import X"`` minus ``python -c "pass"``, bytecode
  cached in a private ``PYTHONPYCACHEPREFIX`` (so no one pays for compiling);
- invoke / stream / abatch / astream / astream_events against the stub server;
- peak RSS: VmHWM of a fresh process (``run.py --rss-child``) running abatch, one client;
- llama.cpp end to end (its C++ llama-server): time to first token and total time, ours vs
  raw httpx.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import clients as bc
from harness import BENCH, OURS, RAW, ROOT, Recorder, bytecode_env, log, rotated

LLAMA_PORT = 8797

CORE_CHAT = "langchain_core.language_models.chat_models (BaseChatModel)"

CHAT_IMPORT = "from langchain_customllm import ChatCustomLLM"

IMPORTS = {
    name: bc.BLOCK_CODE + code
    for name, code in {
        "(bare interpreter)": "pass",
        "httpx": "import httpx",
        "langchain_core.language_models": "import langchain_core.language_models",
        "langchain_core.language_models.chat_models (BaseChatModel)": (
            "import langchain_core.language_models.chat_models"
        ),
        "langchain_customllm": "import langchain_customllm",
        CHAT_IMPORT: "from langchain_customllm import ChatCustomLLM",
        "langchain_openai": "import langchain_openai",
    }.items()
}


def scenario_import(rounds: int) -> dict[str, Any]:
    """Fresh-interpreter import time, net of a bare interpreter (same round)."""
    env = bytecode_env()
    names = list(IMPORTS)

    def run(code: str) -> float:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env=env)  # noqa: S603
        return time.perf_counter() - t0

    for code in IMPORTS.values():  # warm the bytecode cache and the page cache
        run(code)
    per_round: list[dict[str, float]] = []
    for rnd in range(rounds):
        times = {name: run(IMPORTS[name]) for name in rotated(names, rnd)}
        per_round.append(times)
    bare = "(bare interpreter)"
    core = "langchain_core.language_models"
    out: dict[str, Any] = {"rounds": rounds, "modules": {}}
    for name in names:
        nets = [r[name] - r[bare] for r in per_round]
        out["modules"][name] = {
            "total_ms": statistics.median(r[name] for r in per_round) * 1e3,
            "net_ms": statistics.median(nets) * 1e3,
            "x_core": statistics.median(
                (r[name] - r[bare]) / (r[core] - r[bare]) for r in per_round
            ),
            "x_raw": statistics.median(
                (r[name] - r[bare]) / (r["httpx"] - r[bare]) for r in per_round
            ),
            "x_core_chat": statistics.median(
                (r[name] - r[bare]) / (r[CORE_CHAT] - r[bare]) for r in per_round
            ),
        }
    return out


def scenario_invoke(rec: Recorder, cls: dict[str, bc.Client], rounds: int, calls: int) -> None:
    """Sequential sync invoke."""
    names = list(cls)
    for name in names:  # warm up: connection, lazy imports, caches
        for _ in range(20):
            cls[name].invoke()  # type: ignore[misc]
    for rnd in range(rounds):
        for name in rotated(names, rnd):
            fn = cls[name].invoke
            assert fn is not None

            def loop(fn: Callable[[], Any] = fn) -> None:
                for _ in range(calls):
                    fn()

            rec.run("invoke", name, rnd, calls, loop)


def scenario_stream(rec: Recorder, cls: dict[str, bc.Client], rounds: int, chunks: int) -> None:
    """One sync stream of ``chunks`` events per client per round."""
    names = list(cls)
    for rnd in range(rounds):
        for name in rotated(names, rnd):
            fn = cls[name].stream
            assert fn is not None
            got = rec.run("stream", name, rnd, chunks, fn)
            if got < chunks:
                raise RuntimeError(f"{name} stream yielded {got} chunks for {chunks} events")


async def scenario_async(
    rec: Recorder,
    main: dict[str, bc.Client],
    batch_extra: dict[str, bc.Client],
    astream_extra: dict[str, bc.Client],
    events_extra: dict[str, bc.Client],
    args: argparse.Namespace,
) -> None:
    """abatch, astream and astream_events, all in one event loop (clients are loop-bound)."""
    batch = {**main, **batch_extra}
    names = list(batch)
    log(f"abatch: warm-up ({len(names)} clients)")
    for name in names:
        fn = batch[name].abatch
        assert fn is not None
        await fn(args.concurrency, args.concurrency)  # open the pool's connections
    for rnd in range(args.batch_rounds):
        log(f"abatch: round {rnd + 1}/{args.batch_rounds}")
        for name in rotated(names, rnd):
            fn = batch[name].abatch
            assert fn is not None

            async def go(fn: Any = fn) -> None:
                await fn(args.calls, args.concurrency)

            await rec.arun("abatch", name, rnd, args.calls, go)

    streams = {**main, **astream_extra}
    names = list(streams)
    for rnd in range(args.stream_rounds):
        log(f"astream: round {rnd + 1}/{args.stream_rounds}")
        for name in rotated(names, rnd):
            afn = streams[name].astream
            assert afn is not None
            got = await rec.arun("astream", name, rnd, args.chunks, afn)
            if got < args.chunks:
                raise RuntimeError(f"{name} astream yielded {got} chunks for {args.chunks}")

    events = {**main, **events_extra}
    names = list(events)
    for rnd in range(args.stream_rounds):
        log(f"astream_events: round {rnd + 1}/{args.stream_rounds}")
        for name in rotated(names, rnd):
            client = events[name]
            # Raw httpx has no event protocol: its plain astream is the floor here.
            efn = client.astream if name == RAW else client.astream_events
            assert efn is not None
            got = await rec.arun("astream_events", name, rnd, args.chunks, efn)
            if got < args.chunks:
                raise RuntimeError(f"{name} astream_events gave {got} chunks for {args.chunks}")

    for client in [*main.values(), *batch_extra.values(), *astream_extra.values()]:
        await client.aclose()


def scenario_rss(base_url: str, rounds: int, args: argparse.Namespace) -> dict[str, Any]:
    """Peak RSS (VmHWM) of a fresh process running the abatch scenario with one client."""
    env = bytecode_env()
    names = list(bc.FACTORIES)
    rows: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    for rnd in range(rounds):
        for name in rotated(names, rnd):
            cmd = [
                sys.executable,
                str(BENCH / "run.py"),
                "--rss-child",
                name,
                "--base-url",
                base_url,
                "--calls",
                str(args.rss_calls),
                "--concurrency",
                str(args.concurrency),
            ]
            proc = subprocess.run(  # noqa: S603
                cmd, check=True, env=env, capture_output=True, text=True, timeout=600
            )
            rows[name].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    out: dict[str, Any] = {}
    for name, samples in rows.items():
        out[name] = {
            "vmhwm_mib": statistics.median(s["vmhwm_kib"] for s in samples) / 1024,
            "import_mib": statistics.median(s["import_kib"] for s in samples) / 1024,
            "req_per_s": statistics.median(s["req_per_s"] for s in samples),
        }
    base = out[RAW]["vmhwm_mib"]
    for row in out.values():
        row["x_raw"] = row["vmhwm_mib"] / base
    return out


RSS_FLOOR = "floor: importing BaseChatModel's module only"


def scenario_rss_floor(rounds: int) -> float:
    """VmHWM (MiB) of a fresh process that only imports langchain-core's chat model module.

    Any LangChain chat model loads it, so no chat model's peak can be lower.
    """
    code = (
        bc.BLOCK_CODE + "import langchain_core.language_models.chat_models\n"
        "print([l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0].split()[1])"
    )
    samples = []
    for _ in range(rounds):
        proc = subprocess.run(  # noqa: S603
            [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=120
        )
        samples.append(int(proc.stdout.split()[-1]))
    return statistics.median(samples) / 1024


def rss_child(name: str, base_url: str, calls: int, concurrency: int) -> None:
    """Child process: one client's abatch, then print VmHWM (KiB) and req/s as JSON."""
    bc.block_bench_only_modules()
    client = bc.FACTORIES[name](base_url, 16)
    after_import = _vmhwm_kib()
    fn = client.abatch
    assert fn is not None

    async def go() -> float:
        await fn(concurrency, concurrency)
        t0 = time.perf_counter()
        await fn(calls, concurrency)
        elapsed = time.perf_counter() - t0
        await client.aclose()
        return calls / elapsed

    rate = asyncio.run(go())
    result = {"vmhwm_kib": _vmhwm_kib(), "import_kib": after_import, "req_per_s": rate}
    sys.stdout.write(json.dumps(result) + "\n")


def _vmhwm_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def scenario_llama(rounds: int, max_tokens: int) -> dict[str, Any]:
    """End to end against llama.cpp's llama-server (local_server.py): TTFT and total time."""
    import httpx

    from langchain_customllm import ChatCustomLLM

    script = ROOT / "scripts" / "local_server.py"
    port = str(LLAMA_PORT)
    log(f"llama.cpp: starting the server on 127.0.0.1:{port}")
    start = subprocess.run(  # noqa: S603
        [sys.executable, str(script), "start", "--port", port],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if start.returncode != 0:
        return {"skipped": f"server did not start: {(start.stderr or start.stdout)[-500:]}"}
    base_url = f"http://127.0.0.1:{port}/v1"
    prompt = "List five colours, one per line."
    body: dict[str, Any] = {
        "model": "smollm2",
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "seed": 7,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    try:
        http = httpx.Client(timeout=300)
        ours = ChatCustomLLM(
            model="smollm2", base_url=base_url, max_tokens=max_tokens, temperature=0, seed=7
        )

        def raw() -> tuple[float, float, int]:
            t0 = time.perf_counter()
            first = None
            n = 0
            with http.stream("POST", base_url + "/chat/completions", json=body) as r:
                r.raise_for_status()
                for line in r.iter_lines():
                    if not line.startswith("data: ") or line[6:] == "[DONE]":
                        continue
                    choices = json.loads(line[6:])["choices"]
                    if choices and choices[0].get("delta", {}).get("content"):
                        n += 1
                        if first is None:
                            first = time.perf_counter() - t0
            return first or 0.0, time.perf_counter() - t0, n

        def mine() -> tuple[float, float, int]:
            t0 = time.perf_counter()
            first = None
            n = 0
            for chunk in ours.stream(prompt):
                if chunk.content:
                    n += 1
                    if first is None:
                        first = time.perf_counter() - t0
            return first or 0.0, time.perf_counter() - t0, n

        fns = {RAW: raw, OURS: mine}
        for fn in fns.values():
            fn()  # warm up (prompt cache, connections)
        rows: dict[str, list[tuple[float, float, int]]] = {n: [] for n in fns}
        for rnd in range(rounds):
            for name in rotated(list(fns), rnd):
                rows[name].append(fns[name]())
        http.close()
        out: dict[str, Any] = {"max_tokens": max_tokens, "rounds": rounds, "clients": {}}
        for name, samples in rows.items():
            out["clients"][name] = {
                "ttft_ms": statistics.median(s[0] for s in samples) * 1e3,
                "total_ms": statistics.median(s[1] for s in samples) * 1e3,
                "chunks": statistics.median(s[2] for s in samples),
            }
        for key in ("ttft_ms", "total_ms"):
            out[f"{key}_x_raw"] = statistics.median(
                o[i] / r[i]
                for o, r in zip(rows[OURS], rows[RAW], strict=True)
                for i in [0 if key == "ttft_ms" else 1]
            )
        return out
    finally:
        subprocess.run(  # noqa: S603
            [sys.executable, str(script), "stop", "--port", port],
            capture_output=True,
            timeout=120,
        )
        log("llama.cpp: server stopped")
