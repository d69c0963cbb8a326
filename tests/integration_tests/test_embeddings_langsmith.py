"""An embeddings call reaches LangSmith as one run with its tokens and cost (no key shown).

The real `langsmith` client posts to the loopback collector (fixtures of test_langsmith.py);
the vectors come from the llama.cpp embeddings server.
"""

from __future__ import annotations

import pytest

from langchain_customllm import CustomLLMEmbeddings, Pricing
from tests.integration_tests.conftest import MODEL
from tests.integration_tests.test_langsmith import (  # noqa: F401 (the collector fixture)
    SECRET,
    _assert_no_secret,
    _flush,
    _llm_runs,
    _only,
    collector,
)
from tests.servers.base import LoopbackServer

pytestmark = pytest.mark.integration


def test_embeddings_run_carries_tokens_and_cost(
    collector: LoopbackServer,  # noqa: F811
    embeddings_base_url: str,
) -> None:
    embeddings = CustomLLMEmbeddings(
        model=MODEL,
        base_url=embeddings_base_url,
        api_key=SECRET,
        chunk_size=2,
        pricing=Pricing(input=100.0, output=0.0),
    )
    embeddings.embed_documents(["The cat sat.", "Paris is in France.", "Two eggs."])
    _flush()

    run = _only(_llm_runs(collector))
    assert run["name"] == "CustomLLMEmbeddings"
    metadata = run["extra"]["metadata"]
    assert metadata["ls_provider"] == "customllm"
    assert metadata["ls_model_name"] == MODEL
    assert metadata["ls_model_type"] == "embedding"
    info = run["outputs"]["generations"][0][0]["generation_info"]
    tokens = info["token_usage"]["prompt_tokens"]
    assert tokens >= 3
    assert info["cost"]["total_cost"] == pytest.approx(tokens * 100.0 / 1e6)
    assert run["outputs"]["llm_output"]["token_usage"]["prompt_tokens"] == tokens
    _assert_no_secret(collector)
