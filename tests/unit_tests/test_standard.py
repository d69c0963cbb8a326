"""langchain-tests' standard unit suite for ChatCustomLLM."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_tests.unit_tests import ChatModelUnitTests
from syrupy.assertion import SnapshotAssertion

from langchain_customllm import ChatCustomLLM


class TestChatCustomLLMStandard(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[ChatCustomLLM]:
        return ChatCustomLLM

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": "smollm2", "base_url": "http://fake.test/v1"}

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return (
            {"CUSTOMLLM_API_KEY": "env-key", "CUSTOMLLM_BASE_URL": "http://env-host:9000/v1"},
            {"model": "smollm2"},
            {"api_key": "env-key", "base_url": "http://env-host:9000/v1"},
        )

    @property
    def supports_model_override(self) -> bool:
        return True

    @pytest.mark.xfail(
        reason="langchain-core's load() only rebuilds classes on its own allowlist "
        "(langchain_core.load.mapping) and refuses third-party integrations even with "
        "allowed_objects='all'; dumpd() itself works and is checked against the snapshot",
        raises=ValueError,
        strict=True,
    )
    def test_serdes(self, model: BaseChatModel, snapshot: SnapshotAssertion) -> None:
        super().test_serdes(model, snapshot)
