"""langchain-tests' standard unit suite for CustomLLMEmbeddings."""

from __future__ import annotations

from typing import Any

from langchain_tests.unit_tests import EmbeddingsUnitTests

from langchain_customllm import CustomLLMEmbeddings


class TestCustomLLMEmbeddingsStandard(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[CustomLLMEmbeddings]:
        return CustomLLMEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"model": "smollm2", "base_url": "http://fake.test/v1"}

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return (
            {"CUSTOMLLM_API_KEY": "env-key", "CUSTOMLLM_BASE_URL": "http://env-host:9000/v1"},
            {"model": "smollm2"},
            {"api_key": "env-key", "base_url": "http://env-host:9000/v1"},
        )
