"""JSON decoding for answers and stream events: orjson when installed, same results as ``json``.

Decoding one stream event is a large share of the per-chunk cost (5 µs with ``json``, 2 µs
with orjson, measured in bench/RESULTS.md), and langsmith already brings orjson on CPython.
orjson is stricter than ``json`` (no ``NaN``/``Infinity``, which some servers put in
logprobs; no integers beyond 64 bits; no lone surrogates), so whatever it refuses is decoded
again by ``json``: the result and the error for bad input are exactly the standard library's.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["loads"]

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
