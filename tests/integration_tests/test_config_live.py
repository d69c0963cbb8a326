"""The in-house API configured the way users do it: a models.yaml file, then a chain."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from langchain_core.prompts import ChatPromptTemplate

from langchain_customllm import ChatCustomLLM, CustomLLM, load_models
from tests.integration_tests.conftest import MODEL
from tests.servers import torchserve
from tests.servers.base import Backend


def test_yaml_config_to_streaming_chain(
    base_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with torchserve.serve(Backend(base_url, MODEL)) as api:
        monkeypatch.setenv("INHOUSE_URL", api.url)
        monkeypatch.setenv("INHOUSE_KEY", "sk-inhouse-test")
        description = {k: v for k, v in torchserve.TORCHSERVE_FORMAT.items() if k != "name"}
        config = {
            "formats": {"torchserve": description},
            "models": {
                "in-house": {
                    "model": MODEL,
                    "base_url_env": "INHOUSE_URL",
                    "api_key_env": "INHOUSE_KEY",
                    "wire_format": "torchserve",
                    "temperature": 0,
                    "seed": 7,
                    "max_tokens": 40,
                },
                "in-house-text": {
                    "type": "llm",
                    "model": MODEL,
                    "base_url_env": "INHOUSE_URL",
                    "wire_format": "torchserve",
                    # Greedy: sampled at the server's default temperature, the model sometimes
                    # ends its sentence within the 8 tokens and the answer stops early.
                    "temperature": 0,
                    "seed": 7,
                    "max_tokens": 8,
                },
            },
        }
        path = tmp_path / "models.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")

        models = load_models(path)
        chat = models["in-house"]
        assert isinstance(chat, ChatCustomLLM)
        chain = ChatPromptTemplate.from_messages([("system", "Be brief."), ("human", "{q}")]) | chat
        chunks = list(chain.stream({"q": "What is the capital of France?"}))
        full = chunks[0]
        for chunk in chunks[1:]:
            full = full + chunk
        assert "Paris" in full.content
        assert full.usage_metadata is not None
        assert full.usage_metadata["output_tokens"] > 0
        # The key from the environment reached the server as a Bearer token.
        assert api.requests[-1]["headers"]["Authorization"] == "Bearer sk-inhouse-test"

        text = models["in-house-text"]
        assert isinstance(text, CustomLLM)
        result = text.generate(["The capital of France is"])
        info = result.generations[0][0].generation_info
        assert info is not None
        assert info["finish_reason"] == "length"
        assert ChatCustomLLM.from_config(path, name="in-house").model == MODEL
