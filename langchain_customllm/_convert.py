"""Turn assembled `Piece`s into LangChain output objects (pure, shared by both models)."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.messages.ai import InputTokenDetails, OutputTokenDetails, UsageMetadata
from langchain_core.outputs import ChatGenerationChunk, GenerationChunk

from langchain_customllm._assembly import Piece
from langchain_customllm.formats.base import TokenUsage

__all__ = [
    "MODEL_PROVIDER",
    "piece_to_chat_chunk",
    "piece_to_generation_chunk",
    "piece_to_message",
    "token_usage_dict",
    "usage_to_metadata",
]

MODEL_PROVIDER = "customllm"
"""``response_metadata["model_provider"]``: no langchain-core translator is registered under
this name, so ``content_blocks`` (and ``output_version="v1"``) use core's generic parsing,
which turns ``additional_kwargs["reasoning_content"]`` into a reasoning block."""


def usage_to_metadata(usage: TokenUsage) -> UsageMetadata:
    """LangChain's standard usage dict, with cache/reasoning details when reported."""
    meta = UsageMetadata(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        total_tokens=usage.total_tokens,
    )
    if usage.cache_read is not None:
        meta["input_token_details"] = InputTokenDetails(cache_read=usage.cache_read)
    if usage.reasoning is not None:
        meta["output_token_details"] = OutputTokenDetails(reasoning=usage.reasoning)
    return meta


def token_usage_dict(usage: TokenUsage | None) -> dict[str, int]:
    """OpenAI-style ``token_usage`` for ``llm_output`` and ``generation_info``."""
    if usage is None:
        return {}
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
    }


def _response_metadata(piece: Piece) -> dict[str, Any]:
    return {**piece.metadata, "model_provider": MODEL_PROVIDER}


def piece_to_message(piece: Piece) -> AIMessage:
    """Build the `AIMessage` for a whole answer."""
    return AIMessage(
        content=piece.text,
        additional_kwargs={"reasoning_content": piece.reasoning} if piece.reasoning else {},
        response_metadata=_response_metadata(piece),
        usage_metadata=usage_to_metadata(piece.usage) if piece.usage else None,
        id=piece.id,
    )


def piece_to_chat_chunk(piece: Piece) -> ChatGenerationChunk:
    """Build a `ChatGenerationChunk`; only the final one carries metadata and usage."""
    if not piece.final:
        return ChatGenerationChunk(
            message=AIMessageChunk(
                content=piece.text,
                additional_kwargs=(
                    {"reasoning_content": piece.reasoning} if piece.reasoning else {}
                ),
                id=piece.id,
            )
        )
    return ChatGenerationChunk(
        message=AIMessageChunk(
            content=piece.text,
            response_metadata=_response_metadata(piece),
            usage_metadata=usage_to_metadata(piece.usage) if piece.usage else None,
            id=piece.id,
            chunk_position="last",
        ),
        generation_info={"finish_reason": piece.metadata.get("finish_reason")},
    )


def piece_to_generation_chunk(piece: Piece) -> GenerationChunk:
    """Build a text `GenerationChunk`; the final one carries usage and metadata."""
    if not piece.final:
        return GenerationChunk(text=piece.text)
    info: dict[str, Any] = dict(piece.metadata)
    if piece.usage is not None:
        info["token_usage"] = token_usage_dict(piece.usage)
    if piece.reasoning:
        info["reasoning_content"] = piece.reasoning
    return GenerationChunk(text=piece.text, generation_info=info)
