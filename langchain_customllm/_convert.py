"""Turn assembled `Piece`s into LangChain output objects (pure, shared by both models)."""

from __future__ import annotations

from typing import Any, cast

from langchain_core.exceptions import OutputParserException
from langchain_core.messages import AIMessage, AIMessageChunk, InvalidToolCall, ToolCall
from langchain_core.messages.ai import InputTokenDetails, OutputTokenDetails, UsageMetadata
from langchain_core.messages.tool import ToolCallChunk, tool_call_chunk
from langchain_core.output_parsers.openai_tools import make_invalid_tool_call, parse_tool_call
from langchain_core.outputs import ChatGenerationChunk, GenerationChunk

from langchain_customllm._assembly import Piece
from langchain_customllm._chunks import UsageSafeChunk, text_chunk, with_costs
from langchain_customllm.formats.base import TokenUsage, ToolCallPiece
from langchain_customllm.pricing import Cost

__all__ = [
    "MODEL_PROVIDER",
    "add_token_usage",
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


def usage_to_metadata(usage: TokenUsage, cost: Cost | None = None) -> UsageMetadata:
    """LangChain's standard usage dict, with cache/reasoning details when reported.

    With a cost, also ``input_cost``, ``output_cost`` and ``total_cost`` (floats, USD):
    LangSmith reads them as the run's cost, so no price is needed in the workspace.
    """
    meta = UsageMetadata(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        total_tokens=usage.total_tokens,
    )
    if usage.cache_read is not None:
        meta["input_token_details"] = InputTokenDetails(cache_read=usage.cache_read)
    if usage.reasoning is not None:
        meta["output_token_details"] = OutputTokenDetails(reasoning=usage.reasoning)
    if cost is not None:
        # Not in core's TypedDict, but LangSmith's UsageMetadata schema has them; the same
        # fields a merged stream gets (see _chunks).
        return cast(UsageMetadata, with_costs(cast(dict[str, Any], meta), cost.as_dict()))
    return meta


def token_usage_dict(usage: TokenUsage | None) -> dict[str, Any]:
    """OpenAI-style ``token_usage`` for ``llm_output`` and ``generation_info``.

    Cached and reasoning counts, when reported, are nested as OpenAI nests them
    (``prompt_tokens_details.cached_tokens``, ``completion_tokens_details.reasoning_tokens``).
    """
    if usage is None:
        return {}
    out: dict[str, Any] = {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
    }
    if usage.cache_read is not None:
        out["prompt_tokens_details"] = {"cached_tokens": usage.cache_read}
    if usage.reasoning is not None:
        out["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning}
    return out


def add_token_usage(totals: dict[str, Any], usage: dict[str, Any]) -> None:
    """Add one ``token_usage`` dict into running totals, nested details included."""
    for key, value in usage.items():
        if isinstance(value, dict):
            add_token_usage(totals.setdefault(key, {}), value)
        elif isinstance(value, int):
            totals[key] = totals.get(key, 0) + value


def _response_metadata(piece: Piece) -> dict[str, Any]:
    meta = {**piece.metadata, "model_provider": MODEL_PROVIDER}
    if piece.cost is not None:
        meta["cost"] = piece.cost.as_dict()
    return meta


def _tool_calls(pieces: list[ToolCallPiece]) -> tuple[list[ToolCall], list[InvalidToolCall]]:
    """Whole tool calls; arguments that are not valid JSON become `invalid_tool_calls`."""
    valid: list[ToolCall] = []
    invalid: list[InvalidToolCall] = []
    for piece in pieces:
        raw = {"id": piece.id, "function": {"name": piece.name or "", "arguments": piece.args}}
        try:
            call = parse_tool_call(raw, return_id=True)
        except OutputParserException as exc:
            invalid.append(make_invalid_tool_call(raw, str(exc)))
            continue
        if call is not None and not isinstance(call.get("args"), dict):
            # Valid JSON that is not an object (vLLM answers a non-strict tool with a bare
            # "Paris"): not callable with keyword arguments, so it is not a valid call.
            invalid.append(
                make_invalid_tool_call(
                    raw,
                    f"Function {piece.name!r} arguments are JSON but not an object: "
                    f"{piece.args[:200]}",
                )
            )
            continue
        if call is not None:
            valid.append(cast(ToolCall, call))
    return valid, invalid


def _tool_call_chunks(pieces: list[ToolCallPiece]) -> list[ToolCallChunk]:
    return [tool_call_chunk(name=p.name, args=p.args, id=p.id, index=p.index) for p in pieces]


def piece_to_message(piece: Piece) -> AIMessage:
    """Build the `AIMessage` for a whole answer."""
    # Only non-empty fields are passed: each one core receives runs its validators.
    fields: dict[str, Any] = {}
    if piece.tool_calls:
        fields["tool_calls"], fields["invalid_tool_calls"] = _tool_calls(piece.tool_calls)
    if piece.reasoning:
        fields["additional_kwargs"] = {"reasoning_content": piece.reasoning}
    if piece.usage:
        fields["usage_metadata"] = usage_to_metadata(piece.usage, piece.cost)
    return AIMessage(
        content=piece.text, response_metadata=_response_metadata(piece), id=piece.id, **fields
    )


def piece_to_chat_chunk(piece: Piece) -> ChatGenerationChunk:
    """Build a `ChatGenerationChunk`; only the final one carries metadata and usage.

    The final chunk's ``usage_metadata`` has token counts; its cost is in
    ``response_metadata["cost"]``, and in ``usage_metadata`` only when it is the answer's only
    chunk. They are `UsageSafeChunk`s, whose merge puts the cost into the merged usage.
    """
    if not piece.final:
        if not piece.reasoning and not piece.tool_calls:
            # Most chunks are text only: built without validation (see _chunks).
            return text_chunk(piece.text, piece.id)
        return UsageSafeChunk(
            message=AIMessageChunk(
                content=piece.text,
                additional_kwargs=(
                    {"reasoning_content": piece.reasoning} if piece.reasoning else {}
                ),
                id=piece.id,
                tool_call_chunks=_tool_call_chunks(piece.tool_calls),
            )
        )
    return UsageSafeChunk(
        message=AIMessageChunk(
            content=piece.text,
            response_metadata=_response_metadata(piece),
            # Float costs only where nothing will be merged in (see _chunks).
            usage_metadata=(
                usage_to_metadata(piece.usage, piece.cost if piece.only else None)
                if piece.usage
                else None
            ),
            id=piece.id,
            chunk_position="last",
            # A whole answer streamed as one chunk (non-streaming formats, tool fallbacks).
            tool_call_chunks=_tool_call_chunks(piece.tool_calls),
            additional_kwargs={"reasoning_content": piece.reasoning} if piece.reasoning else {},
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
    if piece.cost is not None:
        info["cost"] = piece.cost.as_dict()
    if piece.reasoning:
        info["reasoning_content"] = piece.reasoning
    return GenerationChunk(text=piece.text, generation_info=info)
