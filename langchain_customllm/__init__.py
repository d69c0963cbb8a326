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
    "CustomFormat",
    "CustomLLM",
    "CustomLLMError",
    "InternalServerError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestTimeoutError",
    "ResponseError",
    "StreamError",
    "StreamTimeoutError",
    "WireFormat",
    "__version__",
    "get_format",
    "load_models",
    "register_format",
]
