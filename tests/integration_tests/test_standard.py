"""langchain-tests' standard integration suite against the real llama.cpp server."""

from __future__ import annotations

from typing import Any

from tests.integration_tests._gaps import LlamaCppGaps, WithoutTools
from tests.integration_tests.conftest import MODEL


# Tools, structured output and JSON mode are tested against llama.cpp started with
# --chat_format chatml-function-calling, in test_standard_tools.py; this server runs the
# GGUF's own chat template, which ignores tools unless one is forced by name.
class TestChatCustomLLMIntegration(LlamaCppGaps, WithoutTools):
    @property
    def chat_model_params(self) -> dict[str, Any]:
        # base_url comes from CUSTOMLLM_BASE_URL, set by the session fixture.
        return {"model": MODEL, "temperature": 0, "seed": 7}

    @property
    def supports_model_override(self) -> bool:
        return True

    @property
    def model_override_value(self) -> str:
        # llama.cpp serves one model and echoes the requested name: this proves we send
        # the per-call model and report what the server says.
        return "smollm2-override"
