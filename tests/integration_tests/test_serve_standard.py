"""langchain-tests' integration suite on ``ChatOpenAI`` pointed at ``customllm serve``.

A client no one here wrote (langchain-openai's ``ChatOpenAI(base_url=<gateway>)``) runs the
whole standard suite through the gateway (a real ``customllm serve`` subprocess) to the
session's llama.cpp server, which serves SmolLM2-135M behind our tool-capable template. The
gateway's model is a plain ``ChatCustomLLM`` entry; the gaps are llama-server's (as when the
suite runs on ``ChatCustomLLM`` directly) and two of ChatOpenAI's structured-output methods
that the 135M model does not meet, measured the same without the gateway (_gaps.py), as
strict xfails.
"""

from __future__ import annotations

from typing import Any

import openai
import pytest
from langchain_openai import ChatOpenAI

from tests.integration_tests._gaps import ChatOpenAIOnLlamaServerGaps, WithTools
from tests.integration_tests._serve_fixtures import GATEWAY_KEY

pytestmark = pytest.mark.integration

_URL: dict[str, str] = {}


@pytest.fixture(scope="module", autouse=True)
def _gateway(gateway_url: str) -> None:
    _URL["url"] = gateway_url


class TestChatOpenAIThroughGateway(ChatOpenAIOnLlamaServerGaps, WithTools):
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
            # langchain-openai caches one default async HTTP client per base_url for the
            # whole process; each test here runs in an event loop of its own, and a pooled
            # connection of a closed loop fails the next test ("Event loop is closed"). A
            # client of the test's own avoids that client-side artifact.
            "http_async_client": openai.DefaultAsyncHttpxClient(),
        }

    @property
    def supports_model_override(self) -> bool:
        # The gateway answers with the name it was asked for, and serves one such model here.
        return False
