"""Embeddings fault cells on real sockets: the Ollama and TEI emulators misbehave on cue.

Each cell queues one fault (`tests.servers.embeddings`) and checks what the caller gets:
cut answers, wrong counts, mixed widths, base64 vectors, 429, 413 and too-long inputs,
on both twins; the key never appears in an error or a log line.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from langchain_customllm import (
    APIConnectionError,
    ContextLengthExceededError,
    CustomLLMEmbeddings,
    NotFoundError,
    ResponseError,
)
from tests._waits import no_waits
from tests.servers.embeddings import (
    TEI_MAX_BATCH,
    EmbedServer,
    HashEmbedder,
    normalized,
    serve_ollama,
    serve_tei,
)

KEY = "sk-fault-embed-key-777"
TEXTS = ["first text", "second text", "third text"]
HASH = HashEmbedder(width=8)


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    """Both twins: embed_documents and aembed_documents."""
    return str(request.param)


@pytest.fixture(params=["ollama", "tei"])
def emulator(request: pytest.FixtureRequest) -> Iterator[tuple[str, EmbedServer]]:
    serve = serve_ollama if request.param == "ollama" else serve_tei
    with serve(HASH) as server:
        yield str(request.param), server


def _model(emulator: tuple[str, EmbedServer], **kwargs: Any) -> CustomLLMEmbeddings:
    name, server = emulator
    model = CustomLLMEmbeddings(
        model="smollm2", base_url=server.url, wire_format=name, api_key=KEY, **kwargs
    )
    return no_waits(model)


def _embed(model: CustomLLMEmbeddings, mode: str, texts: list[str]) -> list[list[float]]:
    if mode == "sync":
        return model.embed_documents(texts)
    return asyncio.run(model.aembed_documents(texts))


def _expected(texts: list[str]) -> list[list[float]]:
    vectors, _ = HASH.embed(texts)
    return [normalized(v) for v in vectors]  # both servers normalize (TEI by default)


def _close(got: list[list[float]], want: list[list[float]]) -> bool:
    return len(got) == len(want) and all(
        len(a) == len(b) and all(abs(x - y) < 1e-6 for x, y in zip(a, b, strict=True))
        for a, b in zip(got, want, strict=True)
    )


def test_clean_answer(emulator: tuple[str, EmbedServer], mode: str) -> None:
    with _model(emulator) as model:
        assert _close(_embed(model, mode, TEXTS), _expected(TEXTS))


def test_cut_answer_is_a_connection_error(emulator: tuple[str, EmbedServer], mode: str) -> None:
    emulator[1].faults.append("cut")
    with _model(emulator, max_retries=0) as model, pytest.raises(APIConnectionError):
        _embed(model, mode, TEXTS)


def test_cut_answer_is_retried(emulator: tuple[str, EmbedServer], mode: str) -> None:
    emulator[1].faults.append("cut")
    with _model(emulator) as model:
        assert _close(_embed(model, mode, TEXTS), _expected(TEXTS))
    assert len(emulator[1].requests) == 2


def test_wrong_count_names_the_inputs(emulator: tuple[str, EmbedServer], mode: str) -> None:
    emulator[1].faults.append("count")
    with _model(emulator) as model, pytest.raises(ResponseError, match="2 vectors for 3 inputs"):
        _embed(model, mode, TEXTS)


def test_mixed_widths_name_the_input(emulator: tuple[str, EmbedServer], mode: str) -> None:
    emulator[1].faults.append("widths")
    with _model(emulator) as model, pytest.raises(ResponseError, match="Input 2 came back 7"):
        _embed(model, mode, TEXTS)


def test_ollama_base64_vectors_are_decoded(mode: str) -> None:
    with serve_ollama(HASH) as server:
        server.faults.append("base64")
        with _model(("ollama", server)) as model:
            assert _close(_embed(model, mode, TEXTS), _expected(TEXTS))


def test_429_is_retried(emulator: tuple[str, EmbedServer], mode: str) -> None:
    emulator[1].faults.append("429")
    with _model(emulator) as model:
        assert _close(_embed(model, mode, TEXTS), _expected(TEXTS))
    assert len(emulator[1].requests) == 2


def test_tei_413_halves_the_batch(mode: str) -> None:
    with serve_tei(HASH) as server:
        server.faults.append("413")
        with _model(("tei", server)) as model:
            assert _close(_embed(model, mode, TEXTS), _expected(TEXTS))
        assert len(server.requests) == 3


def test_tei_batch_limit_is_found_by_halving(mode: str) -> None:
    texts = [f"text number {i}" for i in range(TEI_MAX_BATCH + 8)]
    with serve_tei(HASH) as server, _model(("tei", server), chunk_size=100) as model:
        assert _close(_embed(model, mode, texts), _expected(texts))


def test_too_long_input_is_named(emulator: tuple[str, EmbedServer], mode: str) -> None:
    texts = ["short", "word " * 600, "short again"]
    with (
        _model(emulator) as model,
        pytest.raises(ContextLengthExceededError, match="Input 1 is too long") as caught,
    ):
        _embed(model, mode, texts)
    assert caught.value.index == 1  # type: ignore[attr-defined]


def test_truncate_lets_the_server_cut(emulator: tuple[str, EmbedServer]) -> None:
    texts = ["short", "word " * 600]
    with _model(emulator, truncate=True) as model:
        assert len(model.embed_documents(texts)) == 2


def test_key_never_shown(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with serve_ollama(HASH) as server:
        model = _model(("ollama", server)).model_copy(update={"model": "missing"})
        with model, pytest.raises(NotFoundError) as caught:
            model.embed_query("x")
    shown = [str(caught.value), repr(caught.value), repr(model), caplog.text]
    assert not [text for text in shown if KEY in text]
    assert server.requests[0]["headers"]["Authorization"] == f"Bearer {KEY}"
