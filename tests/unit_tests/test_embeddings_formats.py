"""CustomLLMEmbeddings over the other formats (Ollama, TEI, custom YAML, a Python adapter),
its usage reaching callbacks and track_usage, and models.yaml entries."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import LLMResult

from langchain_customllm import (
    ChatCustomLLM,
    ConfigurationError,
    ContextLengthExceededError,
    CustomLLMEmbeddings,
    ResponseError,
    load_models,
    track_usage,
)
from langchain_customllm.formats import EmbedParams, OpenAIFormat, ParsedEmbeddings, WireRequest
from tests.unit_tests._embed_helpers import EmbedServer, as_base64, documents, vector_of

TEXTS = ["alpha", "beta", "gamma"]


# ----------------------------------------------------------------- Ollama /api/embed


def _ollama(body: dict[str, Any]) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "model": body["model"],
            "embeddings": [vector_of(t) for t in body["input"]],
            "total_duration": 14143917,
            "prompt_eval_count": 3 * len(body["input"]),
        },
    )


def test_ollama_request_and_answer(mode: str) -> None:
    server = EmbedServer(_ollama)
    model = server.model(base_url="http://fake.test", wire_format="ollama", dimensions=3)
    assert documents(model, mode, TEXTS) == [vector_of(t) for t in TEXTS]
    assert server.paths == ["/api/embed"]
    # Ollama truncates unless told not to: the setting is always sent.
    assert server.bodies == [
        {"model": "embedder", "input": TEXTS, "truncate": False, "dimensions": 3}
    ]


def test_ollama_answer_without_embeddings_is_explained() -> None:
    server = EmbedServer(lambda b: httpx.Response(200, json={"model": "m"}))
    model = server.model(base_url="http://fake.test", wire_format="ollama")
    with pytest.raises(ResponseError, match="no `embeddings` list -- is base_url the server root"):
        model.embed_query("x")


def test_ollama_usage_is_prompt_eval_count() -> None:
    server = EmbedServer(_ollama)
    model = server.model(base_url="http://fake.test", wire_format="ollama")
    with track_usage() as usage:
        model.embed_documents(TEXTS)
    assert usage.total.input_tokens == 9


# ----------------------------------------------------------------- TEI /embed


def test_tei_request_and_answer(mode: str) -> None:
    server = EmbedServer(lambda b: httpx.Response(200, json=[vector_of(t) for t in b["inputs"]]))
    model = server.model(base_url="http://fake.test", wire_format="tei", truncate=True)
    assert documents(model, mode, TEXTS) == [vector_of(t) for t in TEXTS]
    assert server.paths == ["/embed"]
    assert server.bodies == [{"inputs": TEXTS, "truncate": True}]


def test_tei_error_body_is_read() -> None:
    error = {
        "error": "Input validation error: `inputs` must have less than 512 tokens",
        "error_type": "Validation",
    }
    server = EmbedServer(lambda b: httpx.Response(413, json=error))
    model = server.model(base_url="http://fake.test", wire_format="tei")
    with pytest.raises(ContextLengthExceededError, match=r"Input 0 is too long .* must have less"):
        model.embed_query("x")


def test_tei_cannot_generate() -> None:
    with pytest.raises(ConfigurationError, match="'tei' is an embeddings server"):
        ChatCustomLLM(model="m", wire_format="tei", max_retries=0).invoke("hi")


# ----------------------------------------------------------------- custom YAML format

IN_HOUSE = {
    "kind": "custom",
    "name": "in-house",
    "embed": {
        "path": "/v2/encode",
        "request": {"texts": "{input}", "options": {"model": "{model}", "dim": "{dimensions}"}},
        "vectors": "result.items",
        "vector": "values",
        "index": "position",
        "input_tokens": "meta.tokens",
        "model": "meta.model",
    },
    "error": {"message": "failure.reason"},
}


def _in_house(body: dict[str, Any]) -> httpx.Response:
    items = [{"position": i, "values": vector_of(t)} for i, t in enumerate(body["texts"])]
    return httpx.Response(
        200, json={"result": {"items": items[::-1]}, "meta": {"tokens": 7, "model": "enc-2"}}
    )


def test_custom_embed_section(mode: str) -> None:
    server = EmbedServer(_in_house)
    model = server.model(base_url="http://fake.test", wire_format=IN_HOUSE)
    assert documents(model, mode, TEXTS) == [vector_of(t) for t in TEXTS]
    assert server.paths == ["/v2/encode"]
    # An unset placeholder drops its key: no `dim` without dimensions.
    assert server.bodies == [{"texts": TEXTS, "options": {"model": "embedder"}}]


def test_custom_embed_usage_and_served_model() -> None:
    model = EmbedServer(_in_house).model(
        base_url="http://fake.test",
        wire_format=IN_HOUSE,
        pricing={"enc-2": {"input": 1.0, "output": 0}},
    )
    with track_usage() as usage:
        model.embed_documents(TEXTS)
    assert usage.total.input_tokens == 7
    assert usage.total.cost == pytest.approx(7e-6)


def test_custom_embed_bare_list_of_base64_vectors() -> None:
    fmt = {"kind": "custom", "embed": {"path": "/e", "request": {"in": "{input}"}}}
    server = EmbedServer(
        lambda b: httpx.Response(200, json=[as_base64(vector_of(t)) for t in b["in"]])
    )
    model = server.model(base_url="http://fake.test", wire_format=fmt)
    assert model.embed_documents(TEXTS) == [vector_of(t) for t in TEXTS]


def test_custom_embed_declared_error_is_reported() -> None:
    server = EmbedServer(lambda b: httpx.Response(200, json={"failure": {"reason": "GPU on fire"}}))
    model = server.model(base_url="http://fake.test", wire_format=IN_HOUSE)
    with pytest.raises(ResponseError, match="GPU on fire"):
        model.embed_query("x")


def test_custom_embed_missing_path_says_where() -> None:
    server = EmbedServer(lambda b: httpx.Response(200, json={"result": {}}))
    model = server.model(base_url="http://fake.test", wire_format=IN_HOUSE)
    with pytest.raises(ResponseError, match=r"result\.items"):
        model.embed_query("x")


@pytest.mark.parametrize(
    ("embed", "match"),
    [
        ({"path": "/e", "request": {"x": "{prompt}"}}, r"unknown placeholder \{prompt\}"),
        ({"path": "e", "request": {}}, "must start with '/'"),
        ({"path": "/e", "request": {}, "vectors": "a[["}, "embed.vectors"),
        ({"path": "/e", "request": {}, "colour": "red"}, "colour"),
    ],
)
def test_custom_embed_section_is_validated(embed: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        CustomLLMEmbeddings(model="m", wire_format={"kind": "custom", "embed": embed})


def test_embeddings_only_custom_format_cannot_chat() -> None:
    chat = ChatCustomLLM(model="m", wire_format=IN_HOUSE, max_retries=0)
    with pytest.raises(ConfigurationError, match="no path for this call"):
        chat.invoke("hi")


# ----------------------------------------------------------------- Python adapter


class Encoder(OpenAIFormat):
    """An in-house API in Python: ``{"docs": [...]}`` in, ``{"vecs": [...]}`` out."""

    name = "encoder"

    def embed_request(self, texts: Sequence[str], params: EmbedParams) -> WireRequest:
        return WireRequest(path="/encode", body={"docs": list(texts), "m": params.model})

    def parse_embeddings(self, body: Any) -> ParsedEmbeddings:
        return ParsedEmbeddings([list(map(float, v)) for v in body["vecs"]])


def test_python_adapter(mode: str) -> None:
    server = EmbedServer(
        lambda b: httpx.Response(200, json={"vecs": [vector_of(t) for t in b["docs"]]})
    )
    model = server.model(wire_format=Encoder())
    assert documents(model, mode, TEXTS) == [vector_of(t) for t in TEXTS]
    assert server.paths == ["/v1/encode"]


def test_python_adapter_bug_is_a_typed_error() -> None:
    server = EmbedServer(lambda b: httpx.Response(200, json={"vectors": []}))
    with pytest.raises(ResponseError, match="'encoder' could not read the embeddings answer"):
        server.model(wire_format=Encoder()).embed_query("x")


# ----------------------------------------------------------------- usage and callbacks


class Recorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def on_llm_start(
        self, serialized: dict[str, Any], prompts: list[str], *, run_id: UUID, **kwargs: Any
    ) -> None:
        self.events.append(("start", kwargs.get("metadata")))

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        self.events.append(("end", response.generations[0][0].generation_info))

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self.events.append(("error", type(error).__name__))


def test_one_run_per_call_with_usage_and_cost(mode: str) -> None:
    recorder = Recorder()
    model = EmbedServer().model(
        callbacks=[recorder], chunk_size=2, pricing={"input": 0.5, "output": 0}
    )
    documents(model, mode, TEXTS)
    (_, metadata), (_, info) = recorder.events
    assert metadata["ls_model_name"] == "embedder"
    assert metadata["ls_model_type"] == "embedding"
    assert info["token_usage"] == {"prompt_tokens": 6, "completion_tokens": 0, "total_tokens": 6}
    assert info["model_name"] == "served-model"
    assert info["cost"]["total_cost"] == pytest.approx(3e-6)


def test_failed_call_reports_an_error_run() -> None:
    recorder = Recorder()
    server = EmbedServer(lambda b: httpx.Response(200, json={"data": []}))
    with pytest.raises(ResponseError):
        server.model(callbacks=[recorder]).embed_query("x")
    assert [e[0] for e in recorder.events] == ["start", "error"]


def test_track_usage_counts_embeddings(mode: str) -> None:
    model = EmbedServer().model(chunk_size=1)
    with track_usage(pricing={"input": 1.0, "output": 0}) as usage:
        documents(model, mode, TEXTS)
    row = usage.by_model["embedder"]
    assert row.requests == 1
    assert row.input_tokens == 6
    assert usage.total.cost == pytest.approx(6e-6)


# ----------------------------------------------------------------- models.yaml


def test_models_yaml_builds_embeddings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMBED_KEY", "k-123")
    path = tmp_path / "models.yaml"
    path.write_text(
        "formats:\n"
        "  encoder:\n"
        "    kind: custom\n"
        "    embed: {path: /encode, request: {texts: '{input}'}}\n"
        "models:\n"
        "  chat: {type: chat, model: smollm2}\n"
        "  vectors:\n"
        "    type: embeddings\n"
        "    model: bge\n"
        "    api_key_env: EMBED_KEY\n"
        "    chunk_size: 16\n"
        "    wire_format: encoder\n"
    )
    models = load_models(path)
    embedder = models["vectors"]
    assert isinstance(embedder, CustomLLMEmbeddings)
    assert embedder.chunk_size == 16
    assert embedder._runtime().wire.name == "encoder"
    assert CustomLLMEmbeddings.from_config(path, "vectors").model == "bge"
    with pytest.raises(ConfigurationError, match="not a CustomLLMEmbeddings"):
        CustomLLMEmbeddings.from_config(path, "chat")


def test_models_yaml_bad_embeddings_setting_is_located(tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"
    path.write_text("models:\n  v:\n    type: embeddings\n    model: m\n    chunk_size: 0\n")
    with pytest.raises(ConfigurationError, match=r"models.yaml:5: model 'v': chunk_size"):
        load_models(path)
