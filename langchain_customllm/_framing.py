r"""Sans-IO stream framing: bytes in, events out; no sockets, no awaits.

The sync and async stream loops feed the same decoder with whatever byte chunks the
transport hands them (any split: mid-line, mid-UTF-8 character, ``\\r`` and ``\\n`` of one
line ending in different reads) and get the same events, which is what makes the two loops
twins that differ only by ``for`` vs ``async for``.

- `SSEDecoder`: Server-Sent Events per the WHATWG spec: ``\\r\\n``/``\\r``/``\\n`` line ends,
  ``:`` comments, multi-line ``data:``, ``event:``/``id:``/``retry:`` fields, and a last
  event that the server did not close with a blank line (dispatched by `flush`).
- `NDJSONDecoder`: one JSON document per line (Ollama), blank lines ignored.
- `TextDecoder`: plain chunked text, each decoded piece is one event.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from typing import Literal, Protocol

__all__ = [
    "Framing",
    "FramingDecoder",
    "NDJSONDecoder",
    "SSEDecoder",
    "SSEEvent",
    "StreamEvent",
    "TextDecoder",
    "make_decoder",
]

Framing = Literal["sse", "ndjson", "text"]


@dataclass(frozen=True)
class StreamEvent:
    r"""One event of a streamed answer, as `WireFormat.parse_event` receives it.

    Attributes:
        data: The event's data: ``data:`` lines joined by ``\\n`` (SSE), one line (NDJSON),
            or a piece of text (plain text framing).
        event: The ``event:`` field, or None (the spec's default type, "message").
        id: The last ``id:`` seen, or None.
        retry: The ``retry:`` field in milliseconds, if the server sent one.

    """

    data: str
    event: str | None = None
    id: str | None = None
    retry: int | None = None


# The name this type had first (it began as the SSE decoder's event); kept for imports.
SSEEvent = StreamEvent


class FramingDecoder(Protocol):
    """What every decoder offers: feed bytes, then flush at end of stream."""

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Consume a chunk of bytes and return the events it completed."""
        ...

    def flush(self) -> list[SSEEvent]:
        """Return what is left at end of stream (an unterminated last event)."""
        ...


class _LineSplitter:
    """Incremental UTF-8 decoding and line splitting shared by the decoders.

    Invalid UTF-8 is replaced (U+FFFD) rather than raised: one bad byte from a server should
    not throw away the rest of an answer.
    """

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buf = ""
        # A chunk that ended in "\r" might be followed by the "\n" of the same line end.
        self._pending_cr = False

    def feed(self, chunk: bytes) -> list[str]:
        return self.split(self.decode(chunk))

    def decode(self, chunk: bytes) -> str:
        """The text of ``chunk`` (a character cut at its end waits for the next chunk)."""
        return self._decoder.decode(chunk)

    @property
    def idle(self) -> bool:
        """No part of a line is waiting: the next text starts a new line."""
        return not self._buf and not self._pending_cr

    def flush(self) -> list[str]:
        lines = self.split(self._decoder.decode(b"", final=True))
        if self._buf:
            lines.append(self._buf)
            self._buf = ""
        return lines

    def split(self, text: str) -> list[str]:
        """The lines ``text`` completes; an unfinished last line is kept for later."""
        if not text:
            return []
        if self._pending_cr:
            self._pending_cr = False
            if text.startswith("\n"):
                text = text[1:]
        data = self._buf + text
        if "\r" not in data:
            # The common case (servers send "\n"): one C-level split.
            parts = data.split("\n")
            self._buf = parts.pop()
            return parts
        lines: list[str] = []
        start = 0
        i = 0
        n = len(data)
        while i < n:
            ch = data[i]
            if ch == "\n" or ch == "\r":
                lines.append(data[start:i])
                if ch == "\r":
                    if i + 1 < n:
                        if data[i + 1] == "\n":
                            i += 1
                    else:
                        self._pending_cr = True
                start = i + 1
            i += 1
        self._buf = data[start:]
        return lines


class SSEDecoder:
    """Incremental Server-Sent Events decoder (see the module docstring)."""

    def __init__(self) -> None:
        self._lines = _LineSplitter()
        self._data: list[str] = []
        self._event: str | None = None
        self._last_id: str | None = None
        self._retry: int | None = None
        self._has_fields = False

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Consume bytes; return the events completed by a blank line."""
        text = self._lines.decode(chunk)
        if not self._has_fields and self._retry is None and self._lines.idle:
            events = self._only_data_events(text)
            if events is not None:
                return events
        return self._process(self._lines.split(text))

    def _only_data_events(self, text: str) -> list[SSEEvent] | None:
        r"""Events of text made only of whole ``data: ...`` events (what servers send), or None.

        The common read, one or more complete single-line events ending in ``\n\n``, read
        with one C-level split. Anything else (another field, a comment, ``\r``, a multi-line
        event, an unfinished event, pending state) returns None for the general path, which
        gives the same events.
        """
        if not (text.startswith("data: ") and text.endswith("\n\n")) or "\r" in text:
            return None
        events = []
        last_id = self._last_id
        for block in text[:-2].split("\n\n"):
            if not block.startswith("data: ") or "\n" in block:
                return None
            events.append(SSEEvent(block[6:], None, last_id, None))
        return events

    def flush(self) -> list[SSEEvent]:
        """End of stream: dispatch a last event the server did not terminate."""
        events = self._process(self._lines.flush())
        last = self._dispatch()
        if last is not None:
            events.append(last)
        return events

    def _process(self, lines: list[str]) -> list[SSEEvent]:
        events: list[SSEEvent] = []
        for line in lines:
            if not line:
                event = self._dispatch()
                if event is not None:
                    events.append(event)
                continue
            if line.startswith(":"):
                continue  # comment / keep-alive
            field, sep, value = line.partition(":")
            if sep and value.startswith(" "):
                value = value[1:]
            if field == "data":
                self._data.append(value)
                self._has_fields = True
            elif field == "event":
                self._event = value
                self._has_fields = True
            elif field == "id" and "\0" not in value:
                self._last_id = value
            elif field == "retry" and value.isascii() and value.isdigit():
                self._retry = int(value)
            # Unknown fields are ignored, as the spec says.
        return events

    def _dispatch(self) -> SSEEvent | None:
        if not self._has_fields:
            return None
        event = SSEEvent(
            data="\n".join(self._data), event=self._event, id=self._last_id, retry=self._retry
        )
        self._data = []
        self._event = None
        self._retry = None
        self._has_fields = False
        return event


class NDJSONDecoder:
    """Incremental newline-delimited JSON framing: one event per non-blank line."""

    def __init__(self) -> None:
        self._lines = _LineSplitter()

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Consume bytes; return one event per complete non-blank line."""
        return [SSEEvent(data=line) for line in self._lines.feed(chunk) if line.strip()]

    def flush(self) -> list[SSEEvent]:
        """End of stream: return a last line that had no newline."""
        return [SSEEvent(data=line) for line in self._lines.flush() if line.strip()]


class TextDecoder:
    """Plain chunked text: every decoded piece is an event (UTF-8 safe across reads)."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Consume bytes; return the text decoded so far as one event."""
        text = self._decoder.decode(chunk)
        return [SSEEvent(data=text)] if text else []

    def flush(self) -> list[SSEEvent]:
        """End of stream: return a trailing partial character, if any."""
        text = self._decoder.decode(b"", final=True)
        return [SSEEvent(data=text)] if text else []


def make_decoder(framing: Framing) -> FramingDecoder:
    """Return a fresh decoder for a framing name."""
    if framing == "sse":
        return SSEDecoder()
    if framing == "ndjson":
        return NDJSONDecoder()
    if framing == "text":
        return TextDecoder()
    raise ValueError(f"Unknown stream framing {framing!r}; expected 'sse', 'ndjson' or 'text'")
