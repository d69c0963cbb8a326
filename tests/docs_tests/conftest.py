"""The docs run against the same real llama.cpp server as the integration tests."""

from tests.integration_tests.conftest import (  # noqa: F401 (the session server fixtures)
    base_url,
    embeddings_base_url,
)
