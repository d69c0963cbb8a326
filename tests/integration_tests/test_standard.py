"""langchain-tests' standard integration suite against llama.cpp's C++ llama-server."""

from __future__ import annotations

from typing import Any

from tests.integration_tests._gaps import LlamaServerGaps, WithoutTools
from tests.integration_tests.conftest import MODEL


# Tools, structured output and JSON mode are tested in test_standard_tools.py (on the same
# server, whose chat template declares tools); this run checks the suite with them off.
class TestChatCustomLLMIntegration(LlamaServerGaps, WithoutTools):
    @property
    def chat_model_params(self) -> dict[str, Any]:
        # base_url comes from CUSTOMLLM_BASE_URL, set by the session fixture.
        return {"model": MODEL, "temperature": 0, "seed": 7}

    @property
    def supports_model_override(self) -> bool:
        # llama-server serves one model and answers every name with its own alias (measured:
        # "smollm2" for a request for "smollm2-override"), so the suite's override tests
        # cannot see the per-call model in the answer (llama-cpp-python's server echoed it).
        return False
