"""The clients the benchmark compares, behind one small interface each.

Every client does the same work per call against the same stub server: one chat (or text)
request, the answer's text out; for streams, one chunk per server event. Libraries are
imported lazily, inside the factory that needs them, so a fresh process that measures one
client's peak RSS loads that client's dependencies only.

- ``raw httpx``: the floor. Sync ``httpx.Client`` for ``invoke``/``stream``,
  ``httpx.AsyncClient`` (default pool) for the async scenarios. Streams are read with
  ``iter_lines()``/``aiter_lines()`` and ``json.loads`` per ``data:`` event (what the issue
  measured as "raw httpx"); ``raw httpx (iter_bytes)`` splits events from ``iter_bytes``.
- ``ChatCustomLLM`` / ``CustomLLM``: ours, with default settings.
- ``ChatOpenAI``: langchain-openai pointed at the stub (it runs on the ``openai`` SDK).
- Transport variants for the ``abatch`` comparison (httpx-aiohttp, httpx2, pool limits).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

MODEL = "stub-model"
PROMPT = "Say hello."
MESSAGES = [{"role": "user", "content": PROMPT}]
# Packages that other packages import *if installed*, which only our dev extras bring:
# langsmith and the openai SDK load aiohttp for an optional transport (the bench extra has
# it), and httpx loads its command line's click/rich/pygments (the docs and test extras
# bring those). Our users don't get them from any client measured here, so fresh processes
# that measure import time or peak RSS block them, to measure the dependencies users get
# whichever extras this venv holds.
BENCH_ONLY_MODULES = ("httpx_aiohttp", "aiohttp", "click", "rich", "pygments")
BLOCK_CODE = f"import sys; sys.modules.update(dict.fromkeys({BENCH_ONLY_MODULES!r}, None)); "
"""Prefix for ``python -c`` code: makes importing the bench-only packages fail."""


def block_bench_only_modules() -> None:
    """Make ``import httpx_aiohttp`` / ``import aiohttp`` fail in this process."""
    sys.modules.update(dict.fromkeys(BENCH_ONLY_MODULES, None))  # type: ignore[arg-type]


# The pool our package uses (langchain_customllm._client._LIMITS), for the variants.
POOL_256_64 = {"max_connections": 256, "max_keepalive_connections": 64}


@dataclass
class Client:
    """One benchmarked client: the callables each scenario uses (None: not applicable).

    ``stream``/``astream``/``astream_events`` return how many chunks (events) the caller
    got; ``abatch(n, concurrency)`` runs n calls with at most ``concurrency`` in flight.
    """

    name: str
    invoke: Callable[[], Any] | None = None
    stream: Callable[[], int] | None = None
    ainvoke: Callable[[], Awaitable[Any]] | None = None
    abatch: Callable[[int, int], Awaitable[Any]] | None = None
    astream: Callable[[], Awaitable[int]] | None = None
    astream_events: Callable[[], Awaitable[int]] | None = None
    closers: list[Callable[[], Any]] = field(default_factory=list)
    aclosers: list[Callable[[], Awaitable[Any]]] = field(default_factory=list)

    def close(self) -> None:
        """Close the sync resources this client opened."""
        for close in self.closers:
            close()

    async def aclose(self) -> None:
        """Close the async resources this client opened."""
        for close in self.aclosers:
            await close()


def _body(chunks: int, *, stream: bool, chat: bool = True) -> bytes:
    body: dict[str, Any] = {"model": MODEL, "max_tokens": chunks}
    if chat:
        body["messages"] = MESSAGES
    else:
        body["prompt"] = PROMPT
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return json.dumps(body, separators=(",", ":")).encode()


_HEADERS = {"content-type": "application/json", "accept": "application/json"}
_SSE_HEADERS = {"content-type": "application/json", "accept": "text/event-stream"}


def _count_events_lines(lines: Any) -> int:
    count = 0
    for line in lines:
        if not line.startswith("data: "):
            continue
        data = line[6:]
        if data == "[DONE]":
            break
        obj = json.loads(data)
        choices = obj["choices"]
        if choices and choices[0]["delta"].get("content"):
            count += 1
    return count


def _count_events_bytes(pieces: Any) -> int:
    count = 0
    buf = b""
    for piece in pieces:
        buf += piece
        *events, buf = buf.split(b"\n\n")
        for event in events:
            if not event.startswith(b"data: "):
                continue
            data = event[6:]
            if data == b"[DONE]":
                return count
            choices = json.loads(data)["choices"]
            if choices and choices[0]["delta"].get("content"):
                count += 1
    return count


async def _abatch_raw(call: Callable[[], Awaitable[Any]], n: int, concurrency: int) -> None:
    sem = asyncio.Semaphore(concurrency)

    async def one() -> Any:
        async with sem:
            return await call()

    await asyncio.gather(*(one() for _ in range(n)))


def raw_httpx(
    base_url: str,
    chunks: int,
    *,
    name: str = "raw httpx",
    async_factory: Callable[[], Any] | None = None,
    sync: bool = True,
) -> Client:
    """Plain httpx: POST the JSON body, ``json.loads`` the answer (or each SSE event)."""
    import httpx

    url = base_url + "/chat/completions"
    invoke_body = _body(chunks, stream=False)
    stream_body = _body(chunks, stream=True)
    client = Client(name)
    if sync:
        sclient = httpx.Client(timeout=120)
        client.closers.append(sclient.close)

        def invoke() -> str:
            response = sclient.post(url, content=invoke_body, headers=_HEADERS)
            response.raise_for_status()
            content: str = json.loads(response.content)["choices"][0]["message"]["content"]
            return content

        def stream() -> int:
            with sclient.stream("POST", url, content=stream_body, headers=_SSE_HEADERS) as r:
                r.raise_for_status()
                return _count_events_lines(r.iter_lines())

        client.invoke = invoke
        client.stream = stream
    holder: dict[str, Any] = {}

    def aclient() -> Any:
        # Created lazily inside the running loop (aiohttp needs one).
        if "c" not in holder:
            holder["c"] = async_factory() if async_factory else httpx.AsyncClient(timeout=120)
        return holder["c"]

    async def ainvoke() -> str:
        response = await aclient().post(url, content=invoke_body, headers=_HEADERS)
        response.raise_for_status()
        content: str = json.loads(response.content)["choices"][0]["message"]["content"]
        return content

    async def abatch(n: int, concurrency: int) -> None:
        await _abatch_raw(ainvoke, n, concurrency)

    async def astream() -> int:
        count = 0
        async with aclient().stream("POST", url, content=stream_body, headers=_SSE_HEADERS) as r:
            r.raise_for_status()
            async for line in r.aiter_lines():
                if not line.startswith("data: "):
                    continue
                data = line[6:]
                if data == "[DONE]":
                    break
                choices = json.loads(data)["choices"]
                if choices and choices[0]["delta"].get("content"):
                    count += 1
        return count

    async def aclose() -> None:
        if "c" in holder:
            await holder.pop("c").aclose()

    client.ainvoke = ainvoke
    client.abatch = abatch
    client.astream = astream
    client.aclosers.append(aclose)
    return client


def raw_httpx_bytes(base_url: str, chunks: int) -> Client:
    """Raw httpx streaming from ``iter_bytes`` (events split by hand), sync only."""
    import httpx

    url = base_url + "/chat/completions"
    stream_body = _body(chunks, stream=True)
    sclient = httpx.Client(timeout=120)

    def stream() -> int:
        with sclient.stream("POST", url, content=stream_body, headers=_SSE_HEADERS) as r:
            r.raise_for_status()
            return _count_events_bytes(r.iter_bytes())

    return Client("raw httpx (iter_bytes)", stream=stream, closers=[sclient.close])


def _raw_async(base_url: str, chunks: int, name: str, client_cls: Any, limits_cls: Any) -> Client:
    """Raw httpx's async path on ``client_cls`` with our package's pool limits; async only."""
    return raw_httpx(
        base_url,
        chunks,
        name=name,
        sync=False,
        async_factory=lambda: client_cls(timeout=120, limits=limits_cls(**POOL_256_64)),
    )


def raw_httpx_aiohttp(base_url: str, chunks: int) -> Client:
    """Raw httpx API over the aiohttp transport (``httpx_aiohttp.HttpxAiohttpClient``)."""
    import httpx
    from httpx_aiohttp import HttpxAiohttpClient

    return _raw_async(base_url, chunks, "raw httpx-aiohttp", HttpxAiohttpClient, httpx.Limits)


def raw_httpx_pool64(base_url: str, chunks: int) -> Client:
    """Raw httpx with our package's pool limits (256 connections, 64 kept alive)."""
    import httpx

    return _raw_async(base_url, chunks, "raw httpx (pool 256/64)", httpx.AsyncClient, httpx.Limits)


def raw_httpx2(base_url: str, chunks: int) -> Client:
    """The ``httpx2`` fork (what the openai SDK, so ChatOpenAI, runs on); async only."""
    import httpx2

    return _raw_async(base_url, chunks, "raw httpx2", httpx2.AsyncClient, httpx2.Limits)


def _lc(name: str, model: Any, stream_event: str) -> Client:
    """Adapter for a LangChain model (chat or text)."""

    def stream() -> int:
        count = 0
        for _ in model.stream(PROMPT):
            count += 1
        return count

    async def astream() -> int:
        count = 0
        async for _ in model.astream(PROMPT):
            count += 1
        return count

    async def astream_events() -> int:
        count = 0
        async for event in model.astream_events(PROMPT, version="v2"):
            if event["event"] == stream_event:
                count += 1
        return count

    async def abatch(n: int, concurrency: int) -> None:
        await model.abatch([PROMPT] * n, config={"max_concurrency": concurrency})

    async def ainvoke() -> Any:
        return await model.ainvoke(PROMPT)

    return Client(
        name,
        invoke=lambda: model.invoke(PROMPT),
        stream=stream,
        ainvoke=ainvoke,
        abatch=abatch,
        astream=astream,
        astream_events=astream_events,
    )


def _our_closers(client: Client, model: Any) -> Client:
    # Close the pooled clients the model opened (private API; the benchmark only).
    client.closers.append(model.close)
    client.aclosers.append(model.aclose)
    return client


def chat_customllm(
    base_url: str, chunks: int, *, name: str = "ChatCustomLLM", **kwargs: Any
) -> Client:
    """Our chat model, default settings."""
    from langchain_customllm import ChatCustomLLM

    model = ChatCustomLLM(model=MODEL, base_url=base_url, max_tokens=chunks, **kwargs)
    return _our_closers(_lc(name, model, "on_chat_model_stream"), model)


def _ours_on(base_url: str, chunks: int, name: str, make_client: Callable[[], Any]) -> Client:
    """Our chat model given ``http_async_client=make_client()`` (async only)."""
    from langchain_customllm import ChatCustomLLM

    holder: dict[str, Any] = {}

    def model() -> Any:
        # Created inside the running loop: an aiohttp session needs one.
        if "m" not in holder:
            holder["c"] = make_client()
            holder["m"] = ChatCustomLLM(
                model=MODEL, base_url=base_url, max_tokens=chunks, http_async_client=holder["c"]
            )
        return holder["m"]

    async def abatch(n: int, concurrency: int) -> None:
        await model().abatch([PROMPT] * n, config={"max_concurrency": concurrency})

    async def astream() -> int:
        count = 0
        async for _ in model().astream(PROMPT):
            count += 1
        return count

    async def aclose() -> None:
        if "c" in holder:
            await holder["c"].aclose()
            holder.clear()

    return Client(name, abatch=abatch, astream=astream, aclosers=[aclose])


def chat_customllm_aiohttp(base_url: str, chunks: int) -> Client:
    """Our chat model with ``http_async_client=HttpxAiohttpClient(...)`` (async only)."""
    import httpx
    from httpx_aiohttp import HttpxAiohttpClient

    return _ours_on(
        base_url,
        chunks,
        "ChatCustomLLM + httpx-aiohttp",
        lambda: HttpxAiohttpClient(timeout=120, limits=httpx.Limits(**POOL_256_64)),
    )


def chat_customllm_default_pool(base_url: str, chunks: int) -> Client:
    """Our chat model given a default ``httpx.AsyncClient()`` (20 keep-alive connections)."""
    import httpx

    return _ours_on(
        base_url,
        chunks,
        "ChatCustomLLM + httpx.AsyncClient() (pool 100/20)",
        lambda: httpx.AsyncClient(timeout=120),
    )


def customllm(base_url: str, chunks: int) -> Client:
    """Our text-completion model, default settings."""
    from langchain_customllm import CustomLLM

    model = CustomLLM(model=MODEL, base_url=base_url, max_tokens=chunks)
    return _our_closers(_lc("CustomLLM", model, "on_llm_stream"), model)


def chat_openai(base_url: str, chunks: int) -> Client:
    """langchain-openai's ChatOpenAI pointed at the stub (usage in streams, like ours)."""
    from langchain_openai import ChatOpenAI

    model = ChatOpenAI(
        model=MODEL,
        base_url=base_url,
        api_key="bench",  # type: ignore[arg-type]
        max_tokens=chunks,  # type: ignore[call-arg]
        stream_usage=True,
        max_retries=2,
        timeout=120,
    )
    return _lc("ChatOpenAI", model, "on_chat_model_stream")


CORE_FLOOR = "floor: langchain-core alone (no I/O)"


def core_floor(base_url: str, chunks: int) -> Client:
    """A chat model that does no I/O: langchain-core's own cost per streamed chunk.

    Its ``_stream``/``_astream`` yield ``chunks`` text chunks built as any chat model builds
    them (validated ``AIMessageChunk`` in a ``ChatGenerationChunk``), so what a real client
    costs beyond raw httpx + this row is its own work. ``base_url`` is unused.
    """
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import AIMessageChunk
    from langchain_core.outputs import ChatGenerationChunk

    class NullChat(BaseChatModel):
        @property
        def _llm_type(self) -> str:
            return "null"

        def _generate(self, *args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError

        def _stream(self, *args: Any, **kwargs: Any) -> Any:
            for _ in range(chunks):
                yield ChatGenerationChunk(message=AIMessageChunk(content=" tok", id="stub-1"))

        async def _astream(self, *args: Any, **kwargs: Any) -> Any:
            for _ in range(chunks):
                yield ChatGenerationChunk(message=AIMessageChunk(content=" tok", id="stub-1"))

    return _lc(CORE_FLOOR, NullChat(), "on_chat_model_stream")


FACTORIES: dict[str, Callable[[str, int], Client]] = {
    "raw httpx": raw_httpx,
    "ChatCustomLLM": chat_customllm,
    "CustomLLM": customllm,
    "ChatOpenAI": chat_openai,
}
"""The four clients of every scenario, in table order."""
