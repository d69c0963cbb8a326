"""Judging the embeddings endpoint: is there one, how wide, how large a batch (pure).

`embedding_exchanges` decides what to send and sends it through the prober's ``send`` (the
probe's only I/O); `judge_embeddings` reads the answers. Batches grow through
`BATCH_SIZES` until one is refused, so the largest accepted is known to that step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langchain_customllm.probe.records import Exchange, Facts, Judged, Row

__all__ = ["BATCH_SIZES", "embedding_exchanges", "judge_embeddings"]

BATCH_SIZES = (16, 64, 256)
"""The batch sizes tried after a single input, smallest first (short texts)."""

Send = Callable[..., Exchange]


def _body(model: str | None, count: int) -> dict[str, Any]:
    return {
        "model": model,
        "input": [f"probe sentence number {i}" for i in range(count)],
        "encoding_format": "float",
    }


def embedding_exchanges(send: Send, model: str | None) -> tuple[Exchange, list[Exchange]]:
    """Send one input, then growing batches until one fails: (single, batches)."""
    single = send("POST", "/embeddings", _body(model, 1))
    batches: list[Exchange] = []
    if _vectors(single) is None:
        return single, batches
    for size in BATCH_SIZES:
        batches.append(send("POST", "/embeddings", _body(model, size)))
        if len(_vectors(batches[-1]) or ()) != size:
            break
    return single, batches


def _vectors(ex: Exchange) -> list[Any] | None:
    data = ex.json() if ex.ok else None
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        return None
    return [item.get("embedding") if isinstance(item, dict) else None for item in items]


def judge_embeddings(single: Exchange, batches: list[Exchange]) -> Judged:
    """Rows and facts: ``embeddings`` (the endpoint), ``embedding_width``, ``embedding_batch``.

    Args:
        single: ``POST /embeddings`` with one input.
        batches: The same with `BATCH_SIZES` inputs, in order, up to the first failure.
    """
    label = "embeddings (/embeddings)"
    vectors = _vectors(single)
    if single.status is None:
        row = Row("embeddings", label, "no answer", None, single.summary())
        return [row], {"embeddings": None}
    if vectors is None:
        return [Row("embeddings", label, "no", False, single.summary())], {"embeddings": False}
    vector = vectors[0]
    facts: Facts = {"embeddings": True}
    if isinstance(vector, str):
        # Asked for floats, sent base64: a client that trusts the request reads 4x too few.
        evidence = "base64 although encoding_format float was asked for"
        return [Row("embeddings", label, "base64 only", True, evidence)], {
            **facts,
            "embedding_base64": True,
        }
    width = len(vector) if isinstance(vector, list) else 0
    facts.update(embedding_width=width, embedding_base64=False)
    rows = [Row("embeddings", label, f"yes, {width} wide", True, f"{single.status}, floats")]
    accepted, failed = 1, None
    for size, ex in zip(BATCH_SIZES, batches, strict=False):
        if len(_vectors(ex) or ()) != size:
            failed = (size, ex)
            break
        accepted = size
    if failed is None:
        result, evidence = f">= {accepted}", f"every batch tried was accepted (up to {accepted})"
    else:
        size, ex = failed
        # No answer in time is not a refusal: the server may take it, only slowly.
        result = f">= {accepted}" if ex.status is None else str(accepted)
        evidence = f"{size} inputs: {ex.summary()}"
    rows.append(Row("embedding_batch", "largest embeddings batch", result, True, evidence))
    facts["embedding_batch"] = accepted
    return rows, facts
