"""langchain-customllm: any LLM server as a first-class LangChain model.

`ChatCustomLLM` (chat) and `CustomLLM` (text completion) talk to a server through a thin
httpx client and a pluggable wire format (OpenAI-compatible by default). Every error they
raise is a `CustomLLMError` subclass.
"""

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
    StreamTimeoutError,
)
from langchain_customllm.chat_models import ChatCustomLLM
from langchain_customllm.config import load_models
from langchain_customllm.formats import (
    ChatTemplate,
    CustomFormat,
    WireFormat,
    get_format,
    register_format,
)
from langchain_customllm.llms import CustomLLM
from langchain_customllm.pricing import Cost, Pricing, PricingTable, cost_for
from langchain_customllm.usage import ModelUsage, UsageTracker, track_usage

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
    "CustomLLM",
    "CustomLLMError",
    "InternalServerError",
    "ModelUsage",
    "NotFoundError",
    "PermissionDeniedError",
    "Pricing",
    "PricingTable",
    "RateLimitError",
    "RequestTimeoutError",
    "ResponseError",
    "StreamError",
    "StreamTimeoutError",
    "UsageTracker",
    "WireFormat",
    "__version__",
    "cost_for",
    "get_format",
    "load_models",
    "register_format",
    "track_usage",
]
