"""``prof.py``'s layered timings: the same work with one layer of ours added at a time.

Raw httpx; our client's events; + parsing and assembly; + LangChain objects; +
langchain-core's ``invoke``/``stream`` machinery; next to langchain-core's own floor,
measured with ``NullChat``, a chat model that does no I/O at all. Private APIs of the
package are used read-only; if they change, that layer shows n/a.
"""

from __future__ import annotations

import json
import statistics
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import clients as bc
import httpx
from harness import log, rotated
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from langchain_customllm import ChatCustomLLM


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


def _layers(base_url: str, chunks: int) -> tuple[dict[str, Any], dict[str, Any], Any]:
    """(invoke layers, stream layers, cleanup): each layer a zero-arg callable."""
    from langchain_customllm._convert import piece_to_chat_chunk
    from langchain_customllm._streaming import complete, iter_pieces

    model = ChatCustomLLM(model=bc.MODEL, base_url=base_url, max_tokens=chunks)
    null = NullChat(chunks=chunks)
    raw = bc.raw_httpx(base_url, chunks)
    raw_bytes = bc.raw_httpx_bytes(base_url, chunks)
    msgs: list[BaseMessage] = [HumanMessage(bc.PROMPT)]
    runtime = model._runtime()
    client, fmt = runtime.client, runtime.wire

    def prep(stream: bool) -> tuple[Any, Any, dict[str, Any]]:
        # (request, assembler, extra keyword arguments for iter_pieces) from the private
        # _prepare, whose answer also says whether to fetch a whole answer.
        prepared = model._prepare(msgs, None, {}, stream=stream)
        return prepared.request, prepared.assembler, {"whole": prepared.whole}

    def send() -> Any:
        request, _, _ = prep(False)
        return client.send(request, fmt.error_message)

    def complete_() -> Any:
        request, assembler, _ = prep(False)
        return complete(runtime, request, assembler, chat=True)

    def events() -> int:
        request, _, _ = prep(True)
        return sum(1 for _ in client.stream(request, fmt.framing, fmt.error_message))

    def pieces() -> int:
        request, assembler, extra = prep(True)
        return sum(1 for _ in iter_pieces(runtime, request, assembler, chat=True, **extra))

    def chunks_() -> int:
        request, assembler, extra = prep(True)
        return sum(
            1
            for p in iter_pieces(runtime, request, assembler, chat=True, **extra)
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
        model.close()

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
    await model.aclose()
    return out


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
