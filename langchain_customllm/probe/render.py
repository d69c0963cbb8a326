"""Rendering a `ProbeReport` as a table or JSON, and the profiles as a table (pure)."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence

from langchain_customllm.probe.scoring import PROFILE_FIELDS, ProbeReport, py_literal
from langchain_customllm.profiles import PROFILES, profile_dict

_TEXT_EVIDENCE_CHARS = 64


def _widths(rows: Sequence[Sequence[str]], count: int) -> list[int]:
    """The width of each of the first ``count`` columns."""
    return [max(len(row[i]) for row in rows) for i in range(count)]


def _aligned(row: Sequence[str], widths: Sequence[int]) -> str:
    """The cells padded to their column's width, two spaces apart."""
    return "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row))


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], width: int) -> list[str]:
    """Aligned columns; the last one is wrapped to ``width`` characters."""
    widths = _widths([header, *rows], len(header) - 1)
    lines = []
    for row in [header, *rows]:
        lead = _aligned(row[:-1], widths) + "  "
        wrapped = textwrap.wrap(row[-1], width, break_on_hyphens=False, break_long_words=False)
        wrapped = wrapped or [""]
        lines.append(lead + wrapped[0])
        lines += [" " * len(lead) + more for more in wrapped[1:]]
    return [line.rstrip() for line in lines]


_MARKS = {True: "+", False: "-", None: "?"}


def render_text(report: ProbeReport, evidence_width: int = _TEXT_EVIDENCE_CHARS) -> str:
    """The report as the table people read (pure).

    Args:
        report: The probe's findings.
        evidence_width: The evidence column is wrapped at this many characters.

    Returns:
        The text, ending with a newline.
    """
    lines = [
        f"customllm probe: {report.base_url}  model {report.model}  "
        f"({report.requests} requests, {report.duration_s:.1f} s)",
        "",
    ]
    table_rows = [
        [f"{_MARKS[row.supported]} {row.label}", row.result, row.evidence] for row in report.rows
    ]
    lines += _table(["  capability", "result", "evidence"], table_rows, evidence_width)
    lines.append("")
    best = report.best
    if best is None:
        lines.append("Best matching profile: none (nothing could be measured)")
    else:
        hint = f"; server looks like {report.server_hint}" if report.server_hint else ""
        lines.append(
            f"Best matching profile: {best.name} "
            f"({best.agree}/{best.compared} measured facts agree{hint})"
        )
        others = ", ".join(f"{m.name} {m.agree}/{m.compared}" for m in report.matches[1:])
        if others:
            lines.append(f"  others: {others}")
        if best.differences:
            lines.append(f"  differences from {best.name} (profile → measured):")
            for key, (profile_value, measured) in best.differences.items():
                lines.append(f"    {key}: {py_literal(profile_value)} → {py_literal(measured)}")
        else:
            lines.append(f"  differences from {best.name}: none")
    lines += ["", "Recommended:", f"  {report.recommendation()}"]
    if report.notes:
        lines += ["", "Notes:"]
        lines += [f"  - {note}" for note in report.notes]
    return "\n".join(lines) + "\n"


def render_json(report: ProbeReport) -> str:
    """The report as one JSON object (``--json``), pure."""
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"


def render_profiles(markdown: bool = False) -> str:
    """The `PROFILES` as a table: one row per field, one column per profile (pure).

    Args:
        markdown: A Markdown table (for the docs) instead of aligned text.
    """
    names = list(PROFILES)
    header = ["field", *names]
    rows = [[k, *(py_literal(profile_dict(PROFILES[n])[k]) for n in names)] for k in PROFILE_FIELDS]
    if markdown:
        out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        out += [
            "| " + " | ".join(f"`{c}`" if i else c for i, c in enumerate(r)) + " |" for r in rows
        ]
        return "\n".join(out) + "\n"
    widths = _widths([header, *rows], len(header))
    out = [_aligned(r, widths).rstrip() for r in [header, *rows]]
    return "\n".join(out) + "\n"
