"""JSON for answers and stream events: orjson when installed, same results as ``json``.

Decoding one stream event is a large share of the per-chunk cost (5 µs with ``json``, 2 µs
with orjson, measured in bench/RESULTS.md), and langsmith already brings orjson on CPython.
orjson refuses some things ``json`` reads (``NaN``/``Infinity``, which some servers put in
logprobs; lone surrogates): those are decoded again by ``json``, so they read the same and
bad input raises the standard library's error. One difference remains: orjson reads an
integer beyond 64 bits as a float (no field of an LLM answer holds such a number).
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["dumps", "loads", "quick_loads"]

try:
    import orjson
except ImportError:  # PyPy, or an environment without it: the standard library only
    orjson = None  # type: ignore[assignment]


def _loads_orjson(data: str | bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


loads = json.loads if orjson is None else _loads_orjson
"""Decode JSON text or UTF-8 bytes; raises ``ValueError`` (``json.JSONDecodeError``)."""

quick_loads = json.loads if orjson is None else orjson.loads
"""`loads` without its fallback, for the per-event hot path (one C call, no Python frame).

orjson refuses a few things ``json`` reads (see the module docstring): after a ``ValueError``
from it, call `loads`, which reads those as ``json`` does or raises ``json``'s error.
"""


def _dumps_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


dumps = _dumps_json if orjson is None else orjson.dumps
"""Encode a value of JSON types as compact UTF-8 JSON bytes (the gateway's answers and
stream events)."""
