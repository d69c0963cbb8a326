import pytest

from tests.unit_tests.fakes import FakeServer


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    """Run a test on both twins: invoke/stream and ainvoke/astream."""
    return str(request.param)


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()
