"""Integration tests talk to a real llama.cpp server on loopback.

The server (llama-cpp-python[server] with SmolLM2-135M-Instruct) is installed and started once
per test run by the repo's own `scripts/local_server.py`, and stopped by PID at the end.
Set ``CUSTOMLLM_TEST_BASE_URL`` to run against a server you started yourself instead.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import sys
from collections.abc import Iterator
from types import ModuleType

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODEL = os.environ.get("CUSTOMLLM_TEST_MODEL", "smollm2")
TEST_PORT = int(os.environ.get("CUSTOMLLM_TEST_PORT", "8766"))


def _local_server() -> ModuleType:
    spec = importlib.util.spec_from_file_location("local_server", ROOT / "scripts/local_server.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while defined
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session", autouse=True)
def base_url() -> Iterator[str]:
    """The server's /v1 root; also exported as CUSTOMLLM_BASE_URL for default-built models."""
    url = os.environ.get("CUSTOMLLM_TEST_BASE_URL")
    handle = None
    if not url:
        handle = _local_server().start(port=TEST_PORT)
        url = str(handle.base_url)
    previous = os.environ.get("CUSTOMLLM_BASE_URL")
    os.environ["CUSTOMLLM_BASE_URL"] = url
    try:
        yield url
    finally:
        if previous is None:
            os.environ.pop("CUSTOMLLM_BASE_URL", None)
        else:
            os.environ["CUSTOMLLM_BASE_URL"] = previous
        if handle is not None:
            handle.stop()


@pytest.fixture(scope="session")
def tools_base_url() -> Iterator[str]:
    """A second llama.cpp server with ``--chat_format chatml-function-calling`` (tools)."""
    url = os.environ.get("CUSTOMLLM_TEST_TOOLS_BASE_URL")
    if url:
        yield url
        return
    handle = _local_server().start(port=TEST_PORT + 1, chat_format="chatml-function-calling")
    try:
        yield str(handle.base_url)
    finally:
        handle.stop()


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    """Run a test on both twins: invoke/stream and ainvoke/astream."""
    return str(request.param)
