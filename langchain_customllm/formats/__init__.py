"""Wire formats: how each family of servers spells requests and answers.

Select one by name with ``wire_format="openai"`` (the default), or pass a `WireFormat`
instance. See `langchain_customllm.formats.base` for the interface.
"""

from langchain_customllm.formats.base import (
    GenerationParams,
    ParsedChunk,
    TokenUsage,
    WireFormat,
    WireRequest,
    get_format,
    register_format,
)
from langchain_customllm.formats.custom import CustomFormat, CustomFormatConfig
from langchain_customllm.formats.ollama import OllamaFormat
from langchain_customllm.formats.openai import OpenAIFormat
from langchain_customllm.formats.prompt import ChatTemplate
from langchain_customllm.formats.tgi import TGIFormat

__all__ = [
    "ChatTemplate",
    "CustomFormat",
    "CustomFormatConfig",
    "GenerationParams",
    "OllamaFormat",
    "OpenAIFormat",
    "ParsedChunk",
    "TGIFormat",
    "TokenUsage",
    "WireFormat",
    "WireRequest",
    "get_format",
    "register_format",
]
