"""CustomLLMEmbeddings against the real llama.cpp server (``--embeddings --pooling mean``).

SmolLM2-135M's hidden size is 576: every vector is 576 wide. The server sends base64 when
asked, ignores ``dimensions``, and refuses an input longer than its batch with a 500
("too large to process"), which must come back as ContextLengthExceededError naming it.

Start it with ``--parallel 1``: with two slots, this llama.cpp build returns a wrong vector
for a request that waits for a slot while both are busy (seen with raw httpx too), so the
concurrency tests would fail on the server, not on us.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator

import pytest
from langchain_tests.integration_tests import EmbeddingsIntegrationTests

from langchain_customllm import (
    ContextLengthExceededError,
    CustomLLMEmbeddings,
    ResponseError,
    track_usage,
)
from tests.integration_tests.conftest import MODEL
from tests.servers.embeddings import LlamaEmbedder, normalized, serve_ollama, serve_tei

pytestmark = pytest.mark.integration

WIDTH = 576
TEXTS = [
    "The cat sat on the mat.",
    "Stock markets fell sharply on Monday.",
    "A kitten is a young cat.",
    "Paris is the capital of France.",
    "The recipe needs two eggs and flour.",
]


def _close(a: list[float], b: list[float], tol: float = 1e-4) -> bool:
    return len(a) == len(b) and all(
        math.isclose(x, y, abs_tol=tol) for x, y in zip(a, b, strict=True)
    )


@pytest.fixture
def embedder(embeddings_base_url: str) -> CustomLLMEmbeddings:
    return CustomLLMEmbeddings(model=MODEL, base_url=embeddings_base_url, max_retries=0)


class TestCustomLLMEmbeddingsIntegration(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[CustomLLMEmbeddings]:
        return CustomLLMEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, str]:
        return {"model": MODEL}

    @pytest.fixture
    def model(self, embeddings_base_url: str) -> CustomLLMEmbeddings:
        return CustomLLMEmbeddings(model=MODEL, base_url=embeddings_base_url)


def test_every_vector_is_576_wide(embedder: CustomLLMEmbeddings) -> None:
    vectors = embedder.embed_documents(TEXTS)
    assert [len(v) for v in vectors] == [WIDTH] * len(TEXTS)
    assert len(embedder.embed_query("hello")) == WIDTH


def test_batches_keep_the_order(embedder: CustomLLMEmbeddings) -> None:
    alone = [embedder.embed_query(text) for text in TEXTS]
    batched = embedder.model_copy(update={"chunk_size": 2, "max_concurrency": 3})
    for one, many in zip(alone, batched.embed_documents(TEXTS), strict=True):
        assert _close(one, many)


def test_async_batches_match_sync(embedder: CustomLLMEmbeddings) -> None:
    batched = embedder.model_copy(update={"chunk_size": 2, "max_concurrency": 2})
    sync = batched.embed_documents(TEXTS)
    in_async = asyncio.run(batched.aembed_documents(TEXTS))
    assert all(_close(a, b) for a, b in zip(sync, in_async, strict=True))


def test_base64_answers_decode_to_the_float_vectors(embedder: CustomLLMEmbeddings) -> None:
    floats = embedder.embed_documents(TEXTS[:2])
    b64 = embedder.model_copy(update={"extra_body": {"encoding_format": "base64"}})
    decoded = b64.embed_documents(TEXTS[:2])
    assert [len(v) for v in decoded] == [WIDTH, WIDTH]  # not a quarter as wide
    assert all(_close(a, b, 1e-6) for a, b in zip(floats, decoded, strict=True))


def test_similar_texts_are_closer(embedder: CustomLLMEmbeddings) -> None:
    cat, stocks, kitten = embedder.embed_documents(TEXTS[:3])

    def cosine(a: list[float], b: list[float]) -> float:
        dot = sum(x * y for x, y in zip(a, b, strict=True))
        return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))

    assert cosine(cat, kitten) > cosine(cat, stocks)


def test_ignored_dimensions_are_caught(embedder: CustomLLMEmbeddings) -> None:
    with pytest.raises(ResponseError, match="576 wide, not dimensions=64"):
        embedder.model_copy(update={"dimensions": 64}).embed_query("hello")


def test_too_long_input_is_named(embedder: CustomLLMEmbeddings) -> None:
    texts = ["short", "word " * 3000, "also short"]
    with pytest.raises(ContextLengthExceededError, match="Input 1 is too long") as caught:
        embedder.embed_documents(texts)
    assert caught.value.index == 1  # type: ignore[attr-defined]


def test_usage_reaches_track_usage(embedder: CustomLLMEmbeddings) -> None:
    priced = embedder.model_copy(update={"pricing": {"input": 1.0, "output": 0}, "chunk_size": 2})
    with track_usage() as usage:
        priced.embed_documents(TEXTS)
    row = usage.by_model[MODEL]
    assert row.requests == 1
    assert row.input_tokens >= len(TEXTS)
    assert usage.total.cost == pytest.approx(row.input_tokens / 1e6)


def test_empty_list_sends_nothing(embedder: CustomLLMEmbeddings) -> None:
    assert embedder.embed_documents([]) == []


# ----------------------------------------------------------------- Ollama and TEI emulators


@pytest.fixture
def llama(embeddings_base_url: str) -> Iterator[LlamaEmbedder]:
    embedder = LlamaEmbedder(embeddings_base_url)
    yield embedder
    embedder.close()


def test_ollama_format_through_the_emulator(
    llama: LlamaEmbedder, embedder: CustomLLMEmbeddings
) -> None:
    direct = [normalized(v) for v in embedder.embed_documents(TEXTS[:3])]
    with serve_ollama(llama) as server:
        model = CustomLLMEmbeddings(model=MODEL, base_url=server.url, wire_format="ollama")
        with track_usage() as usage:
            vectors = model.embed_documents(TEXTS[:3])
        assert all(_close(a, b) for a, b in zip(direct, vectors, strict=True))
        assert usage.total.input_tokens > 0
        assert asyncio.run(model.aembed_query(TEXTS[0])) == vectors[0]


def test_tei_format_through_the_emulator(
    llama: LlamaEmbedder, embedder: CustomLLMEmbeddings
) -> None:
    direct = [normalized(v) for v in embedder.embed_documents(TEXTS[:3])]
    with serve_tei(llama) as server:
        model = CustomLLMEmbeddings(model=MODEL, base_url=server.url, wire_format="tei")
        vectors = model.embed_documents(TEXTS[:3])
        assert all(_close(a, b) for a, b in zip(direct, vectors, strict=True))
        with pytest.raises(ContextLengthExceededError, match="Input 0 is too long"):
            model.embed_query("word " * 600)
