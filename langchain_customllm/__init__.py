"""langchain-customllm: any LLM server as a first-class LangChain model.

`ChatCustomLLM` (chat), `CustomLLM` (text completion), `CustomLLMEmbeddings` and
`CustomImageGenerator` (image generation) talk to a server through a thin httpx client and
a pluggable wire format (OpenAI-compatible by default). Every error they raise is a
`CustomLLMError` subclass.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from langchain_customllm._lazy import lazy_exports

if TYPE_CHECKING:
    from langchain_customllm._connection import Endpoint
    from langchain_customllm._exceptions import (
        APIConnectionError,
        APIStatusError,
        APITimeoutError,
        AuthenticationError,
        BadRequestError,
        ConfigurationError,
        ConflictError,
        ContextLengthExceededError,
        CustomLLMError,
        InternalServerError,
        NotFoundError,
        PermissionDeniedError,
        RateLimitError,
        RequestTimeoutError,
        ResponseError,
        StreamError,
        StreamInterruptedError,
        StreamTimeoutError,
    )
    from langchain_customllm._framing import StreamEvent
    from langchain_customllm._images import ImageResult
    from langchain_customllm._replicas import ReplicaStats, ReplicasUnavailableError
    from langchain_customllm._request import request_headers
    from langchain_customllm.chat_models import ChatCustomLLM
    from langchain_customllm.config import load_models
    from langchain_customllm.embeddings import CustomLLMEmbeddings
    from langchain_customllm.formats import (
        ChatTemplate,
        CustomFormat,
        WireFormat,
        get_format,
        register_format,
    )
    from langchain_customllm.images import CustomImageGenerator
    from langchain_customllm.llms import CustomLLM
    from langchain_customllm.pricing import Cost, Pricing, PricingTable, cost_for
    from langchain_customllm.profiles import ServerProfile
    from langchain_customllm.usage import ModelUsage, UsageTracker, track_usage

# Public names and the module each lives in, imported on first access: `import
# langchain_customllm` stays cheap, and using `ChatCustomLLM` does not load the text model,
# the config loader or the usage tracker (langchain-core's own packages work the same way).
_LAZY: dict[str, str] = {
    **dict.fromkeys(
        [
            "APIConnectionError",
            "APIStatusError",
            "APITimeoutError",
            "AuthenticationError",
            "BadRequestError",
            "ConfigurationError",
            "ConflictError",
            "ContextLengthExceededError",
            "CustomLLMError",
            "InternalServerError",
            "NotFoundError",
            "PermissionDeniedError",
            "RateLimitError",
            "RequestTimeoutError",
            "ResponseError",
            "StreamError",
            "StreamInterruptedError",
            "StreamTimeoutError",
        ],
        "_exceptions",
    ),
    "ChatCustomLLM": "chat_models",
    "StreamEvent": "_framing",
    "request_headers": "_request",
    "ServerProfile": "profiles",
    "CustomLLM": "llms",
    "CustomLLMEmbeddings": "embeddings",
    "CustomImageGenerator": "images",
    "ImageResult": "_images",
    "Endpoint": "_connection",
    "ReplicaStats": "_replicas",
    "ReplicasUnavailableError": "_replicas",
    "load_models": "config",
    **dict.fromkeys(
        ["ChatTemplate", "CustomFormat", "WireFormat", "get_format", "register_format"], "formats"
    ),
    **dict.fromkeys(["Cost", "Pricing", "PricingTable", "cost_for"], "pricing"),
    **dict.fromkeys(["ModelUsage", "UsageTracker", "track_usage"], "usage"),
}

__version__ = "0.1.0"

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ChatCustomLLM",
    "ChatTemplate",
    "ConfigurationError",
    "ConflictError",
    "ContextLengthExceededError",
    "Cost",
    "CustomFormat",
    "CustomImageGenerator",
    "CustomLLM",
    "CustomLLMEmbeddings",
    "CustomLLMError",
    "Endpoint",
    "ImageResult",
    "InternalServerError",
    "ModelUsage",
    "NotFoundError",
    "PermissionDeniedError",
    "Pricing",
    "PricingTable",
    "RateLimitError",
    "ReplicaStats",
    "ReplicasUnavailableError",
    "RequestTimeoutError",
    "ResponseError",
    "ServerProfile",
    "StreamError",
    "StreamEvent",
    "StreamInterruptedError",
    "StreamTimeoutError",
    "UsageTracker",
    "WireFormat",
    "__version__",
    "cost_for",
    "get_format",
    "load_models",
    "register_format",
    "request_headers",
    "track_usage",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals(), __all__)
