"""``customllm probe``'s embeddings rows: endpoint, width, largest batch (judged purely)."""

from __future__ import annotations

import json
from typing import Any

from langchain_customllm.probe.embed_facts import (
    BATCH_SIZES,
    embedding_exchanges,
    judge_embeddings,
)
from langchain_customllm.probe.records import Exchange


def _answer(count: int, vector: Any = None) -> Exchange:
    vector = [0.5] * 576 if vector is None else vector
    data = [{"index": i, "embedding": vector} for i in range(count)]
    return Exchange("POST", "/embeddings", status=200, text=json.dumps({"data": data}))


def _refused(status: int = 413) -> Exchange:
    body = {"error": {"message": "batch too large"}}
    return Exchange("POST", "/embeddings", status=status, text=json.dumps(body))


def _rows(single: Exchange, batches: list[Exchange]) -> dict[str, tuple[str, Any]]:
    rows, _ = judge_embeddings(single, batches)
    return {row.key: (row.result, row.supported) for row in rows}


def test_width_and_every_batch_accepted() -> None:
    rows, facts = judge_embeddings(_answer(1), [_answer(n) for n in BATCH_SIZES])
    assert facts == {
        "embeddings": True,
        "embedding_width": 576,
        "embedding_base64": False,
        "embedding_batch": BATCH_SIZES[-1],
    }
    assert [r.result for r in rows] == ["yes, 576 wide", f">= {BATCH_SIZES[-1]}"]


def test_largest_batch_before_a_refusal() -> None:
    rows = _rows(_answer(1), [_answer(BATCH_SIZES[0]), _refused()])
    assert rows["embedding_batch"] == (str(BATCH_SIZES[0]), True)


def test_a_timeout_is_not_a_refusal() -> None:
    lost = Exchange("POST", "/embeddings", error="ReadTimeout: timed out", error_kind="timeout")
    rows = _rows(_answer(1), [_answer(BATCH_SIZES[0]), lost])
    assert rows["embedding_batch"][0] == f">= {BATCH_SIZES[0]}"


def test_a_short_answer_is_a_refusal() -> None:
    rows = _rows(_answer(1), [_answer(BATCH_SIZES[0] - 1)])
    assert rows["embedding_batch"][0] == "1"


def test_no_endpoint() -> None:
    assert _rows(_refused(404), []) == {"embeddings": ("no", False)}


def test_no_answer() -> None:
    lost = Exchange("POST", "/embeddings", error="ConnectError: refused", error_kind="connect")
    assert _rows(lost, []) == {"embeddings": ("no answer", None)}


def test_base64_although_floats_were_asked() -> None:
    rows, facts = judge_embeddings(_answer(1, vector="AACAPw=="), [])
    assert rows[0].result == "base64 only"
    assert facts["embedding_base64"] is True


def test_batches_grow_until_one_fails() -> None:
    sent: list[int] = []

    def send(method: str, path: str, body: dict[str, Any]) -> Exchange:
        count = len(body["input"])
        sent.append(count)
        assert body["encoding_format"] == "float"
        return _refused() if count > BATCH_SIZES[0] else _answer(count)

    single, batches = embedding_exchanges(send, "m")
    assert sent == [1, BATCH_SIZES[0], BATCH_SIZES[1]]
    assert _rows(single, batches)["embedding_batch"][0] == str(BATCH_SIZES[0])


def test_no_batches_without_an_endpoint() -> None:
    sent: list[int] = []

    def send(method: str, path: str, body: dict[str, Any]) -> Exchange:
        sent.append(len(body["input"]))
        return _refused(404)

    embedding_exchanges(send, "m")
    assert sent == [1]
