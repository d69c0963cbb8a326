"""Sans-IO reading of one stream body: bytes in, events out, and the checks a body needs.

Beside `_framing` (which only splits bytes into events), an `EventReader` keeps what one
response needs judged: the first bytes, to quote them when no event ever comes out (a proxy's
page, a server that ignored ``stream``); and the time since the last complete event, to give
up on a server that trickles bytes without finishing one (``stream_chunk_timeout``). No
sockets, no awaits: the sync and async client loops feed it the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from langchain_customllm._exceptions import StreamTimeoutError
from langchain_customllm._framing import Framing, StreamEvent, make_decoder

__all__ = ["EventReader", "is_not_a_stream"]

_QUOTED_BYTES = 512


def is_not_a_stream(headers: Mapping[str, str], framing: Framing) -> bool:
    """Whether an SSE stream was asked for and an HTML page or a JSON object came back.

    A proxy's page, a wrong URL, or a server that ignored ``stream``: say so, instead of
    failing on its content as if it were a broken stream.
    """
    if framing != "sse":
        return False
    kind = str(headers.get("content-type", "")).lower()
    return kind.startswith(("text/html", "application/json"))


class EventReader:
    """Decodes one stream body and watches it (see the module docstring).

    Args:
        framing: How the body is framed (``"sse"``, ``"ndjson"``, ``"text"``).
        chunk_timeout: Seconds bytes may keep coming without a complete event before
            `StreamTimeoutError`; None: no limit.
        clock: The monotonic clock; by default ``time.monotonic``.
    """

    __slots__ = ("_clock", "_decoder", "_last", "_limit", "events", "first_bytes")

    def __init__(
        self,
        framing: Framing,
        chunk_timeout: float | None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._decoder = make_decoder(framing)
        self._limit = chunk_timeout
        self._clock = clock or time.monotonic
        self._last = self._clock()
        self.events = 0
        """How many events the body has given so far."""
        self.first_bytes = b""
        """The start of the body while no event came out of it (quoted in errors)."""

    def feed(self, raw: bytes) -> list[StreamEvent]:
        """The events that these bytes complete.

        Raises:
            StreamTimeoutError: If bytes keep arriving but no event completed within the
                chunk timeout (a trickle, or keep-alives only).
        """
        if not self.events and len(self.first_bytes) < _QUOTED_BYTES:
            self.first_bytes += raw[: _QUOTED_BYTES - len(self.first_bytes)]
        events = self._decoder.feed(raw)
        if self._limit is not None:
            now = self._clock()
            if events:
                self._last = now
            elif now - self._last > self._limit:
                raise StreamTimeoutError(
                    f"No complete stream event for {self._limit} s (stream_chunk_timeout) "
                    "although bytes keep arriving -- the text received so far is in "
                    "`partial_text`"
                )
        self.events += len(events)
        return events

    def finish(self) -> list[StreamEvent]:
        """The events the end of the body completes (a last event left unterminated)."""
        tail = self._decoder.flush()
        self.events += len(tail)
        return tail

    @property
    def unreadable(self) -> bool:
        """Whether bytes came but not one event: the body is something other than a stream."""
        return not self.events and bool(self.first_bytes)
