"""langchain-tests' integration suite with tools, structured output and JSON mode on.

Against llama.cpp serving SmolLM2-135M with ``--chat_format chatml-function-calling``, under
the ``llama-cpp-python`` server profile (forced tools by name, ``json_object`` + ``schema``).
llama.cpp's gaps are declared once, in _gaps.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration_tests._gaps import LlamaCppGaps, WithTools
from tests.integration_tests.conftest import MODEL

_URL: dict[str, str] = {}


@pytest.fixture(scope="module", autouse=True)
def _tools_server(tools_base_url: str) -> None:
    _URL["url"] = tools_base_url


class TestChatCustomLLMTools(LlamaCppGaps, WithTools):
    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {
            "model": MODEL,
            "base_url": _URL["url"],
            "server_profile": "llama-cpp-python",
            "temperature": 0,
            "seed": 7,
        }
