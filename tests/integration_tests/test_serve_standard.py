"""langchain-tests' integration suite on ``ChatOpenAI`` pointed at ``customllm serve``.

A client no one here wrote (langchain-openai's ``ChatOpenAI(base_url=<gateway>)``) runs the
whole standard suite through the gateway (a real ``customllm serve`` subprocess) to the
session's llama.cpp server, which serves SmolLM2-135M behind our tool-capable template. The
gateway's model is a plain ``ChatCustomLLM`` entry, so the server's gaps are the same as
when the suite runs on ``ChatCustomLLM`` directly (_gaps.py), declared once, as strict
xfails.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from langchain_openai import ChatOpenAI

from tests.integration_tests._gaps import LlamaServerGaps, WithTools
from tests.integration_tests._serve_fixtures import GATEWAY_KEY

pytestmark = pytest.mark.integration

_URL: dict[str, str] = {}


@pytest.fixture(scope="module", autouse=True)
def _gateway(gateway_url: str) -> None:
    _URL["url"] = gateway_url


class GatewayGaps:
    """What the suite meets through the gateway: the llama-server gaps, nothing more."""

    gaps: ClassVar = dict(LlamaServerGaps.gaps)


class TestChatOpenAIThroughGateway(GatewayGaps, WithTools):
    @property
    def chat_model_class(self) -> type[ChatOpenAI]:  # type: ignore[override]
        return ChatOpenAI

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {
            "model": "smollm2",
            "base_url": _URL["url"],
            "api_key": GATEWAY_KEY,
            "temperature": 0,
            "seed": 7,
            # As test_standard_tools.py: SmolLM2 can ramble to the end of its context.
            "max_tokens": 80,
            # Each answer from the prompt alone (see test_standard_tools.py), passed through
            # the gateway to llama-server as a vendor parameter.
            "extra_body": {"cache_prompt": False},
            "stream_usage": True,
        }

    @property
    def supports_model_override(self) -> bool:
        # The gateway answers with the name it was asked for, and serves one such model here.
        return False
