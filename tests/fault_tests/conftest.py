"""Fixtures for the fault-injection suite: real sockets, loopback only.

Run with ``--allow-hosts=127.0.0.1``. Every test here is also marked
``allow_hosts(["127.0.0.1"])``, so the suite works (still loopback only) when a run passes
``--disable-socket`` for the unit tests.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from typing import Any

import pytest

from tests.servers.faulty import FaultyServer

# The matrix's checks and test body live there: keep pytest's detailed assert messages.
pytest.register_assert_rewrite("tests.fault_tests._matrix")

_HERE = pathlib.Path(__file__).parent


@pytest.fixture(autouse=True, scope="session")
def _one_tls_context() -> Iterator[None]:
    """Share one default TLS context between the many clients these tests build.

    Every model builds its own httpx clients, and httpx loads the CA bundle for each
    (~60 ms): over hundreds of cells that is most of the suite's time. These tests speak
    plain http on loopback, so the context is never used; sharing it changes nothing else.
    """
    try:
        from httpx._transports import default as transports
    except ImportError:  # pragma: no cover - another httpx layout: just be slower
        yield
        return
    original = getattr(transports, "create_ssl_context", None)
    if original is None:  # pragma: no cover
        yield
        return
    shared: dict[bool, Any] = {}

    def cached(verify: Any = True, cert: Any = None, trust_env: bool = True) -> Any:
        if verify is True and cert is None:
            if trust_env not in shared:
                shared[trust_env] = original(verify=verify, cert=cert, trust_env=trust_env)
            return shared[trust_env]
        return original(verify=verify, cert=cert, trust_env=trust_env)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(transports, "create_ssl_context", cached)
        yield


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in pathlib.Path(str(item.path)).parents:
            item.add_marker(pytest.mark.allow_hosts(["127.0.0.1"]))


@pytest.fixture
def server() -> Iterator[FaultyServer]:
    """A fresh scripted server; fails the test if a behaviour itself crashed."""
    with FaultyServer() as srv:
        yield srv
    assert not srv.handler_errors, f"the faulty server's handlers failed: {srv.handler_errors!r}"
