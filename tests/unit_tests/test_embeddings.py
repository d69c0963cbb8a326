"""CustomLLMEmbeddings over the OpenAI format: requests, answer checks, batching, errors."""

from __future__ import annotations

import pickle
from typing import Any

import httpx
import pytest

from langchain_customllm import (
    AuthenticationError,
    ConfigurationError,
    ContextLengthExceededError,
    CustomLLMEmbeddings,
    ResponseError,
)
from tests.unit_tests._embed_helpers import (
    KEY,
    EmbedServer,
    documents,
    openai_answer,
    query,
    vector_of,
)

TEXTS = ["alpha", "beta", "gamma", "delta", "epsilon"]


# ----------------------------------------------------------------- requests


def test_request_is_raw_strings_and_floats(mode: str) -> None:
    server = EmbedServer()
    vectors = documents(server.model(), mode, TEXTS)
    assert vectors == [vector_of(t) for t in TEXTS]
    assert server.paths == ["/v1/embeddings"]
    assert server.bodies == [{"model": "embedder", "input": TEXTS, "encoding_format": "float"}]


def test_dimensions_truncate_and_extra_body_are_sent() -> None:
    server = EmbedServer(lambda b: httpx.Response(200, json=openai_answer(b["input"])))
    model = server.model(dimensions=3, truncate=True, extra_body={"user": "u1"})
    model.embed_documents(["a"])
    assert server.bodies[0] == {
        "model": "embedder",
        "input": ["a"],
        "encoding_format": "float",
        "dimensions": 3,
        "truncate_prompt_tokens": -1,
        "user": "u1",
    }


def test_empty_list_sends_nothing(mode: str) -> None:
    server = EmbedServer()
    assert documents(server.model(), mode, []) == []
    assert server.bodies == []


def test_instructions_prefix_queries_and_documents(mode: str) -> None:
    server = EmbedServer()
    model = server.model(query_instruction="query: ", document_instruction="passage: ")
    assert query(model, mode, "where?") == vector_of("query: where?")
    documents(model, mode, ["text"])
    assert [b["input"] for b in server.bodies] == [["query: where?"], ["passage: text"]]


# ----------------------------------------------------------------- answers


def test_vectors_are_put_back_in_index_order(mode: str) -> None:
    # The fake answers in reverse order; only `index` says which vector is whose.
    assert documents(EmbedServer().model(), mode, TEXTS) == [vector_of(t) for t in TEXTS]


def test_base64_answers_are_decoded_as_little_endian_float32(mode: str) -> None:
    server = EmbedServer(lambda b: httpx.Response(200, json=openai_answer(b["input"], b64=True)))
    # Read as anything but float32 the vectors would be a quarter or twice as wide.
    assert documents(server.model(), mode, TEXTS) == [vector_of(t) for t in TEXTS]


@pytest.mark.parametrize(
    ("answer", "match"),
    [
        (
            lambda texts: {**openai_answer(texts), "data": openai_answer(texts)["data"][1:]},
            "returned 4 vectors for 5 inputs \\(inputs 0 to 4\\)",
        ),
        (lambda texts: {"object": "list", "data": [], "model": "m"}, "no `data` list"),
        (lambda texts: {"error": "No embedding data received"}, "no `data` list"),
        (lambda texts: {"data": [{"index": 0, "embedding": [1.0]}] * 5}, "index 0 twice"),
        (lambda texts: {"data": [{"index": 9, "embedding": [1.0]}]}, "index 9, outside"),
        (lambda texts: {"data": [{"index": 0}]}, "has no `embedding`"),
        (lambda texts: {"data": [{"index": 0, "embedding": "%%%"}]}, "not base64"),
        (lambda texts: {"data": [{"index": 0, "embedding": "AAAAAAA="}]}, "5 bytes"),
        (lambda texts: {"data": [{"index": 0, "embedding": [1, "x"]}]}, "non-numbers"),
        (lambda texts: {"data": [{"index": 0, "embedding": {"v": 1}}]}, "not a list of numbers"),
    ],
)
def test_bad_answers_are_typed_and_say_what_came(answer: Any, match: str, mode: str) -> None:
    server = EmbedServer(lambda b: httpx.Response(200, json=answer(b["input"])))
    texts = TEXTS if "5 inputs" in match else ["one"]
    with pytest.raises(ResponseError, match=match):
        documents(server.model(max_retries=0), mode, texts)


def test_mixed_widths_name_the_input(mode: str) -> None:
    def answer(body: dict[str, Any]) -> httpx.Response:
        data = openai_answer(body["input"], shuffle=False)
        data["data"][2]["embedding"] = [1.0, 2.0]
        return httpx.Response(200, json=data)

    with pytest.raises(ResponseError, match="Input 2 came back 2 wide and input 0 3 wide"):
        documents(EmbedServer(answer).model(), mode, TEXTS)


def test_mixed_widths_across_batches_are_caught() -> None:
    def answer(body: dict[str, Any]) -> httpx.Response:
        data = openai_answer(body["input"])
        if body["input"][0] == "gamma":
            for item in data["data"]:
                item["embedding"] = item["embedding"] + [0.0]
        return httpx.Response(200, json=data)

    with pytest.raises(ResponseError, match="Input 2 came back 4 wide"):
        EmbedServer(answer).model(chunk_size=2).embed_documents(TEXTS)


def test_empty_vectors_are_refused() -> None:
    server = EmbedServer(lambda b: httpx.Response(200, json={"data": [{"embedding": []}]}))
    with pytest.raises(ResponseError, match="empty vector"):
        server.model().embed_query("x")


def test_width_must_equal_dimensions(mode: str) -> None:
    with pytest.raises(ResponseError, match="3 wide, not dimensions=8 -- the server ignored"):
        documents(EmbedServer().model(dimensions=8), mode, TEXTS)


# ----------------------------------------------------------------- batching


def test_batches_by_count_keep_the_order(mode: str) -> None:
    server = EmbedServer()
    texts = [f"text {i}" * (i % 3 + 1) for i in range(23)]
    assert documents(server.model(chunk_size=5), mode, texts) == [vector_of(t) for t in texts]
    assert [len(b["input"]) for b in server.bodies] == [5, 5, 5, 5, 3]


def test_batches_by_bytes(mode: str) -> None:
    server = EmbedServer()
    texts = ["é" * 100] * 6  # 600 bytes of JSON each (\u00e9 escapes)
    assert documents(server.model(max_batch_bytes=1300), mode, texts) == [vector_of(texts[0])] * 6
    assert [len(b["input"]) for b in server.bodies] == [2, 2, 2]


def test_a_text_over_the_byte_cap_goes_alone() -> None:
    server = EmbedServer()
    server.model(max_batch_bytes=10).embed_documents(["a" * 50, "b", "c"])
    assert [b["input"] for b in server.bodies] == [["a" * 50], ["b", "c"]]


@pytest.mark.parametrize("limit", [1, 3])
def test_concurrency_is_bounded(mode: str, limit: int) -> None:
    server = EmbedServer(delay=0.02)
    texts = [str(i) for i in range(12)]
    model = server.model(chunk_size=1, max_concurrency=limit)
    assert documents(model, mode, texts) == [vector_of(t) for t in texts]
    assert server.peak == limit


def test_413_halves_the_batch_until_it_fits(mode: str) -> None:
    def answer(body: dict[str, Any]) -> httpx.Response:
        if len(body["input"]) > 2:
            return httpx.Response(
                413, json={"error": "batch too large", "error_type": "Validation"}
            )
        return httpx.Response(200, json=openai_answer(body["input"]))

    server = EmbedServer(answer)
    assert documents(server.model(), mode, TEXTS) == [vector_of(t) for t in TEXTS]
    assert [len(b["input"]) for b in server.bodies] == [5, 2, 3, 1, 2]


def _refuse_long(body: dict[str, Any]) -> httpx.Response:
    if any(len(t) > 20 for t in body["input"]):
        message = "This model's maximum context length is 8 tokens"
        return httpx.Response(400, json={"error": {"message": message, "code": 400}})
    return httpx.Response(200, json=openai_answer(body["input"]))


def test_a_too_long_input_is_named(mode: str) -> None:
    texts = ["a", "b", "c" * 30, "d"]
    with pytest.raises(ContextLengthExceededError, match="Input 2 is too long") as caught:
        documents(EmbedServer(_refuse_long).model(), mode, texts)
    assert caught.value.index == 2  # type: ignore[attr-defined]
    assert "set truncate=True" in str(caught.value)


def test_truncate_says_the_server_did_not() -> None:
    with pytest.raises(ContextLengthExceededError, match="does not truncate by itself"):
        EmbedServer(_refuse_long).model(truncate=True).embed_query("q" * 30)


def test_llamacpp_too_large_to_process_is_an_overflow_not_retried() -> None:
    message = "input (600 tokens) is too large to process. increase the physical batch size"
    server = EmbedServer(
        lambda b: httpx.Response(500, json={"error": {"code": 500, "message": message}})
    )
    with pytest.raises(ContextLengthExceededError, match="Input 0 is too long"):
        server.model(max_retries=3).embed_query("long")
    assert len(server.bodies) == 1


def test_429_retry_after_is_honoured_per_batch(mode: str) -> None:
    calls: list[int] = []

    def answer(body: dict[str, Any]) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            return httpx.Response(429, json={"error": "slow down"}, headers={"retry-after": "3"})
        return httpx.Response(200, json=openai_answer(body["input"]))

    server = EmbedServer(answer)
    assert documents(server.model(), mode, TEXTS) == [vector_of(t) for t in TEXTS]
    assert server.sleeps == [3.0]
    assert len(server.bodies) == 2


def test_other_errors_are_not_split() -> None:
    server = EmbedServer(lambda b: httpx.Response(401, json={"error": "bad key " + KEY}))
    model = server.model()
    with pytest.raises(AuthenticationError) as caught:
        model.embed_documents(TEXTS)
    assert len(server.bodies) == 1
    assert KEY not in str(caught.value)
    assert KEY not in repr(model)


# ----------------------------------------------------------------- settings


def test_formats_without_embeddings_are_refused_before_sending() -> None:
    server = EmbedServer()
    with pytest.raises(ConfigurationError, match="'tgi' has no embeddings endpoint"):
        server.model(wire_format="tgi").embed_query("x")
    assert server.bodies == []


@pytest.mark.parametrize(
    ("setting", "value"),
    [("chunk_size", 0), ("max_concurrency", 0), ("dimensions", 0), ("max_batch_bytes", 0)],
)
def test_bad_settings_are_configuration_errors(setting: str, value: Any) -> None:
    with pytest.raises(ConfigurationError, match=setting):
        CustomLLMEmbeddings(model="m", **{setting: value})
    model = CustomLLMEmbeddings(model="m")
    with pytest.raises(ConfigurationError, match=setting):
        setattr(model, setting, value)


def test_generation_settings_are_not_embedding_settings() -> None:
    with pytest.raises(ConfigurationError, match="temperature"):
        CustomLLMEmbeddings(model="m", temperature=0.2)


def test_reassigning_the_url_rebuilds_the_runtime() -> None:
    model = CustomLLMEmbeddings(model="m", base_url="http://a.test/v1")
    before = model._runtime()
    model.base_url = "http://b.test/v1"
    assert model._runtime() is not before
    assert model._runtime().client.base_url == "http://b.test/v1"


def test_copies_and_pickles_build_their_own_runtime() -> None:
    model = CustomLLMEmbeddings(model="m", api_key=KEY, chunk_size=7)
    copied = model.model_copy(update={"chunk_size": 9})
    assert copied.chunk_size == 9
    assert copied._runtime() is not model._runtime()
    restored = pickle.loads(pickle.dumps(model))
    assert restored.chunk_size == 7
    assert restored._runtime() is not model._runtime()
    assert KEY not in repr(restored)


def test_async_failure_cancels_the_other_batches() -> None:
    import asyncio

    started: list[str] = []

    def answer(body: dict[str, Any]) -> httpx.Response:
        started.append(body["input"][0])
        if body["input"][0] == "alpha":
            return httpx.Response(200, json={"data": []})
        return httpx.Response(200, json=openai_answer(body["input"]))

    server = EmbedServer(answer, delay=0.05)
    model = server.model(chunk_size=1, max_concurrency=1)

    async def run() -> list[asyncio.Task[Any]]:
        with pytest.raises(ResponseError):
            await model.aembed_documents(TEXTS)
        return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]

    assert asyncio.run(run()) == []  # nothing left running in the loop
    assert started == ["alpha"]  # the batches waiting for their turn were never sent


def test_tiny_texts_respect_a_tiny_byte_cap() -> None:
    server = EmbedServer()
    server.model(max_batch_bytes=10).embed_documents(["", "", "", ""])
    assert [len(b["input"]) for b in server.bodies] == [3, 1]
