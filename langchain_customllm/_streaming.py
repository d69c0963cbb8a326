"""The two stream loops, sync and async, over the same pure steps.

They differ only by ``for``/``async for`` and ``close``/``aclose``: decoding, parsing, stop
matching and metadata are all in the shared `_StreamRun` and `Assembler`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_customllm._assembly import Assembler, Piece
from langchain_customllm._client import ProviderClient
from langchain_customllm._exceptions import CustomLLMError
from langchain_customllm._framing import SSEEvent
from langchain_customllm.formats.base import (
    WireFormat,
    WireRequest,
    parse_event_safely,
    parse_response_safely,
)

__all__ = ["acomplete", "aiter_pieces", "complete", "iter_pieces"]


class _StreamRun:
    """The pure per-event step of one streamed answer."""

    __slots__ = ("assembler", "chat", "fmt", "info")

    def __init__(self, fmt: WireFormat, assembler: Assembler, chat: bool) -> None:
        self.fmt = fmt
        self.assembler = assembler
        self.chat = chat
        self.info: dict[str, Any] = {}  # the client notes the request id here

    def step(self, event: SSEEvent) -> Piece | None:
        parsed = parse_event_safely(self.fmt, event, chat=self.chat)
        if parsed is None:
            return None
        return self.assembler.feed(parsed)

    def attach_partial(self, error: CustomLLMError) -> None:
        # Output that already reached the caller is named on the error, never lost.
        if error.partial_text is None:
            error.partial_text = self.assembler.text_so_far
        if error.request_id is None:
            error.request_id = self.info.get("request_id")


def complete(
    client: ProviderClient,
    request: WireRequest,
    fmt: WireFormat,
    assembler: Assembler,
    *,
    chat: bool,
) -> Piece:
    """Send one request and turn the whole answer into the final piece."""
    try:
        body = client.send(request, fmt.error_message)
        return assembler.whole(parse_response_safely(fmt, body, chat=chat))
    except CustomLLMError as error:
        raise client.redact(error) from error.__cause__


async def acomplete(
    client: ProviderClient,
    request: WireRequest,
    fmt: WireFormat,
    assembler: Assembler,
    *,
    chat: bool,
) -> Piece:
    """Async twin of `complete`."""
    try:
        body = await client.asend(request, fmt.error_message)
        return assembler.whole(parse_response_safely(fmt, body, chat=chat))
    except CustomLLMError as error:
        raise client.redact(error) from error.__cause__


def iter_pieces(
    client: ProviderClient,
    request: WireRequest,
    fmt: WireFormat,
    assembler: Assembler,
    *,
    chat: bool,
    whole: bool = False,
) -> Iterator[Piece]:
    """Stream one answer: pieces to emit, then the final piece.

    With ``whole`` (or a format that cannot stream) the request is a plain one and its
    whole answer is the only piece: used where a server's streaming is known to be broken.
    """
    if whole or not fmt.supports_streaming:
        # The server cannot stream: one whole answer becomes the only (final) piece.
        yield complete(client, request, fmt, assembler, chat=chat)
        return
    run = _StreamRun(fmt, assembler, chat)
    events = client.stream(request, fmt.framing, fmt.error_message, run.info)
    try:
        # Read to the end of the body even after the end marker: a response closed early
        # cannot go back to the pool (its connection would be dropped).
        for event in events:
            piece = run.step(event)
            if piece is not None:
                yield piece
        yield assembler.finish()
    except CustomLLMError as error:
        run.attach_partial(error)
        raise client.redact(error) from error.__cause__
    finally:
        # Closing the event generator closes the HTTP response and frees the connection,
        # also when the caller stops early or a stop sequence ended the answer.
        events.close()


async def aiter_pieces(
    client: ProviderClient,
    request: WireRequest,
    fmt: WireFormat,
    assembler: Assembler,
    *,
    chat: bool,
    whole: bool = False,
) -> AsyncIterator[Piece]:
    """Async twin of `iter_pieces`."""
    if whole or not fmt.supports_streaming:
        yield await acomplete(client, request, fmt, assembler, chat=chat)
        return
    run = _StreamRun(fmt, assembler, chat)
    events = client.astream(request, fmt.framing, fmt.error_message, run.info)
    try:
        async for event in events:
            piece = run.step(event)
            if piece is not None:
                yield piece
        yield assembler.finish()
    except CustomLLMError as error:
        run.attach_partial(error)
        raise client.redact(error) from error.__cause__
    finally:
        await events.aclose()
