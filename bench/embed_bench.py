"""The embeddings row of issue 16: CustomLLMEmbeddings vs raw httpx vs OpenAIEmbeddings.

10,000 short texts through the stub server's ``/v1/embeddings`` (384-wide vectors, batches
of 64), every client in one process, interleaved over rounds (the order rotates), medians.
Client CPU per text is ``time.process_time()`` around the call; the ratios are per round.

- raw httpx: ``httpx.Client`` posting each batch of 64 with ``encoding_format: "float"``,
  ``response.json()``, vectors put in ``index`` order;
- CustomLLMEmbeddings: ``chunk_size=64, max_concurrency=1`` (sequential, like the others),
  and with the default ``max_concurrency=4`` (info);
- OpenAIEmbeddings: ``base_url=..., check_embedding_ctx_length=False, chunk_size=64``
  (the openai SDK asks for base64 and decodes it).

Targets: CPU per text at most 1.2x raw httpx; throughput at least 2x OpenAIEmbeddings', each
with its defaults (ours sends 4 batches at once, OpenAIEmbeddings one after the other); the
throughput with both sequential is shown too.

Usage: ``python bench/embed_bench.py [--rounds N] [--texts N] [--no-write]``; langchain-openai
comes with the ``bench`` extra (``BENCH_EXTRA_PATH`` adds a directory holding it).
Results go to ``bench/results/embeddings.json`` and RESULTS.md's generated block.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx
from harness import BENCH, log, machine, rotated, start_stub, write_generated

from langchain_customllm import CustomLLMEmbeddings

if os.environ.get("BENCH_EXTRA_PATH"):
    sys.path.append(os.environ["BENCH_EXTRA_PATH"])

RAW, OURS, OURS_CONCURRENT, OPENAI = (
    "raw httpx",
    "CustomLLMEmbeddings",
    "CustomLLMEmbeddings (max_concurrency=4)",
    "OpenAIEmbeddings",
)
CHUNK = 64
MODEL = "stub-model"


def _raw(base_url: str) -> Callable[[list[str]], list[list[float]]]:
    client = httpx.Client(timeout=60)

    def embed(texts: list[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), CHUNK):
            body = {"model": MODEL, "input": texts[start : start + CHUNK]}
            response = client.post(
                base_url + "/embeddings", json={**body, "encoding_format": "float"}
            )
            response.raise_for_status()
            data = sorted(response.json()["data"], key=lambda item: item["index"])
            vectors.extend(item["embedding"] for item in data)
        return vectors

    return embed


def clients(base_url: str) -> dict[str, Callable[[list[str]], list[list[float]]]]:
    """Each client's ``embed_documents``, built once."""
    found = {
        RAW: _raw(base_url),
        OURS: CustomLLMEmbeddings(
            base_url=base_url, model=MODEL, chunk_size=CHUNK, max_concurrency=1
        ).embed_documents,
        OURS_CONCURRENT: CustomLLMEmbeddings(
            base_url=base_url, model=MODEL, chunk_size=CHUNK
        ).embed_documents,
    }
    try:
        from langchain_openai import OpenAIEmbeddings
    except ImportError:
        log("langchain-openai is not installed: OpenAIEmbeddings is left out")
    else:
        found[OPENAI] = OpenAIEmbeddings(
            base_url=base_url,
            model=MODEL,
            api_key="stub",  # type: ignore[arg-type]
            check_embedding_ctx_length=False,
            chunk_size=CHUNK,
        ).embed_documents
    return found


def measure(rounds: int, count: int) -> dict[str, Any]:
    """Run every client ``rounds`` times over ``count`` texts; per-round samples."""
    proc, base_url = start_stub()
    try:
        texts = [f"short text number {i} about topic {i % 17}" for i in range(count)]
        embedders = clients(base_url)
        for embed in embedders.values():  # warm up: connections, imports, caches
            assert len(embed(texts[: CHUNK * 2])) == CHUNK * 2
        samples: dict[str, list[dict[str, float]]] = {name: [] for name in embedders}
        for rnd in range(rounds):
            for name in rotated(list(embedders), rnd):
                c0, t0 = time.process_time(), time.perf_counter()
                vectors = embedders[name](texts)
                t1, c1 = time.perf_counter(), time.process_time()
                assert len(vectors) == count, name
                assert len(vectors[-1]) == 384, name
                samples[name].append({"round": rnd, "wall_s": t1 - t0, "cpu_s": c1 - c0})
            log(f"round {rnd + 1}/{rounds} done")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return {"texts": count, "rounds": rounds, "samples": samples}


def _paired(samples: dict[str, list[dict[str, float]]], a: str, b: str, key: str) -> float | None:
    if a not in samples or b not in samples:
        return None
    return statistics.median(x[key] / y[key] for x, y in zip(samples[a], samples[b], strict=True))


def render(res: dict[str, Any]) -> str:
    """The generated block of RESULTS.md."""
    samples, count = res["samples"], res["texts"]
    lines = [
        f"Run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} · "
        f"{res['machine'].get('cores', '?')} cores · {count} texts, batches of {CHUNK}, "
        f"{res['rounds']} rounds interleaved, medians.",
        "",
        "| client | CPU µs / text | texts / s | CPU x raw httpx |",
        "|---|---:|---:|---:|",
    ]
    for name, rows in samples.items():
        cpu = statistics.median(r["cpu_s"] for r in rows) / count * 1e6
        rate = count / statistics.median(r["wall_s"] for r in rows)
        ratio = _paired(samples, name, RAW, "cpu_s")
        lines.append(f"| {name} | {cpu:.1f} | {rate:,.0f} | {ratio:.2f}x |")
    cpu_ratio = _paired(samples, OURS, RAW, "cpu_s")
    speed = _paired(samples, OPENAI, OURS_CONCURRENT, "wall_s")
    sequential = _paired(samples, OPENAI, OURS, "wall_s")
    lines += [
        "",
        "| target (issue 16) | goal | measured | verdict |",
        "|---|---|---:|---|",
        f"| CPU per text, x raw httpx | ≤ 1.2x | {cpu_ratio:.2f}x | "
        f"**{'pass' if cpu_ratio is not None and cpu_ratio <= 1.2 else 'FAIL'}** |",
    ]
    if speed is not None and sequential is not None:
        verdict = "pass" if speed >= 2 else "FAIL"
        lines += [
            f"| throughput (defaults), x OpenAIEmbeddings | ≥ 2x | {speed:.2f}x | **{verdict}** |",
            f"| throughput, both sequential (info) | (no target) | {sequential:.2f}x | n/a |",
        ]
    else:
        lines.append("| throughput, x OpenAIEmbeddings | ≥ 2x | not measured | n/a |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Measure, print the tables, and write them to RESULTS.md (unless ``--no-write``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--texts", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="2 rounds of 2,000 texts")
    parser.add_argument("--no-write", action="store_true")
    # `make bench` passes run.py's BENCH_ARGS to every script: ignore the others'.
    args, _ = parser.parse_known_args(argv)
    if args.quick:
        args.rounds, args.texts = 2, 2_000
    res = measure(args.rounds, args.texts)
    res["machine"] = machine()
    body = render(res)
    print(body)
    if not args.no_write:
        write_generated(BENCH / "results" / "embeddings.json", res, "bench/embed_bench.py", body)


if __name__ == "__main__":
    main()
