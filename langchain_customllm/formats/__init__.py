"""Wire formats: how each family of servers spells requests and answers.

Select one by name with ``wire_format="openai"`` (the default), or pass a `WireFormat`
instance. See `langchain_customllm.formats.base` for the interface. The format classes
are imported when first used (``from langchain_customllm.formats import TGIFormat``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from langchain_customllm._lazy import lazy_exports
from langchain_customllm.formats.base import (
    EmbedParams,
    GeneratedImage,
    GenerationParams,
    ImageParams,
    ParsedChunk,
    ParsedEmbeddings,
    ParsedImages,
    TokenUsage,
    WireFormat,
    WireRequest,
    get_format,
    register_format,
)

if TYPE_CHECKING:
    from langchain_customllm.formats.custom import CustomFormat, CustomFormatConfig
    from langchain_customllm.formats.ollama import OllamaFormat
    from langchain_customllm.formats.openai import OpenAIFormat
    from langchain_customllm.formats.prompt import ChatTemplate
    from langchain_customllm.formats.tei import TEIFormat
    from langchain_customllm.formats.tgi import TGIFormat

_LAZY = {
    "ChatTemplate": "prompt",
    "CustomFormat": "custom",
    "CustomFormatConfig": "custom",
    "OllamaFormat": "ollama",
    "OpenAIFormat": "openai",
    "TEIFormat": "tei",
    "TGIFormat": "tgi",
}

__all__ = [
    "ChatTemplate",
    "CustomFormat",
    "CustomFormatConfig",
    "EmbedParams",
    "GeneratedImage",
    "GenerationParams",
    "ImageParams",
    "OllamaFormat",
    "OpenAIFormat",
    "ParsedChunk",
    "ParsedEmbeddings",
    "ParsedImages",
    "TEIFormat",
    "TGIFormat",
    "TokenUsage",
    "WireFormat",
    "WireRequest",
    "get_format",
    "register_format",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals(), __all__)
