"""langchain-tests' standard integration suite on llama-cpp-python, vLLM and the LiteLLM gateway.

llama.cpp's C++ llama-server's runs are test_standard.py and test_standard_tools.py. Each
server runs with default settings, so its profile is the one detected at the first call (the
one ``customllm probe`` recommends, docs/compatibility.md); its genuine gaps are strict xfails
with the measured reason, declared once per server in _gaps.py. Marked ``matrix``
(``make matrix``).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration_tests._gaps import LitellmGaps, LlamaCppPythonGaps, VllmGaps, WithTools
from tests.integration_tests.conftest import LITELLM_KEY, MODEL, VLLM_KEY

pytestmark = pytest.mark.matrix

_URL: dict[str, str] = {}


@pytest.fixture(scope="module")
def _llama_cpp_python(llama_cpp_python_base_url: str) -> None:
    _URL["llama-cpp-python"] = llama_cpp_python_base_url


@pytest.fixture(scope="module")
def _vllm(vllm_base_url: str) -> None:
    _URL["vllm"] = vllm_base_url


@pytest.fixture(scope="module")
def _litellm(litellm_base_url: str) -> None:
    _URL["litellm"] = litellm_base_url


@pytest.mark.usefixtures("_llama_cpp_python")
class TestLlamaCppPythonStandard(LlamaCppPythonGaps, WithTools):
    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {
            "model": MODEL,
            "base_url": _URL["llama-cpp-python"],
            "temperature": 0,
            "seed": 7,
        }


@pytest.mark.usefixtures("_vllm")
class TestVllmStandard(VllmGaps, WithTools):
    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {
            "model": MODEL,
            "base_url": _URL["vllm"],
            "api_key": VLLM_KEY,
            "temperature": 0,
            "seed": 7,
            # vLLM writes the hermes wrapper around a tool call (`<tool_call>\n{"name": ...,
            # "arguments": ...}\n</tool_call>`) and parses it at the end: a cut one is text.
            "max_tokens": 80,
        }


@pytest.mark.usefixtures("_litellm")
class TestLitellmStandard(LitellmGaps, WithTools):
    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {
            "model": MODEL,
            "base_url": _URL["litellm"],
            "api_key": LITELLM_KEY,
            "temperature": 0,
            "seed": 7,
            "max_tokens": 48,
        }
