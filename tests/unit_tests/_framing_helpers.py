"""Shared by the _framing tests: decoder runners, chunk splitters, hypothesis settings."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import pairwise

from hypothesis import settings

from langchain_customllm._framing import (
    FramingDecoder,
    SSEEvent,
)

ENDINGS = ["\n", "\r\n", "\r"]
PROPS = settings(max_examples=200, deadline=None)
LIGHT = settings(max_examples=120, deadline=None)


# ----------------------------------------------------------------------------- helpers


def run(factory: Callable[[], FramingDecoder], chunks: Sequence[bytes]) -> list[SSEEvent]:
    """Feed every chunk to a fresh decoder, then flush; return all events in order."""
    decoder = factory()
    events: list[SSEEvent] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    events.extend(decoder.flush())
    return events


def bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def split_at(data: bytes, points: Sequence[int]) -> list[bytes]:
    """Split ``data`` at the given offsets (clamped, sorted; duplicates give empty chunks)."""
    cuts = sorted(min(max(p, 0), len(data)) for p in points)
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in pairwise(bounds)]


def sse(text: str, nl: str = "\n") -> bytes:
    """Write a document with ``\\n`` and convert to the wanted line ending."""
    return text.replace("\n", nl).encode("utf-8")
