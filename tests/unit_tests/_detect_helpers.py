"""What each server family answers to ``GET /v1/models``: the answers detection reads.

- llama.cpp's ``llama-server`` 0.5.0-dev (``-c 4096 -np 4``, SmolLM2): recorded from the real
  server on 2026-12-02, status, headers and body as they came.
- llama-cpp-python 0.3.36: the body its ``llama_cpp/server/app.py`` builds (``get_models``),
  served by uvicorn.
- vLLM 0.32: its ``ModelCard`` (``vllm/entrypoints/openai/protocol.py``) as started by the
  matrix (``--served-model-name smollm2 --max-model-len 2048``).
- The LiteLLM proxy 1.106.2: ``create_model_info_response`` in ``litellm/proxy/utils.py``
  (``created`` is its ``DEFAULT_MODEL_CREATED_AT_TIME``, ``owned_by`` the provider) for the
  matrix's models.yaml.
- Ollama's ``/v1/models`` and OpenAI's own list, for contrast.
"""

from __future__ import annotations

from typing import Any

import httpx

LLAMA_SERVER_HEADERS = {
    "server": "llama.cpp",
    "access-control-allow-origin": "",
    "content-type": "application/json; charset=utf-8",
}
LLAMA_SERVER: dict[str, Any] = {
    "models": [
        {
            "name": "smollm2",
            "model": "smollm2",
            "modified_at": "",
            "size": "",
            "digest": "",
            "type": "model",
            "description": "",
            "tags": [""],
            "capabilities": ["completion"],
            "parameters": "",
            "details": {
                "parent_model": "",
                "format": "gguf",
                "family": "",
                "families": [""],
                "parameter_size": "",
                "quantization_level": "",
            },
        }
    ],
    "object": "list",
    "data": [
        {
            "id": "smollm2",
            "aliases": ["smollm2"],
            "tags": [],
            "object": "model",
            "created": 1796210757,
            "owned_by": "llamacpp",
            "meta": {
                "vocab_type": 2,
                "n_vocab": 49152,
                "n_ctx": 1024,
                "n_ctx_train": 8192,
                "n_embd": 576,
                "n_params": 134515008,
                "size": 96576768,
                "ftype": "Q4_1",
            },
        }
    ],
}
LLAMA_CPP_PYTHON: dict[str, Any] = {
    "object": "list",
    "data": [{"id": "smollm2", "object": "model", "owned_by": "me", "permissions": []}],
}
VLLM: dict[str, Any] = {
    "object": "list",
    "data": [
        {
            "id": "smollm2",
            "object": "model",
            "created": 1796210000,
            "owned_by": "vllm",
            "root": "/root/.cache/langchain-customllm/smollm2-hf",
            "parent": None,
            "max_model_len": 2048,
            "permission": [{"id": "modelperm-1", "object": "model_permission"}],
        }
    ],
}
LITELLM: dict[str, Any] = {
    "data": [
        {"id": "local-smollm2", "object": "model", "created": 1677610602, "owned_by": "openai"},
        {"id": "mock", "object": "model", "created": 1677610602, "owned_by": "openai"},
        {
            "id": "my-custom-model",
            "object": "model",
            "created": 1677610602,
            "owned_by": "my-custom-llm",
        },
    ],
    "object": "list",
}
OLLAMA: dict[str, Any] = {
    "object": "list",
    "data": [
        {"id": "llama3.2:1b", "object": "model", "created": 1730000000, "owned_by": "library"}
    ],
}
OPENAI: dict[str, Any] = {
    "object": "list",
    "data": [
        {"id": "gpt-3.5-turbo", "object": "model", "created": 1677610602, "owned_by": "openai"},
        {"id": "gpt-4o-mini", "object": "model", "created": 1721172741, "owned_by": "system"},
    ],
}

# (answer, headers, family, context window of "smollm2")
RECORDED: dict[str, tuple[dict[str, Any], dict[str, str], str | None, int | None]] = {
    "llama-server": (LLAMA_SERVER, LLAMA_SERVER_HEADERS, "llamacpp", 1024),
    "llama-cpp-python": (LLAMA_CPP_PYTHON, {"server": "uvicorn"}, "llama-cpp-python", None),
    "vllm": (VLLM, {"server": "uvicorn"}, "vllm", 2048),
    "litellm": (LITELLM, {"server": "uvicorn"}, "litellm", None),
    "ollama": (OLLAMA, {}, "ollama", None),
    "openai": (OPENAI, {}, None, None),
}


def answering(body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    """A `Wire.models` / `FakeServer.models` answer with this body."""

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=body, headers=headers)

    return answer
