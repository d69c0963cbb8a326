"""``prof.py``'s breakdowns: profiles by component, micro-costs, what importing us loads.

- Profiles (pyinstrument, statistical, 1 ms interval) of ``ChatCustomLLM`` ``invoke``,
  ``stream``, ``astream_events(v2)`` and ``abatch``: self time per component (ours,
  langchain-core, pydantic, httpx stack, json, asyncio, ...), time spent in C builtins
  counted for the Python code that called them; the call trees go to ``bench/profiles/``.
- Micro-costs: best-of-5 ``timeit`` of single steps on the hot paths.
- Import: ``-X importtime`` of what ``from langchain_customllm import ChatCustomLLM`` loads
  on top of ``langchain_core.language_models.chat_models`` (what any chat model must load).
"""

from __future__ import annotations

import asyncio
import json
import re
import statistics
import subprocess
import sys
import sysconfig
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import clients as bc
import httpx
from harness import BENCH, bytecode_env, log
from langchain_core.messages import AIMessageChunk, BaseMessage, HumanMessage

from langchain_customllm import ChatCustomLLM

PROFILES = BENCH / "profiles"

STDLIB = sysconfig.get_paths()["stdlib"]


def category(path: str | None) -> str | None:
    """The component a source file belongs to (None: a C builtin, inherit the caller's)."""
    if not path or path.startswith("<"):
        return None
    if "/langchain_customllm/" in path:
        return "ours (langchain_customllm)"
    if "/langchain_core/" in path:
        return "langchain-core"
    if "/langsmith/" in path:
        return "langsmith (called by core)"
    if "/pydantic/" in path or "/pydantic_core/" in path:
        return "pydantic"
    if re.search(r"/(httpx|httpcore|h11|anyio|httpx2|httpcore2|sniffio)/", path):
        return "httpx / httpcore / h11 / anyio"
    if "/aiohttp/" in path or "/httpx_aiohttp/" in path:
        return "aiohttp"
    if "/json/" in path and path.startswith(STDLIB):
        return "json (stdlib)"
    if "/asyncio/" in path and path.startswith(STDLIB):
        return "asyncio (stdlib)"
    if path.startswith(STDLIB) and "site-packages" not in path:
        return "other stdlib"
    if "/bench/" in path or "/pyinstrument/" in path:
        return "benchmark harness"
    return "other third-party"


def attribute(root: Any) -> tuple[dict[str, float], dict[str, float]]:
    """Self time per component and per function; builtins charged to their caller."""
    cats: dict[str, float] = defaultdict(float)
    funcs: dict[str, float] = defaultdict(float)
    stack: list[tuple[Any, str, str]] = [(root, "benchmark harness", "?")]
    while stack:
        frame, cat, func = stack.pop()
        if frame.is_synthetic:
            cats[cat] += frame.time
            funcs[func] += frame.time
            continue
        own = category(frame.file_path)
        if own is not None:
            cat = own
            short = frame.file_path_short or frame.file_path or "?"
            func = f"{frame.function} ({short.split('site-packages/')[-1]}:{frame.line_no})"
        for child in frame.children:
            stack.append((child, cat, func))
    return dict(cats), dict(funcs)


def profile(name: str, fn: Callable[[], Any]) -> dict[str, Any]:
    """Run fn under pyinstrument; save the call tree; return the breakdown."""
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.001)
    profiler.start()
    t0 = time.perf_counter()
    fn()
    wall = time.perf_counter() - t0
    profiler.stop()
    PROFILES.mkdir(exist_ok=True)
    (PROFILES / f"{name}.txt").write_text(
        profiler.output_text(unicode=True, color=False, show_all=False)
    )
    session = profiler.last_session
    assert session is not None
    cats, funcs = attribute(session.root_frame())
    total = sum(cats.values()) or 1.0
    top = sorted(funcs.items(), key=lambda kv: -kv[1])[:12]
    return {
        "wall_s": wall,
        "components": {k: v / total for k, v in sorted(cats.items(), key=lambda kv: -kv[1])},
        "top_functions": [(k, v / total) for k, v in top],
    }


def profiles(base_url: str, chunks: int, calls: int) -> dict[str, Any]:
    """Profile ChatCustomLLM's invoke, stream, astream_events and abatch."""
    model = ChatCustomLLM(model=bc.MODEL, base_url=base_url, max_tokens=chunks)
    model.invoke(bc.PROMPT)  # warm

    def invoke() -> None:
        for _ in range(calls):
            model.invoke(bc.PROMPT)

    def stream() -> None:
        for _ in model.stream(bc.PROMPT):
            pass

    def astream_events() -> None:
        async def go() -> None:
            async for _ in model.astream_events(bc.PROMPT, version="v2"):
                pass
            await model.aclose()

        asyncio.run(go())

    def abatch() -> None:
        async def go() -> None:
            await model.abatch([bc.PROMPT] * 64, config={"max_concurrency": 64})
            await model.abatch([bc.PROMPT] * calls, config={"max_concurrency": 64})
            await model.aclose()

        asyncio.run(go())

    out = {}
    for name, fn in (
        ("invoke", invoke),
        ("stream", stream),
        ("astream_events", astream_events),
        ("abatch", abatch),
    ):
        log(f"profile: {name}")
        out[name] = profile(name, fn)
    model.close()
    return out


def micro() -> dict[str, float | None]:
    """Per-operation cost (µs, best of 5: robust to load) of the steps on our hot paths."""
    import ssl
    import timeit

    import orjson
    from langchain_core.outputs import ChatGenerationChunk
    from stub_server import _chunk, _dumps
    from tenacity import Retrying, stop_after_attempt

    from langchain_customllm._assembly import Assembler
    from langchain_customllm._chunks import UsageSafeChunk
    from langchain_customllm._convert import piece_to_chat_chunk
    from langchain_customllm._framing import SSEDecoder, StreamEvent
    from langchain_customllm._retry import policy
    from langchain_customllm.formats.openai import OpenAIFormat

    data = _dumps(_chunk("chat", {"content": " tok"}, None)).decode()
    event = StreamEvent(data=data)
    fmt = OpenAIFormat()
    parsed = fmt.parse_event(event, chat=True)
    assembler = Assembler(None, False, bc.MODEL)
    piece = Assembler(None, False, bc.MODEL).feed(parsed)
    message = AIMessageChunk(content=" tok", id="chatcmpl-stub")
    sse = ("data: " + data + "\n\n").encode() * 300
    model = ChatCustomLLM(model=bc.MODEL, base_url="http://127.0.0.1:9/v1")
    provider = model._runtime().client
    msgs: list[BaseMessage] = [HumanMessage(bc.PROMPT)]
    prepared = model._prepare(msgs, None, {}, stream=False)
    whole = Assembler(None, False, bc.MODEL).whole(
        fmt.parse_response(
            {
                "id": "x",
                "model": bc.MODEL,
                "choices": [{"message": {"content": "Hello!"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 9, "completion_tokens": 9, "total_tokens": 18},
            },
            chat=True,
        )
    )
    ctx = ssl.create_default_context()

    def retry_loop() -> None:
        for attempt in Retrying(stop=stop_after_attempt(3), reraise=True):
            with attempt:
                pass

    def ours_retry_loop() -> None:
        for attempt in policy(provider.base_url, provider.max_retries, provider.sleep):
            with attempt:
                pass

    def decode_300() -> None:
        SSEDecoder().feed(sse)

    cases: dict[str, tuple[Callable[[], Any], int, int]] = {
        # name: (fn, calls per timing, units per call)
        "json.loads(one stream event)": (lambda: json.loads(data), 20000, 1),
        "orjson.loads(one stream event)": (lambda: orjson.loads(data), 20000, 1),
        "SSEDecoder.feed, per event (300 events per read)": (decode_300, 50, 300),
        "OpenAIFormat.parse_event (json.loads included)": (
            lambda: fmt.parse_event(event, chat=True),
            5000,
            1,
        ),
        "Assembler.feed": (lambda: assembler.feed(parsed), 5000, 1),
        "piece_to_chat_chunk (non-final piece)": (lambda: piece_to_chat_chunk(piece), 3000, 1),
        "AIMessageChunk(content=, id=)": (
            lambda: AIMessageChunk(content=" tok", id="chatcmpl-stub"),
            3000,
            1,
        ),
        "ChatGenerationChunk(message=)": (
            lambda: ChatGenerationChunk(message=message),
            3000,
            1,
        ),
        "UsageSafeChunk(message=)": (lambda: UsageSafeChunk(message=message), 3000, 1),
        "pydantic private attribute read (model._runtime_state)": (
            lambda: model._runtime_state,
            20000,
            1,
        ),
        "the same via model.__pydantic_private__[...]": (
            lambda: model.__pydantic_private__["_runtime_state"],  # type: ignore[index]
            20000,
            1,
        ),
        "ChatCustomLLM._runtime()": (model._runtime, 20000, 1),
        "tenacity Retrying loop, one attempt": (retry_loop, 2000, 1),
        "our tenacity policy loop, one attempt": (ours_retry_loop, 2000, 1),
        "RequestEncoder.content (json.dumps body)": (
            lambda: provider.encoder.content(prepared.request),
            3000,
            1,
        ),
        "ChatCustomLLM._prepare (params, body, Assembler)": (
            lambda: model._prepare(msgs, None, {}, stream=False),
            2000,
            1,
        ),
        "ChatCustomLLM._result (AIMessage, ChatResult)": (lambda: model._result(whole), 2000, 1),
        "httpx.AsyncClient() (loads the CA bundle)": (lambda: httpx.AsyncClient(), 3, 1),
        "httpx.AsyncClient(verify=<shared SSLContext>)": (
            lambda: httpx.AsyncClient(verify=ctx),
            20,
            1,
        ),
    }
    out: dict[str, float | None] = {}
    for name, (fn, number, units) in cases.items():
        try:
            best = min(timeit.repeat(fn, number=number, repeat=5))
            out[name] = best / (number * units) * 1e6
        except Exception as exc:  # a private API changed: n/a
            log(f"micro {name!r} unavailable: {type(exc).__name__}: {exc}")
            out[name] = None
    return out


_IMPORTTIME = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)")


def import_cost(runs: int) -> dict[str, Any]:
    """Modules that ``from langchain_customllm import ChatCustomLLM`` adds on top of core's."""
    env = bytecode_env()
    code = (
        bc.BLOCK_CODE
        + "import langchain_core.language_models.chat_models; "
        + "from langchain_customllm import ChatCustomLLM"
    )
    cum: dict[str, list[int]] = defaultdict(list)
    self_us: dict[str, list[int]] = defaultdict(list)
    depth: dict[str, int] = {}
    totals: list[int] = []
    for _ in range(runs + 1):
        proc = subprocess.run(  # noqa: S603
            [sys.executable, "-X", "importtime", "-c", code],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        lines = proc.stderr.splitlines()
        start = next(
            i
            for i, ln in enumerate(lines)
            if ln.endswith("| langchain_core.language_models.chat_models")
        )
        total = 0
        for line in lines[start + 1 :]:
            m = _IMPORTTIME.match(line)
            if not m:
                continue
            s, c, indent, mod = int(m[1]), int(m[2]), len(m[3]), m[4]
            self_us[mod].append(s)
            cum[mod].append(c)
            depth[mod] = indent // 2
            if indent <= 1:  # a top-level import: the package, then what its names load
                total += c
        totals.append(total)
    del totals[0]  # the first run warmed the bytecode cache
    med = {m: statistics.median(v[1:] or v) for m, v in cum.items()}
    own = {m: statistics.median(v[1:] or v) for m, v in self_us.items()}
    by_top: dict[str, float] = defaultdict(float)
    for mod, s in own.items():
        by_top[mod.split(".")[0]] += s
    return {
        "total_ms": statistics.median(totals) / 1e3,
        "by_package_ms": {
            k: v / 1e3 for k, v in sorted(by_top.items(), key=lambda kv: -kv[1]) if v >= 500
        },
        "ours_modules_ms": {
            m: (own[m] / 1e3, med[m] / 1e3)
            for m in sorted(med, key=lambda m: -med[m])
            if m.startswith("langchain_customllm") and med[m] >= 1000
        },
        "heaviest_ms": {
            m: (own[m] / 1e3, med[m] / 1e3)
            for m in sorted(own, key=lambda m: -own[m])[:15]
            if not m.startswith("langchain_customllm")
        },
        "depth": depth,
    }
