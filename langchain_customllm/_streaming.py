"""The two stream loops, sync and async, over the same pure steps.

They differ only by ``for``/``async for`` and ``close``/``aclose``: decoding, parsing, stop
matching and metadata are all in the shared `_StreamRun` and `Assembler`. With the call's
`Prompt`, a prompt too long for the context window can be refused before sending, and an
answer without usage gets it counted (`langchain_customllm._counting`).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_customllm._assembly import Assembler, Piece
from langchain_customllm._counting import Prompt, acheck_fits, afill_usage, check_fits, fill_usage
from langchain_customllm._exceptions import (
    ContextLengthExceededError,
    CustomLLMError,
    StreamError,
)
from langchain_customllm._framing import StreamEvent
from langchain_customllm._runtime import Runtime
from langchain_customllm.formats.base import (
    WireRequest,
    parse_event_safely,
    parse_response_safely,
)

# llama-cpp-python answers a prompt longer than its context with 200 and an empty stream.
_EMPTY_STREAM_HINT = (
    " -- the server sent nothing at all: an empty stream at once often means the prompt is "
    "too long for the model's context (invoke() gets ContextLengthExceededError from such a "
    "server); shorten it, or lower max_tokens"
)
# A rough size of a request in tokens, used only to explain an empty stream.
_CHARS_PER_TOKEN = 4

__all__ = ["acomplete", "aiter_pieces", "complete", "iter_pieces"]


class _StreamRun:
    """The pure per-event step of one streamed answer."""

    __slots__ = ("assembler", "chat", "context_window", "events", "fmt", "info", "request")

    def __init__(
        self, runtime: Runtime, request: WireRequest, assembler: Assembler, chat: bool
    ) -> None:
        self.fmt = runtime.wire
        self.context_window = runtime.profile.context_window
        self.request = request
        self.assembler = assembler
        self.chat = chat
        self.events = 0
        self.info: dict[str, Any] = {}  # the client notes the request id here

    def step(self, event: StreamEvent) -> Piece | None:
        self.events += 1
        parsed = parse_event_safely(self.fmt, event, chat=self.chat)
        if parsed is None:
            return None
        return self.assembler.feed(parsed)

    def explain(self, error: CustomLLMError) -> CustomLLMError:
        """The error to raise: with the output so far, and the likely cause of an empty stream."""
        # Output that already reached the caller is named on the error, never lost.
        if error.partial_text is None:
            error.partial_text = self.assembler.text_so_far
        if error.request_id is None:
            error.request_id = self.info.get("request_id")
        if not isinstance(error, StreamError) or self.events or error.partial_text:
            return error
        # Nothing at all came back: the likeliest cause is a prompt the context cannot hold.
        tokens = len(json.dumps(self.request.body)) // _CHARS_PER_TOKEN
        if self.context_window is not None and tokens >= self.context_window:
            return ContextLengthExceededError(
                f"The server sent an empty stream, and the request (about {tokens} tokens at "
                f"{_CHARS_PER_TOKEN} characters a token) does not fit its context of "
                f"{self.context_window} tokens (server_profile context_window) -- shorten "
                "the prompt or lower max_tokens",
                request_id=error.request_id,
                partial_text="",
            )
        error.message += _EMPTY_STREAM_HINT
        error.args = (error.message,)
        return error


def complete(
    runtime: Runtime,
    request: WireRequest,
    assembler: Assembler,
    *,
    chat: bool,
    prompt: Prompt | None = None,
) -> Piece:
    """Send one request and turn the whole answer into the final piece.

    With ``prompt``, the prompt is checked against the context window first (if its
    settings ask) and usage the answer lacks is counted.
    """
    client, fmt = runtime.client, runtime.wire
    check_fits(runtime, prompt)
    try:
        info: dict[str, Any] = {}
        body = client.send(request, fmt.error_message, info)
        assembler.answered_by(info.get("replica"))
        piece = assembler.whole(parse_response_safely(fmt, body, chat=chat))
    except CustomLLMError as error:
        raise client.redact(error) from error.__cause__
    return fill_usage(runtime, prompt, assembler, piece)


async def acomplete(
    runtime: Runtime,
    request: WireRequest,
    assembler: Assembler,
    *,
    chat: bool,
    prompt: Prompt | None = None,
) -> Piece:
    """Async twin of `complete`."""
    client, fmt = runtime.client, runtime.wire
    await acheck_fits(runtime, prompt)
    try:
        info: dict[str, Any] = {}
        body = await client.asend(request, fmt.error_message, info)
        assembler.answered_by(info.get("replica"))
        piece = assembler.whole(parse_response_safely(fmt, body, chat=chat))
    except CustomLLMError as error:
        raise client.redact(error) from error.__cause__
    return await afill_usage(runtime, prompt, assembler, piece)


def iter_pieces(
    runtime: Runtime,
    request: WireRequest,
    assembler: Assembler,
    *,
    chat: bool,
    whole: bool = False,
    prompt: Prompt | None = None,
) -> Iterator[Piece]:
    """Stream one answer: pieces to emit, then the final piece.

    With ``whole`` (or a format that cannot stream) the request is a plain one and its
    whole answer is the only piece: used where a server's streaming is known to be broken.
    """
    client, fmt = runtime.client, runtime.wire
    if whole or not fmt.supports_streaming:
        # The server cannot stream: one whole answer becomes the only (final) piece.
        yield complete(runtime, request, assembler, chat=chat, prompt=prompt)
        return
    check_fits(runtime, prompt)
    run = _StreamRun(runtime, request, assembler, chat)
    events = client.stream(request, fmt.framing, fmt.error_message, run.info)
    try:
        # Read to the end of the body even after the end marker: a response closed early
        # cannot go back to the pool (its connection would be dropped).
        for event in events:
            piece = run.step(event)
            if piece is not None:
                yield piece
        assembler.answered_by(run.info.get("replica"))
        final = assembler.finish()
    except CustomLLMError as error:
        raise client.redact(run.explain(error)) from error.__cause__
    finally:
        # Closing the event generator closes the HTTP response and frees the connection,
        # also when the caller stops early or a stop sequence ended the answer.
        events.close()
    # After the stream is closed: counting sends requests of its own, and never raises.
    yield fill_usage(runtime, prompt, assembler, final)


async def aiter_pieces(
    runtime: Runtime,
    request: WireRequest,
    assembler: Assembler,
    *,
    chat: bool,
    whole: bool = False,
    prompt: Prompt | None = None,
) -> AsyncIterator[Piece]:
    """Async twin of `iter_pieces`."""
    client, fmt = runtime.client, runtime.wire
    if whole or not fmt.supports_streaming:
        yield await acomplete(runtime, request, assembler, chat=chat, prompt=prompt)
        return
    await acheck_fits(runtime, prompt)
    run = _StreamRun(runtime, request, assembler, chat)
    events = client.astream(request, fmt.framing, fmt.error_message, run.info)
    try:
        async for event in events:
            piece = run.step(event)
            if piece is not None:
                yield piece
        assembler.answered_by(run.info.get("replica"))
        final = assembler.finish()
    except CustomLLMError as error:
        raise client.redact(run.explain(error)) from error.__cause__
    finally:
        await events.aclose()
    yield await afill_usage(runtime, prompt, assembler, final)
