"""The text table `UsageTracker` prints: one row per model, a total, and footnotes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

__all__ = ["Counts", "format_table"]


class Counts(Protocol):
    """What a row shows (a `ModelUsage`)."""

    requests: int
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    reasoning_tokens: int
    cost: float | None
    unpriced_requests: int
    cache_hits: int


_COLUMNS = ("model", "requests", "input", "output", "cached", "reasoning", "cost (USD)")


def format_table(by_model: Mapping[str, Counts], total: Counts) -> str:
    """A small text table: one row per model and a total row, with footnotes."""
    rows = [_row(name, usage) for name, usage in sorted(by_model.items())]
    rows.append(_row("total", total))
    widths = [max(len(r[i]) for r in [_COLUMNS, *rows]) for i in range(len(_COLUMNS))]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([first, *rest]).rstrip()

    out = [line(_COLUMNS), *(line(r) for r in rows)]
    notes = []
    if total.unpriced_requests:
        notes.append(
            f"* {total.unpriced_requests} request(s) without a price or usage: not in the cost"
        )
    if total.cache_hits:
        notes.append(f"{total.cache_hits} answer(s) from LangChain's cache: no tokens, no cost")
    return "\n".join(out + notes)


def _row(name: str, usage: Counts) -> tuple[str, ...]:
    return (
        name,
        str(usage.requests),
        str(usage.input_tokens),
        str(usage.output_tokens),
        str(usage.cached_tokens),
        str(usage.reasoning_tokens),
        _money(usage.cost) + ("*" if usage.unpriced_requests else ""),
    )


def _money(cost: float | None) -> str:
    if cost is None:
        return "n/a"
    if cost == 0 or cost >= 0.000001:
        return f"{cost:.6f}"
    return f"{cost:.2e}"
