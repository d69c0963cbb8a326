"""CustomLLMEmbeddings through the LiteLLM proxy, and against vLLM (CPU) with a pooling runner.

Marked ``matrix`` (``make matrix``); the session starts both servers itself (fixtures
``vllm_embeddings_url`` and ``litellm_embeddings_url`` in conftest.py, ports 8974-8976).

vLLM 0.32 (CPU): the converted SmolLM2 of ``scripts/vllm_server.py`` (its weights folder)
served as ``smollm2`` with ``--runner pooling --convert embed --pooler-config
'{"pooling_type": "MEAN", "use_activation": false}' --max-model-len 2048 --dtype float32
--enforce-eager`` (``vllm_server.start(embeddings=True)``); set
``CUSTOMLLM_TEST_VLLM_EMBEDDINGS_BASE_URL`` to the /v1 root of one you run instead.

LiteLLM: the proxy routes ``smollm2-embed`` (``openai/`` provider) to the llama.cpp
server started with ``--embeddings --pooling mean --parallel 1``; its master key is
`LITELLM_KEY` (``litellm_server.start(embeddings=True)``). Set
``CUSTOMLLM_TEST_LITELLM_EMBEDDINGS_BASE_URL`` to a proxy you run with that route instead.
The proxy config it writes amounts to::

    model_list:
      - model_name: smollm2-embed
        litellm_params: {model: openai/smollm2, api_base: <llama.cpp>/v1, api_key: none}
    general_settings: {master_key: os.environ/LITELLM_MASTER_KEY}
"""

from __future__ import annotations

import pytest
from langchain_tests.integration_tests import EmbeddingsIntegrationTests

from langchain_customllm import (
    AuthenticationError,
    BadRequestError,
    ContextLengthExceededError,
    CustomLLMEmbeddings,
    track_usage,
)
from tests.integration_tests.conftest import LITELLM_KEY

pytestmark = [pytest.mark.integration, pytest.mark.matrix]

MODEL = "smollm2-embed"
WIDTH = 576


@pytest.fixture
def gateway(litellm_embeddings_url: str) -> CustomLLMEmbeddings:
    return CustomLLMEmbeddings(
        model=MODEL, base_url=litellm_embeddings_url, api_key=LITELLM_KEY, max_retries=0
    )


class TestLiteLLMEmbeddings(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[CustomLLMEmbeddings]:
        return CustomLLMEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, str]:
        return {"model": MODEL}

    @pytest.fixture
    def model(self, litellm_embeddings_url: str) -> CustomLLMEmbeddings:
        return CustomLLMEmbeddings(
            model=MODEL, base_url=litellm_embeddings_url, api_key=LITELLM_KEY
        )


def test_width_order_and_usage(gateway: CustomLLMEmbeddings) -> None:
    texts = ["one", "two words", "three words here"]
    alone = [gateway.embed_query(t) for t in texts]
    with track_usage() as usage:
        batched = gateway.model_copy(update={"chunk_size": 2}).embed_documents(texts)
    assert [len(v) for v in batched] == [WIDTH] * 3
    for one, many in zip(alone, batched, strict=True):
        assert max(abs(a - b) for a, b in zip(one, many, strict=True)) < 1e-4
    assert usage.total.input_tokens > 0


def test_wrong_key_is_an_authentication_error(gateway: CustomLLMEmbeddings) -> None:
    wrong = gateway.model_copy(update={"api_key": "sk-not-the-master-key"})
    with pytest.raises(AuthenticationError) as caught:
        wrong.embed_query("x")
    assert "sk-not-the-master-key" not in str(caught.value)


def test_too_long_input_is_named_through_the_gateway(gateway: CustomLLMEmbeddings) -> None:
    with pytest.raises(ContextLengthExceededError, match="Input 1 is too long"):
        gateway.embed_documents(["short", "word " * 3000])


# ----------------------------------------------------------------- vLLM (CPU), pooling runner


@pytest.fixture
def vllm(vllm_embeddings_url: str) -> CustomLLMEmbeddings:
    return CustomLLMEmbeddings(model="smollm2", base_url=vllm_embeddings_url, max_retries=0)


class TestVLLMEmbeddings(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[CustomLLMEmbeddings]:
        return CustomLLMEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, str]:
        return {"model": "smollm2"}

    @pytest.fixture
    def model(self, vllm_embeddings_url: str) -> CustomLLMEmbeddings:
        return CustomLLMEmbeddings(model="smollm2", base_url=vllm_embeddings_url)


def test_vllm_width_order_and_usage(vllm: CustomLLMEmbeddings) -> None:
    texts = ["one", "two words", "three words here", "four"]
    alone = [vllm.embed_query(t) for t in texts]
    with track_usage() as usage:
        batched = vllm.model_copy(update={"chunk_size": 3, "max_concurrency": 2})
        vectors = batched.embed_documents(texts)
    assert [len(v) for v in vectors] == [WIDTH] * 4
    for one, many in zip(alone, vectors, strict=True):
        assert max(abs(a - b) for a, b in zip(one, many, strict=True)) < 1e-3
    assert usage.total.input_tokens > 0


def test_vllm_too_long_is_named_and_truncate_cuts(vllm: CustomLLMEmbeddings) -> None:
    texts = ["short", "word " * 2100]  # over the server's --max-model-len 2048
    with pytest.raises(ContextLengthExceededError, match="Input 1 is too long"):
        vllm.embed_documents(texts)
    cut = vllm.model_copy(update={"truncate": True}).embed_documents(texts)
    assert [len(v) for v in cut] == [WIDTH, WIDTH]


def test_vllm_refuses_dimensions_for_a_model_without_them(vllm: CustomLLMEmbeddings) -> None:
    with pytest.raises(BadRequestError, match="Matryoshka"):
        vllm.model_copy(update={"dimensions": 64}).embed_query("hello")
