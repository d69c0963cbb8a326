"""Server-sent events that stop the backend when the client leaves, and end honestly.

Starlette's `StreamingResponse` notices a client that left only when it next writes (ASGI
2.4), or cancels its writer task from a listener (older servers, uvicorn's 2.3); either
way the body iterator is not closed, and a backend stream that is mid-prefill keeps going
until garbage collection. `EventStream` runs the body in a task of its own beside a
listener for ``http.disconnect``: when the client leaves, that task is cancelled at once,
wherever it waits, and the event iterator is closed, which closes the backend's HTTP
response (`ChatCustomLLM`'s streams close their response on exit).

It also decides how a stream ends:

- the first event is awaited before the response starts, so a backend that fails at once
  (a 429 with its ``Retry-After``, a 502) gets its real status and OpenAI error JSON;
- a failure after that ends the stream with ``data: {"error": {...}}``, never ``[DONE]``,
  so no client mistakes a cut answer for a whole one;
- a stream the gateway ends because it is shutting down (`EventStream.stop`, called when
  the grace period is nearly over) says so with the same error event.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from langchain_customllm._json import dumps
from langchain_customllm.serve.errors import GatewayError

__all__ = ["ClientGoneError", "EventStream", "merge_streams", "unless_client_leaves"]

_T = TypeVar("_T")
_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    # Proxies (nginx) must not buffer a stream.
    (b"x-accel-buffering", b"no"),
]
# What a stream cut by the server's own shutdown says.
_SHUTDOWN = GatewayError(
    503,
    "The gateway shut down before this answer was complete (its grace period for open "
    "streams ran out); send the request again",
    type="server_error",
    code="shutting_down",
)


async def _disconnected(receive: Receive) -> None:
    """Return when the client has gone (the request body is already read)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


class ClientGoneError(Exception):
    """The client disconnected before its (whole) answer was ready; the call was cancelled."""


async def unless_client_leaves(receive: Receive, work: Awaitable[_T]) -> _T:
    """Await ``work`` (a whole answer), cancelling it if the client disconnects first.

    The request body must already be read: what ``receive`` brings next is the disconnect.
    ``work`` runs in the calling task and a watcher task cancels that task when the client
    leaves: one task per request instead of two and a wait (each costs the event loop a turn,
    which is most of what this gateway adds on a small machine).

    Raises:
        ClientGoneError: The client left; ``work`` was cancelled (its backend request closed).
    """
    current = asyncio.current_task()
    assert current is not None
    gone = False

    async def watch() -> None:
        nonlocal gone
        await _disconnected(receive)
        gone = True
        current.cancel()

    watcher = asyncio.ensure_future(watch())
    try:
        result = await work
    except asyncio.CancelledError:
        if not gone:
            raise  # cancelled from outside (shutdown): not ours to swallow
        _uncancel(current)
        raise ClientGoneError from None
    finally:
        watcher.cancel()
    if gone:  # something inside ``work`` swallowed the cancellation; the client left anyway
        _uncancel(current)
        raise ClientGoneError
    return result


def _uncancel(task: asyncio.Task[Any]) -> None:
    # Python 3.11+ counts cancellations; the watcher's is handled here, so take it back
    # (timeouts and task groups further up read the count). 3.10 has no count.
    uncancel = getattr(task, "uncancel", None)
    if uncancel is not None:
        uncancel()


class EventStream(Response):
    """An SSE response over an async generator of encoded events.

    Args:
        events: The encoded events, ``[DONE]`` included; closed however the stream ends.
        fail: Maps an exception to the error to report (and counts it); called once.
        open_streams: Where the stream is registered while it runs, so a shutdown can
            `stop` it.
    """

    def __init__(
        self,
        events: AsyncGenerator[bytes, None],
        fail: Callable[[BaseException], GatewayError],
        open_streams: set[EventStream],
    ) -> None:
        self.events = events
        self.fail = fail
        self.open_streams = open_streams
        self.status_code = 200
        self.background = None
        self.client_gone = False
        self._producer: asyncio.Future[None] | None = None

    def stop(self) -> None:
        """End the stream now with a "shutting down" error event (the client is still there)."""
        if self._producer is not None:
            self._producer.cancel()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Stream the events; stop at once when the client disconnects."""
        producer = self._producer = asyncio.ensure_future(self._produce(send))
        listener = asyncio.ensure_future(_disconnected(receive))
        self.open_streams.add(self)
        try:
            await asyncio.wait((producer, listener), return_when=asyncio.FIRST_COMPLETED)
        finally:  # also when this task is cancelled
            self.open_streams.discard(self)
            if not producer.done():
                self.client_gone = listener.done() and not listener.cancelled()
                producer.cancel()
                await asyncio.gather(producer, return_exceptions=True)
            listener.cancel()

    async def _produce(self, send: Send) -> None:
        started = False
        try:
            async for data in self.events:
                if not started:
                    await send(
                        {
                            "type": "http.response.start",
                            "status": 200,
                            "headers": _SSE_HEADERS,
                        }
                    )
                    started = True
                await send({"type": "http.response.body", "body": data, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not self.client_gone:
                with contextlib.suppress(Exception):
                    await self._send_error(send, self.fail(_SHUTDOWN), started)
            raise
        except Exception as exc:
            # A client that left makes the write fail too (ASGI 2.4 servers): nothing to do.
            with contextlib.suppress(Exception):
                await self._send_error(send, self.fail(exc), started)
        finally:
            await self.events.aclose()

    async def _send_error(self, send: Send, error: GatewayError, started: bool) -> None:
        if started:
            body = b"data: " + dumps(error.payload()) + b"\n\n"
        else:
            body = error.json()
            headers = [(b"content-type", b"application/json")]
            headers += [(k.encode(), v.encode()) for k, v in error.headers.items()]
            await send({"type": "http.response.start", "status": error.status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})


_END: Any = object()


async def merge_streams(
    streams: list[AsyncIterator[_T]],
) -> AsyncGenerator[tuple[int, _T | None], None]:
    """Interleave several streams as their items come.

    Yields ``(index, item)``, and ``(index, None)`` when stream ``index`` ends. Every
    stream is closed on exit.

    Raises:
        Exception: The first error of any stream (the others are then cancelled).
    """
    queue: asyncio.Queue[tuple[int, Any, BaseException | None]] = asyncio.Queue()

    async def pump(index: int, stream: AsyncIterator[_T]) -> None:
        try:
            async with contextlib.aclosing(stream):  # type: ignore[type-var]
                async for item in stream:
                    await queue.put((index, item, None))
            await queue.put((index, _END, None))
        except Exception as exc:
            await queue.put((index, None, exc))

    tasks = [asyncio.ensure_future(pump(i, stream)) for i, stream in enumerate(streams)]
    try:
        left = len(tasks)
        while left:
            index, item, error = await queue.get()
            if error is not None:
                raise error
            if item is _END:
                left -= 1
                yield index, None
            else:
                yield index, item
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
