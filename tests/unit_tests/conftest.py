from collections.abc import Iterator

import pytest

from langchain_customllm._detect import clear_cache
from tests._calls import PATHS
from tests.unit_tests.fakes import FakeServer


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    """Run a test on both twins: invoke/stream and ainvoke/astream."""
    return str(request.param)


@pytest.fixture(params=PATHS)
def path(request: pytest.FixtureRequest) -> str:
    """Run a test on every call path: invoke, ainvoke, stream and astream."""
    return str(request.param)


@pytest.fixture(params=["chat", "text"])
def kind(request: pytest.FixtureRequest) -> str:
    """Run a test on both model classes: ChatCustomLLM (chat) and CustomLLM (text)."""
    return str(request.param)


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


@pytest.fixture(autouse=True)
def _fresh_detection() -> Iterator[None]:
    """Each test starts with no server detected (the cache is process-wide)."""
    clear_cache()
    yield
    clear_cache()
