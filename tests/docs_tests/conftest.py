"""The docs run against the same real llama.cpp server as the integration tests."""

from tests.integration_tests.conftest import base_url  # noqa: F401 (the session server fixture)
