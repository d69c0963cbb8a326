"""CustomLLMEmbeddings through the LiteLLM proxy in front of llama.cpp's embeddings server.

Marked ``matrix``. The proxy routes ``smollm2-embed`` (``openai/`` provider) to the llama.cpp
server started with ``--embeddings --pooling mean``; its master key is `LITELLM_KEY`. Set
``CUSTOMLLM_TEST_LITELLM_EMBEDDINGS_BASE_URL`` to a proxy you run with that route; until
``scripts/litellm_server.py`` serves it, the cells skip without it. A proxy config::

    model_list:
      - model_name: smollm2-embed
        litellm_params: {model: openai/smollm2, api_base: <llama.cpp>/v1, api_key: none}
    general_settings: {master_key: os.environ/LITELLM_MASTER_KEY}
"""

from __future__ import annotations

import os

import pytest
from langchain_tests.integration_tests import EmbeddingsIntegrationTests

from langchain_customllm import (
    AuthenticationError,
    ContextLengthExceededError,
    CustomLLMEmbeddings,
    track_usage,
)
from tests.integration_tests.conftest import LITELLM_KEY

pytestmark = [pytest.mark.integration, pytest.mark.matrix]

MODEL = "smollm2-embed"
WIDTH = 576


@pytest.fixture(scope="module")
def litellm_embeddings_url() -> str:
    url = os.environ.get("CUSTOMLLM_TEST_LITELLM_EMBEDDINGS_BASE_URL")
    if not url:
        pytest.skip("set CUSTOMLLM_TEST_LITELLM_EMBEDDINGS_BASE_URL (a proxy with smollm2-embed)")
    return url


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
