"""langchain-tests' standard integration suite through a non-OpenAI wire format.

The in-house torch-serve-style API (tests/servers/torchserve.py, answering with the real
model via llama.cpp) configured as a `custom` wire format, as a user would in YAML.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration_tests._gaps import WithoutTools
from tests.integration_tests.conftest import MODEL
from tests.servers import torchserve
from tests.servers.base import Backend

_URL: dict[str, str] = {}


@pytest.fixture(scope="module", autouse=True)
def in_house_api(base_url: str) -> Iterator[str]:
    with torchserve.serve(Backend(base_url, MODEL)) as server:
        _URL["url"] = server.url
        yield server.url


# The in-house API takes a prompt and returns text: its wire format has no tools and no JSON
# mode, and ChatCustomLLM refuses them (ConfigurationError) rather than drop them.
class TestChatCustomLLMCustomFormat(WithoutTools):
    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {
            "model": MODEL,
            "base_url": _URL["url"],
            "wire_format": torchserve.TORCHSERVE_FORMAT,
            "temperature": 0,
            "seed": 7,
            # SmolLM2 can ramble to the end of its 1024-token slot: minutes per answer on 2
            # busy cores, past the 120 s timeout (measured in a CI run at load 5).
            "max_tokens": 100,
        }
