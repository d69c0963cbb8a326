"""langchain-tests' integration suite with tools, structured output and JSON mode on.

Against llama.cpp's C++ llama-server serving SmolLM2-135M with our tool-capable chat template
(scripts/templates/smollm2-tools.jinja), under its server profile. Its gaps are declared once,
in _gaps.py; llama-cpp-python's server runs the same suite in test_matrix_standard.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration_tests._gaps import LlamaServerGaps, WithTools
from tests.integration_tests.conftest import MODEL

_URL: dict[str, str] = {}


@pytest.fixture(scope="module", autouse=True)
def _tools_server(tools_base_url: str) -> None:
    _URL["url"] = tools_base_url


class TestChatCustomLLMTools(LlamaServerGaps, WithTools):
    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {
            "model": MODEL,
            "base_url": _URL["url"],
            "temperature": 0,
            "seed": 7,
            # SmolLM2 can ramble to the end of its 1024-token slot (minutes on 2 cores); a
            # tool call with its <tool_call> wrapper fits well within this.
            "max_tokens": 80,
            # Each answer computed from the prompt alone: with the prompt cache on, how much
            # of an earlier test's prompt a slot reuses changes the logits slightly, and the
            # 135M model's greedy answer with them (measured: the runnable-tool call's
            # argument rambled to max_tokens after one earlier test, fine alone).
            "extra_body": {"cache_prompt": False},
        }

    @property
    def supports_model_override(self) -> bool:
        # llama-server serves one model and answers every name with its own alias (measured:
        # "smollm2" for a request for "smollm2-override"), so the suite's override tests
        # cannot see the per-call model in the answer (llama-cpp-python's server echoed it).
        return False
