"""langchain-core's model error family, or stand-ins of the same shape before it existed.

langchain-core 1.6 added ``ModelError`` and its subclasses, which our errors also inherit so
that code catching them keeps working; the package supports langchain-core 1.4, where they
do not exist yet. There our errors subclass these stand-ins instead.
"""

from __future__ import annotations

from langchain_core.exceptions import LangChainException

__all__ = [
    "ModelAPIError",
    "ModelAuthenticationError",
    "ModelConnectionError",
    "ModelError",
    "ModelInvalidRequestError",
    "ModelNotFoundError",
    "ModelPermissionDeniedError",
    "ModelRateLimitError",
    "ModelTimeoutError",
]

try:
    from langchain_core.exceptions import (
        ModelAPIError,
        ModelAuthenticationError,
        ModelConnectionError,
        ModelError,
        ModelInvalidRequestError,
        ModelNotFoundError,
        ModelPermissionDeniedError,
        ModelRateLimitError,
        ModelTimeoutError,
    )
except ImportError:  # langchain-core < 1.6

    class ModelError(LangChainException):  # type: ignore[no-redef]
        """Stand-in for langchain-core 1.6's base of model errors."""

    class ModelAPIError(ModelError):  # type: ignore[no-redef]
        """Stand-in for langchain-core 1.6's ``ModelAPIError``."""

    class ModelAuthenticationError(ModelError):  # type: ignore[no-redef]
        """Stand-in for langchain-core 1.6's ``ModelAuthenticationError``."""

    class ModelConnectionError(ModelError):  # type: ignore[no-redef]
        """Stand-in for langchain-core 1.6's ``ModelConnectionError``."""

    class ModelInvalidRequestError(ModelError):  # type: ignore[no-redef]
        """Stand-in for langchain-core 1.6's ``ModelInvalidRequestError``."""

    class ModelNotFoundError(ModelError):  # type: ignore[no-redef]
        """Stand-in for langchain-core 1.6's ``ModelNotFoundError``."""

    class ModelPermissionDeniedError(ModelError):  # type: ignore[no-redef]
        """Stand-in for langchain-core 1.6's ``ModelPermissionDeniedError``."""

    class ModelRateLimitError(ModelError):  # type: ignore[no-redef]
        """Stand-in for langchain-core 1.6's ``ModelRateLimitError``."""

    class ModelTimeoutError(ModelError):  # type: ignore[no-redef]
        """Stand-in for langchain-core 1.6's ``ModelTimeoutError``."""
