"""Integration tests talk to a real llama.cpp server on loopback.

The server (llama.cpp's C++ ``llama-server`` with SmolLM2-135M-Instruct and our tool-capable
chat template) is built and started once per test run by the repo's own
`scripts/local_server.py`, and stopped by PID at the end. Set ``CUSTOMLLM_TEST_BASE_URL`` to
run against a server you started yourself instead.
"""

from __future__ import annotations

import importlib
import os
import pathlib
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODEL = os.environ.get("CUSTOMLLM_TEST_MODEL", "smollm2")
TEST_PORT = int(os.environ.get("CUSTOMLLM_TEST_PORT", "8766"))


def _script(name: str) -> ModuleType:
    """One of the server starters, ``scripts.<name>`` (the repository root is on sys.path)."""
    return importlib.import_module(f"scripts.{name}")


def _local_server() -> ModuleType:
    return _script("local_server")


def _serve(url_var: str, start: Callable[[], Any]) -> Iterator[str]:
    """Yield ``$url_var`` if set (a server you run), else start one and stop it after.

    ``start`` returns a handle of ``scripts``; its ``stop()`` leaves alone a server that
    was already running before the session.
    """
    url = os.environ.get(url_var)
    if url:
        yield url
        return
    handle = start()
    try:
        yield str(handle.base_url)
    finally:
        handle.stop()


@pytest.fixture(scope="session", autouse=True)
def base_url() -> Iterator[str]:
    """The server's /v1 root; also exported as CUSTOMLLM_BASE_URL for default-built models."""
    for url in _serve("CUSTOMLLM_TEST_BASE_URL", lambda: _local_server().start(port=TEST_PORT)):
        previous = os.environ.get("CUSTOMLLM_BASE_URL")
        os.environ["CUSTOMLLM_BASE_URL"] = url
        try:
            yield url
        finally:
            if previous is None:
                os.environ.pop("CUSTOMLLM_BASE_URL", None)
            else:
                os.environ["CUSTOMLLM_BASE_URL"] = previous


@pytest.fixture(scope="session")
def tools_base_url(base_url: str) -> Iterator[str]:
    """The server for tool tests: the session's own, whose chat template declares tools."""
    return os.environ.get("CUSTOMLLM_TEST_TOOLS_BASE_URL") or base_url


# ------------------------------------------------------------------ embeddings (branch embed)
EMBEDDINGS_PORT = int(os.environ.get("CUSTOMLLM_TEST_EMBEDDINGS_PORT", str(TEST_PORT + 2)))


@pytest.fixture(scope="session")
def embeddings_base_url() -> Iterator[str]:
    """The /v1 root of a llama.cpp server started with ``--embeddings --pooling mean``.

    A server of its own (mean pooling is set for the whole server), with ``--parallel 1``:
    with two slots, this llama.cpp build returns a wrong vector for a request that waits for
    a slot (test_embeddings_live.py). The starter's ``embeddings=True`` passes those flags
    (scripts/local_server.py); ``CUSTOMLLM_TEST_EMBEDDINGS_BASE_URL`` names a server you run
    instead.
    """
    yield from _serve(
        "CUSTOMLLM_TEST_EMBEDDINGS_BASE_URL",
        lambda: _local_server().start(port=EMBEDDINGS_PORT, embeddings=True),
    )


# ------------------------------------------------------------------ end of embeddings


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    """Run a test on both twins: invoke/stream and ainvoke/astream."""
    return str(request.param)


# ------------------------------------------------------------------ the real-server matrix
# llama-cpp-python's server, vLLM (CPU) and the LiteLLM proxy in front of llama-server, started
# by scripts/llama_cpp_python_server.py, vllm_server.py and litellm_server.py (installs cached
# in the user cache dir). Only tests marked `matrix` ask for them; set
# CUSTOMLLM_TEST_LLAMA_CPP_PYTHON_BASE_URL / _VLLM_ / _LITELLM_BASE_URL to use servers you
# started yourself (with the keys below); likewise
# CUSTOMLLM_TEST_VLLM_EMBEDDINGS_BASE_URL / _LITELLM_EMBEDDINGS_BASE_URL for the embeddings cells.

LLAMA_CPP_PYTHON_PORT = int(os.environ.get("CUSTOMLLM_LLAMA_CPP_PYTHON_PORT", "8973"))
VLLM_PORT = int(os.environ.get("CUSTOMLLM_VLLM_PORT", "8970"))
LITELLM_PORT = int(os.environ.get("CUSTOMLLM_LITELLM_PORT", "8971"))
LITELLM_BACKEND_PORT = int(os.environ.get("CUSTOMLLM_LITELLM_BACKEND_PORT", "8972"))
# The embeddings cells' servers (test_embeddings_matrix.py), each on a port of its own.
VLLM_EMBEDDINGS_PORT = int(os.environ.get("CUSTOMLLM_VLLM_EMBEDDINGS_PORT", "8974"))
LITELLM_EMBEDDINGS_PORT = int(os.environ.get("CUSTOMLLM_LITELLM_EMBEDDINGS_PORT", "8975"))
LITELLM_EMBEDDINGS_BACKEND_PORT = int(
    os.environ.get("CUSTOMLLM_LITELLM_EMBEDDINGS_BACKEND_PORT", "8976")
)
# Test keys for loopback-only servers; vLLM gets its key through its environment.
VLLM_KEY = "sk-vllm-matrix-key"
LITELLM_KEY = os.environ.get("CUSTOMLLM_LITELLM_MASTER_KEY") or "sk-customllm-matrix"


# The server profile of each llama.cpp family, in one place (what detection picks for each).
LLAMACPP_PROFILE = "llamacpp"
LLAMA_CPP_PYTHON_PROFILE = "llama-cpp-python"


@pytest.fixture(scope="session")
def llama_cpp_python_base_url() -> Iterator[str]:
    """llama-cpp-python's server with ``--chat_format chatml-function-calling`` (tools)."""
    yield from _serve(
        "CUSTOMLLM_TEST_LLAMA_CPP_PYTHON_BASE_URL",
        lambda: _script("llama_cpp_python_server").start(
            port=LLAMA_CPP_PYTHON_PORT, chat_format="chatml-function-calling"
        ),
    )


@pytest.fixture(scope="session")
def vllm_base_url() -> Iterator[str]:
    """vLLM 0.32 (CPU) serving SmolLM2-135M as ``smollm2``; it requires ``VLLM_KEY``."""
    yield from _serve(
        "CUSTOMLLM_TEST_VLLM_BASE_URL",
        lambda: _script("vllm_server").start(port=VLLM_PORT, api_key=VLLM_KEY),
    )


@pytest.fixture(scope="session")
def litellm_base_url() -> Iterator[str]:
    """The LiteLLM proxy (master key ``LITELLM_KEY``, no database) in front of llama-server."""
    yield from _serve(
        "CUSTOMLLM_TEST_LITELLM_BASE_URL",
        lambda: _script("litellm_server").start(
            port=LITELLM_PORT, backend_port=LITELLM_BACKEND_PORT
        ),
    )


@pytest.fixture(scope="session")
def vllm_embeddings_url() -> Iterator[str]:
    """vLLM (CPU) with the pooling runner: SmolLM2 mean-pooled as ``smollm2``, no key."""
    yield from _serve(
        "CUSTOMLLM_TEST_VLLM_EMBEDDINGS_BASE_URL",
        lambda: _script("vllm_server").start(port=VLLM_EMBEDDINGS_PORT, embeddings=True),
    )


@pytest.fixture(scope="session")
def litellm_embeddings_url() -> Iterator[str]:
    """The LiteLLM proxy routing ``smollm2-embed`` to an embeddings llama-server."""
    yield from _serve(
        "CUSTOMLLM_TEST_LITELLM_EMBEDDINGS_BASE_URL",
        lambda: _script("litellm_server").start(
            port=LITELLM_EMBEDDINGS_PORT,
            backend_port=LITELLM_EMBEDDINGS_BACKEND_PORT,
            embeddings=True,
        ),
    )


# ------------------------------------------------------ replicas (issue 18), the gateway (serve)
from tests.integration_tests._replica_fixtures import (  # noqa: E402, F401
    chat_replicas,
    closing,
    embeddings_replicas,
    proxies,
)
from tests.integration_tests._serve_fixtures import gateway, gateway_url  # noqa: E402, F401
