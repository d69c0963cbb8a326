"""One way to call a model on each of its four call paths, shared by every test suite.

The unit, contract, matrix and fault tests all run one case on ``invoke``, ``ainvoke``,
``stream`` and ``astream`` (or on the two twins, ``sync``: invoke/stream, ``async``:
ainvoke/astream); they call through here so a path is exercised the same way everywhere.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from langchain_core.messages import AIMessageChunk

__all__ = [
    "MODES",
    "PATHS",
    "STREAM_PATHS",
    "call",
    "merge",
    "path_of",
    "run_invoke",
    "run_stream",
    "text_of",
    "whole_and_streamed",
]

PATHS = ("invoke", "ainvoke", "stream", "astream")
"""Every call path of a LangChain model, sync and async, whole answer and stream."""

STREAM_PATHS = frozenset({"stream", "astream"})
"""The paths that hand the caller chunks rather than one answer."""

MODES = ("sync", "async")
"""The two twins: ``sync`` runs invoke/stream, ``async`` ainvoke/astream."""


def path_of(mode: str, *, streamed: bool) -> str:
    """The call path of a twin (``sync``/``async``), whole answer or stream."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    if streamed:
        return "stream" if mode == "sync" else "astream"
    return "invoke" if mode == "sync" else "ainvoke"


def call(
    model: Any,
    path: str,
    value: Any,
    /,
    *,
    seen: list[Any] | None = None,
    aclose: Callable[[], Awaitable[None]] | None = None,
    **kwargs: Any,
) -> Any:
    """Call ``model`` on one path and return what that path gives the caller.

    Args:
        model: A ChatCustomLLM, CustomLLM or any LangChain Runnable.
        path: One of `PATHS`.
        value: The input.
        seen: Stream chunks are appended here as they arrive, so a stream that fails
            midway still shows what the caller had received.
        aclose: Awaited inside the event loop of an async path before it ends (an async
            client is bound to the loop that opened its connections).
        **kwargs: Passed to the model's method (``stop=...``, ``config=...``).

    Returns:
        The answer for invoke/ainvoke; the list of chunks for stream/astream.

    """
    if path not in PATHS:
        raise ValueError(f"path must be one of {PATHS}, not {path!r}")
    chunks: list[Any] = [] if seen is None else seen
    if path == "invoke":
        return model.invoke(value, **kwargs)
    if path == "stream":
        for chunk in model.stream(value, **kwargs):
            chunks.append(chunk)
        return chunks

    async def run() -> Any:
        try:
            if path == "ainvoke":
                return await model.ainvoke(value, **kwargs)
            async for chunk in model.astream(value, **kwargs):
                chunks.append(chunk)
            return chunks
        finally:
            if aclose is not None:
                await aclose()

    return asyncio.run(run())


def run_invoke(model: Any, value: Any, mode: str, /, **kwargs: Any) -> Any:
    """``invoke`` or ``ainvoke``: the same case on both twins."""
    return call(model, path_of(mode, streamed=False), value, **kwargs)


def run_stream(model: Any, value: Any, mode: str, /, **kwargs: Any) -> list[Any]:
    """``stream`` or ``astream``, collected."""
    chunks: list[Any] = call(model, path_of(mode, streamed=True), value, **kwargs)
    return chunks


def whole_and_streamed(
    model: Any, value: Any, mode: str, /, **kwargs: Any
) -> tuple[Any, list[Any], AIMessageChunk]:
    """One chat request whole and streamed on one twin, which must say the same.

    Returns:
        The whole answer, the stream's chunks and their merge; the merge has been checked
        to have the answer's text and finish reason.

    """
    whole = run_invoke(model, value, mode, **kwargs)
    chunks = run_stream(model, value, mode, **kwargs)
    full = merge(chunks)
    assert full.content == whole.content
    assert full.response_metadata["finish_reason"] == whole.response_metadata["finish_reason"]
    return whole, chunks, full


def merge(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    """Add a chat stream's chunks into the one message they make."""
    full = chunks[0]
    for chunk in chunks[1:]:
        full = full + chunk
    return full


def text_of(value: Any) -> str:
    """Text of what a path returned: an answer, a chunk, or a list of chunks.

    A CustomLLM gives strings, a ChatCustomLLM messages; a stream's chunks are joined.
    """
    if isinstance(value, list):
        return "".join(text_of(v) for v in value)
    return value if isinstance(value, str) else str(value.content)
