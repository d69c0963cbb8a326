"""Stop sequences enforced on our side, identically for whole answers and streams.

Stops are sent to the server too, but servers differ (TGI returns the stop text, some
gateways drop the parameter, a custom API may not have one), so the client enforces them.

The rule, chosen to be independent of how a stream is chunked: the answer ends at the stop
occurrence that *completes first* (smallest end position), which is what a server checking
after every token does; among occurrences ending at the same place the longest wins. The
text before it is kept; with ``include_stop=True`` the stop itself is kept too.

While streaming, `StopMatcher` holds back only the longest tail of the text that could still
become the start of a stop sequence; everything else is released at once, so a stop split
across chunks is never emitted and nothing else is delayed.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["StopMatcher", "truncate_at_stop"]


def _first_completed(
    text: str, stops: Sequence[str], search_from: int = 0
) -> tuple[int, int] | None:
    """Return (start, end) of the stop occurrence that completes first, or None.

    Only occurrences ending after ``search_from`` are looked for.
    """
    best: tuple[int, int] | None = None
    for stop in stops:
        lo = max(0, search_from - len(stop) + 1)
        start = text.find(stop, lo)
        if start < 0:
            continue
        end = start + len(stop)
        if best is None or end < best[1] or (end == best[1] and start < best[0]):
            best = (start, end)
    return best


def truncate_at_stop(
    text: str, stops: Sequence[str] | None, include_stop: bool = False
) -> tuple[str, bool]:
    """Cut a whole answer at its first completed stop sequence.

    Args:
        text: The full answer.
        stops: Stop sequences; empty strings are ignored.
        include_stop: Keep the matched stop sequence at the end of the text.

    Returns:
        The (possibly shortened) text, and whether a stop sequence was found.

    """
    active = [s for s in stops or () if s]
    if not active:
        return text, False
    found = _first_completed(text, active)
    if found is None:
        return text, False
    return text[: found[1] if include_stop else found[0]], True


class StopMatcher:
    """Incremental stop matching for streams.

    Feed each piece of text to `push`, which returns what may be emitted now; once a stop
    has matched, `stopped` is True and further input is discarded. At the end of the stream
    `flush` releases the held-back tail (it was not a stop after all).

    The concatenation of all `push` results and `flush` equals
    ``truncate_at_stop(full_text, stops, include_stop)[0]`` for any chunking.
    """

    __slots__ = ("_buf", "_include", "_max_hold", "_stops", "stopped")

    def __init__(self, stops: Sequence[str] | None, include_stop: bool = False) -> None:
        self._stops = tuple(dict.fromkeys(s for s in stops or () if s))
        self._include = include_stop
        self._max_hold = max((len(s) for s in self._stops), default=1) - 1
        self._buf = ""
        self.stopped = False

    @property
    def active(self) -> bool:
        """Whether there is any stop sequence to match."""
        return bool(self._stops)

    def push(self, text: str) -> str:
        """Consume a piece of text; return the part that is safe to emit now."""
        if self.stopped:
            return ""
        if not self._stops:
            return text
        if not text:
            return ""
        held = len(self._buf)
        buf = self._buf + text
        found = _first_completed(buf, self._stops, search_from=held)
        if found is not None:
            self.stopped = True
            self._buf = ""
            return buf[: found[1] if self._include else found[0]]
        keep = self._holdback(buf)
        if keep:
            self._buf = buf[-keep:]
            return buf[:-keep]
        self._buf = ""
        return buf

    def flush(self) -> str:
        """End of stream: release the held-back tail (no stop completed)."""
        out, self._buf = self._buf, ""
        return "" if self.stopped else out

    def _holdback(self, buf: str) -> int:
        """Length of the longest tail of ``buf`` that is a proper prefix of some stop."""
        limit = min(self._max_hold, len(buf))
        for n in range(limit, 0, -1):
            tail = buf[-n:]
            for stop in self._stops:
                if len(stop) > n and stop.startswith(tail):
                    return n
        return 0
