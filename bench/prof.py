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

Private APIs of the package are used read-only; if they change, that layer shows n/a.
Usage: ``python bench/prof.py [--quick] [--no-write]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import sysconfig
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import clients as bc
import httpx
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from run import RESULTS_MD, bytecode_env, log, rotated, start_stub

from langchain_customllm import ChatCustomLLM

BENCH = Path(__file__).resolve().parent
PROFILES = BENCH / "profiles"
PROFILE_JSON = BENCH / "results" / "profile.json"
BEGIN, END = "<!-- BEGIN GENERATED: bench/prof.py -->", "<!-- END GENERATED: bench/prof.py -->"
STDLIB = sysconfig.get_paths()["stdlib"]


# --------------------------------------------------------------------------- floors


class NullChat(BaseChatModel):
    """A chat model with no I/O: langchain-core's own cost per call and per chunk."""

    chunks: int = 16

    @property
    def _llm_type(self) -> str:
        return "null"

    def _generate(
        self, messages: list[BaseMessage], stop: list[str] | None = None, **kwargs: Any
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content="Hello!"))])

    def _stream(
        self, messages: list[BaseMessage], stop: list[str] | None = None, **kwargs: Any
    ) -> Iterator[ChatGenerationChunk]:
        for _ in range(self.chunks):
            yield ChatGenerationChunk(message=AIMessageChunk(content=" tok"))

    async def _astream(
        self, messages: list[BaseMessage], stop: list[str] | None = None, **kwargs: Any
    ) -> AsyncIterator[ChatGenerationChunk]:
        for _ in range(self.chunks):
            yield ChatGenerationChunk(message=AIMessageChunk(content=" tok"))


# --------------------------------------------------------------------------- layers


def _layers(base_url: str, chunks: int) -> tuple[dict[str, Any], dict[str, Any], Any]:
    """(invoke layers, stream layers, cleanup): each layer a zero-arg callable."""
    from langchain_customllm._convert import piece_to_chat_chunk
    from langchain_customllm._streaming import complete, iter_pieces

    model = ChatCustomLLM(model=bc.MODEL, base_url=base_url, max_tokens=chunks)
    null = NullChat(chunks=chunks)
    raw = bc.raw_httpx(base_url, chunks)
    raw_bytes = bc.raw_httpx_bytes(base_url, chunks)
    msgs: list[BaseMessage] = [HumanMessage(bc.PROMPT)]
    client, fmt = model._client(), model._wire()

    def prep(stream: bool) -> tuple[Any, Any, dict[str, Any]]:
        # (request, assembler, extra keyword arguments for iter_pieces) across versions of
        # the private _prepare: it may return a third "whole" flag.
        prepared = model._prepare(msgs, None, {}, stream=stream)
        extra = {"whole": prepared[2]} if len(prepared) > 2 else {}
        return prepared[0], prepared[1], extra

    def send() -> Any:
        request, _, _ = prep(False)
        return client.send(request, fmt.error_message)

    def complete_() -> Any:
        request, assembler, _ = prep(False)
        return complete(client, request, fmt, assembler, chat=True)

    def events() -> int:
        request, _, _ = prep(True)
        return sum(1 for _ in client.stream(request, fmt.framing, fmt.error_message))

    def pieces() -> int:
        request, assembler, extra = prep(True)
        return sum(1 for _ in iter_pieces(client, request, fmt, assembler, chat=True, **extra))

    def chunks_() -> int:
        request, assembler, extra = prep(True)
        return sum(
            1
            for p in iter_pieces(client, request, fmt, assembler, chat=True, **extra)
            if piece_to_chat_chunk(p) is not None
        )

    invoke = {
        "raw httpx (post + json.loads)": raw.invoke,
        "ours: ProviderClient.send (HTTP + retry wrapper + JSON)": send,
        "ours: + parse + assemble (_streaming.complete)": complete_,
        "ours: + LangChain message (ChatCustomLLM._generate)": lambda: model._generate(msgs),
        "ours: ChatCustomLLM.invoke (+ langchain-core)": lambda: model.invoke(bc.PROMPT),
        "floor: langchain-core alone (NullChat.invoke, no I/O)": lambda: null.invoke(bc.PROMPT),
    }
    stream = {
        "raw httpx (iter_bytes, split, json.loads)": raw_bytes.stream,
        "raw httpx (iter_lines + json.loads)": raw.stream,
        "ours: ProviderClient.stream (SSE events, no JSON)": events,
        "ours: + parse + assemble (iter_pieces)": pieces,
        "ours: + LangChain chunk (piece_to_chat_chunk)": chunks_,
        "ours: ChatCustomLLM.stream (+ langchain-core)": lambda: sum(
            1 for _ in model.stream(bc.PROMPT)
        ),
        "floor: langchain-core alone (NullChat.stream, no I/O)": lambda: sum(
            1 for _ in null.stream(bc.PROMPT)
        ),
    }

    def cleanup() -> None:
        raw.close()
        raw_bytes.close()
        client.close()

    return invoke, stream, cleanup


def _calls(pr: Any) -> int:
    import pstats

    return sum(v[1] for v in pstats.Stats(pr).stats.values())  # type: ignore[attr-defined]


def time_layers(
    layers: dict[str, Callable[[], Any]], rounds: int, reps: int, units: int
) -> dict[str, dict[str, float] | None]:
    """Per unit of each layer: median wall µs, median client CPU µs, Python calls.

    Interleaved over rounds. CPU time (``time.process_time``) leaves out the server and
    the time other processes held the CPU, so it is the steadier measure of our cost on a
    shared machine; the call count (one cProfile pass) does not depend on load at all.
    """
    import cProfile

    names = list(layers)
    wall: dict[str, list[float]] = defaultdict(list)
    cpu: dict[str, list[float]] = defaultdict(list)
    broken: set[str] = set()
    for name in names:
        try:
            layers[name]()
        except Exception as exc:  # a private API changed: show n/a, keep going
            log(f"layer {name!r} unavailable: {type(exc).__name__}: {exc}")
            broken.add(name)
    for rnd in range(rounds):
        for name in rotated(names, rnd):
            if name in broken:
                continue
            fn = layers[name]
            c0, t0 = time.process_time(), time.perf_counter()
            for _ in range(reps):
                fn()
            t1, c1 = time.perf_counter(), time.process_time()
            wall[name].append((t1 - t0) / (reps * units) * 1e6)
            cpu[name].append((c1 - c0) / (reps * units) * 1e6)
    out: dict[str, dict[str, float] | None] = {}
    for name in names:
        if name in broken:
            out[name] = None
            continue
        pr = cProfile.Profile()
        pr.enable()
        layers[name]()
        pr.disable()
        out[name] = {
            "wall_us": statistics.median(wall[name]),
            "cpu_us": statistics.median(cpu[name]),
            "calls": _calls(pr) / units,
        }
    return out


async def time_async_layers(
    base_url: str, chunks: int, rounds: int
) -> dict[str, dict[str, float] | None]:
    """Per chunk: raw async stream, ours astream / astream_events, core's floors."""
    import cProfile

    model = ChatCustomLLM(model=bc.MODEL, base_url=base_url, max_tokens=chunks)
    null = NullChat(chunks=chunks)
    raw = bc.raw_httpx(base_url, chunks, sync=False)

    async def count(it: Any) -> int:
        n = 0
        async for _ in it:
            n += 1
        return n

    assert raw.astream is not None
    layers: dict[str, Callable[[], Any]] = {
        "raw httpx AsyncClient (aiter_lines + json.loads)": raw.astream,
        "ours: ChatCustomLLM.astream": lambda: count(model.astream(bc.PROMPT)),
        "ours: ChatCustomLLM.astream_events(v2)": lambda: count(
            model.astream_events(bc.PROMPT, version="v2")
        ),
        "floor: NullChat.astream (no I/O)": lambda: count(null.astream(bc.PROMPT)),
        "floor: NullChat.astream_events(v2) (no I/O)": lambda: count(
            null.astream_events(bc.PROMPT, version="v2")
        ),
    }
    names = list(layers)
    wall: dict[str, list[float]] = defaultdict(list)
    cpu: dict[str, list[float]] = defaultdict(list)
    for rnd in range(rounds):
        for name in rotated(names, rnd):
            c0, t0 = time.process_time(), time.perf_counter()
            await layers[name]()
            t1, c1 = time.perf_counter(), time.process_time()
            wall[name].append((t1 - t0) / chunks * 1e6)
            cpu[name].append((c1 - c0) / chunks * 1e6)
    out: dict[str, dict[str, float] | None] = {}
    for name in names:
        pr = cProfile.Profile()
        pr.enable()
        await layers[name]()
        pr.disable()
        out[name] = {
            "wall_us": statistics.median(wall[name]),
            "cpu_us": statistics.median(cpu[name]),
            "calls": _calls(pr) / chunks,
        }
    await raw.aclose()
    await model._client().aclose()
    return out


# --------------------------------------------------------------------------- profiles


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
            await model._client().aclose()

        asyncio.run(go())

    def abatch() -> None:
        async def go() -> None:
            await model.abatch([bc.PROMPT] * 64, config={"max_concurrency": 64})
            await model.abatch([bc.PROMPT] * calls, config={"max_concurrency": 64})
            await model._client().aclose()

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
    model._client().close()
    return out


# --------------------------------------------------------------------------- no sockets


def invoke_without_sockets(rounds: int, reps: int) -> dict[str, float]:
    """µs per invoke with ``httpx.MockTransport`` (no sockets, no server): client cost only.

    The steadiest view of what each layer costs per call on a shared machine.
    """
    import timeit

    from stub_server import _WHOLE

    from langchain_customllm import CustomLLM

    bodies = {k: v.split(b"\r\n\r\n", 1)[1] for k, v in _WHOLE.items()}

    def handler(request: httpx.Request) -> httpx.Response:
        kind = "chat" if request.url.path.endswith("/chat/completions") else "text"
        return httpx.Response(
            200, content=bodies[kind], headers={"content-type": "application/json"}
        )

    transport = httpx.MockTransport(handler)
    url = "http://127.0.0.1:9/v1"
    raw_client = httpx.Client(transport=transport, timeout=120)
    body = json.dumps({"model": bc.MODEL, "messages": bc.MESSAGES}).encode()
    ours_headers = {
        "accept": "application/json",
        "content-type": "application/json",
        "user-agent": "langchain-customllm/0.1",
    }
    timeout = httpx.Timeout(120)
    client_headers = httpx.Client(transport=transport, timeout=120, headers=ours_headers)

    def raw() -> Any:
        r = raw_client.post(url + "/chat/completions", content=body, headers=bc._HEADERS)
        return json.loads(r.content)["choices"][0]["message"]["content"]

    chat = ChatCustomLLM(
        model=bc.MODEL, base_url=url, http_client=httpx.Client(transport=transport)
    )
    text = CustomLLM(model=bc.MODEL, base_url=url, http_client=httpx.Client(transport=transport))
    null = NullChat()
    fns: dict[str, Callable[[], Any]] = {
        "raw httpx: post + json.loads": raw,
        "httpx request as ours sends it (3 headers + timeout per request)": lambda: (
            raw_client.request(
                "POST",
                url + "/chat/completions",
                headers=ours_headers,
                content=body,
                timeout=timeout,
            )
        ),
        "httpx request, headers and timeout set on the client instead": lambda: (
            client_headers.request("POST", url + "/chat/completions", content=body)
        ),
        "ChatCustomLLM.invoke": lambda: chat.invoke(bc.PROMPT),
        "CustomLLM.invoke": lambda: text.invoke(bc.PROMPT),
        "floor: NullChat.invoke (langchain-core, no I/O)": lambda: null.invoke(bc.PROMPT),
    }
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = defaultdict(list)
    for rnd in range(rounds):
        for name in rotated(list(fns), rnd):
            times[name].append(timeit.timeit(fns[name], number=reps) / reps * 1e6)
    return {k: statistics.median(v) for k, v in times.items()}


# --------------------------------------------------------------------------- micro


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
    from langchain_customllm._framing import SSEDecoder, SSEEvent
    from langchain_customllm.formats.openai import OpenAIFormat

    data = _dumps(_chunk("chat", {"content": " tok"}, None)).decode()
    event = SSEEvent(data=data)
    fmt = OpenAIFormat()
    parsed = fmt.parse_event(event, chat=True)
    assembler = Assembler(None, False, bc.MODEL)
    piece = Assembler(None, False, bc.MODEL).feed(parsed)
    message = AIMessageChunk(content=" tok", id="chatcmpl-stub")
    sse = ("data: " + data + "\n\n").encode() * 300
    model = ChatCustomLLM(model=bc.MODEL, base_url="http://127.0.0.1:9/v1")
    provider = model._client()
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
        for attempt in provider._retrying():
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
        "pydantic private attribute read (model._format)": (lambda: model._format, 20000, 1),
        "the same via model.__pydantic_private__[...]": (
            lambda: model.__pydantic_private__["_format"],  # type: ignore[index]
            20000,
            1,
        ),
        "ChatCustomLLM._wire()": (model._wire, 20000, 1),
        "ChatCustomLLM._client()": (model._client, 20000, 1),
        "tenacity Retrying loop, one attempt": (retry_loop, 2000, 1),
        "ProviderClient._retrying() loop, one attempt": (ours_retry_loop, 2000, 1),
        "ProviderClient._encode (json.dumps body)": (
            lambda: provider._encode(prepared[0]),
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


# --------------------------------------------------------------------------- import


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
            await model._client().aclose()
    return out


async def pool_study(base_url: str, calls: int, rounds: int) -> dict[str, float]:
    """req/s of abatch-like load through different async pools (interleaved)."""
    variants = [
        bc.raw_httpx(base_url, 16, name="raw httpx AsyncClient() (pool 100/20)", sync=False),
        bc.raw_httpx_pool64(base_url, 16),
        bc.raw_httpx_aiohttp(base_url, 16),
        bc.raw_httpx2(base_url, 16),
        bc.chat_customllm(base_url, 16, name="ChatCustomLLM (default: 16 pools of 16/4)"),
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


def write(res: dict[str, Any]) -> None:
    """bench/results/profile.json and the generated profile block of RESULTS.md."""
    PROFILE_JSON.parent.mkdir(exist_ok=True)
    PROFILE_JSON.write_text(json.dumps(res, indent=1, default=str) + "\n")
    block = f"{BEGIN}\n{render(res)}\n{END}"
    text = RESULTS_MD.read_text() if RESULTS_MD.exists() else "# Benchmark results\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text += f"\n## Profile (`bench/prof.py`)\n\n{block}\n"
    RESULTS_MD.write_text(text)


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
        write(res)
        log("wrote bench/results/profile.json and the profile block of bench/RESULTS.md")


if __name__ == "__main__":
    main()
