"""Streamed chat chunks and float costs, around langchain-core issue 36015.

langchain-core adds usage dicts with ``_dict_int_op``, which rejects floats, and its n-ary
merge (``chunks[0] + chunks[1:]``) first adds two usage-less chunks into an all-int zero
usage: adding a later chunk's float ``input_cost`` to that raises ``ValueError: Unknown value
types``. Core 1.8 runs that n-ary merge on the streamed ``AIMessageChunk``s of every chain
(``_ChunkAccumulator``), a place no chunk subclass of ours can reach: a message chunk class
must keep `AIMessageChunk` as its first base, or ``message_chunk_to_message`` breaks.

So a streamed chunk never carries float costs in ``usage_metadata`` (only token counts) when
anything could be merged with it; the cost rides in ``response_metadata["cost"]``, a nested
dict that core's merge copies untouched because only the final chunk has it. The one
exception is a stream's only chunk (a whole answer sent as one chunk): nothing is merged
into it, so it carries the costs as `invoke` does.

`UsageSafeChunk` is the generation chunk we yield. When core merges a stream of them (for
``on_llm_end``, so LangSmith and `track_usage`; for `generate_from_stream` when
``streaming=True``), it copies the final chunk's cost back into the merged message's
``usage_metadata``, so the run's result carries the cost exactly as an ``invoke`` does.

`text_chunk` builds the chunk most events become (text, nothing else) without pydantic
validation: every validator of `AIMessageChunk` and `ChatGenerationChunk` is a no-op for a
plain string with no tool calls, and validating costs about half of what we spend per
streamed chunk. A unit test compares it, field by field, with the validated constructors.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk

__all__ = ["COST_KEYS", "UsageSafeChunk", "text_chunk", "with_costs"]

COST_KEYS = ("input_cost", "output_cost", "total_cost")
"""The cost fields LangSmith reads from ``usage_metadata`` (USD floats)."""


def with_costs(usage: dict[str, Any], cost: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``usage`` with the LangSmith cost fields taken from ``cost``.

    ``cost`` is a `Cost.as_dict()` (``response_metadata["cost"]``): its ``request_cost`` has no
    field in LangSmith's usage schema and is left out (``total_cost`` includes it).
    """
    return {**usage, **{key: cost[key] for key in COST_KEYS if key in cost}}


class UsageSafeChunk(ChatGenerationChunk):
    """`ChatGenerationChunk` whose merge puts the stream's cost into ``usage_metadata``."""

    @classmethod
    def lc_id(cls) -> list[str]:
        """Serialize as a plain `ChatGenerationChunk`: the class is an implementation detail."""
        return ChatGenerationChunk.lc_id()

    def __add__(
        self, other: ChatGenerationChunk | list[ChatGenerationChunk]
    ) -> ChatGenerationChunk:
        merged = super().__add__(other)
        message = merged.message
        usage = getattr(message, "usage_metadata", None)
        cost = message.response_metadata.get("cost")
        if usage and isinstance(cost, dict) and "total_cost" not in usage:
            # A new dict: the merged message may share the final chunk's usage dict.
            message.usage_metadata = with_costs(dict(usage), cost)  # type: ignore[attr-defined]
        # Core's merge returns a plain chunk: stay ours, so pairwise merges keep folding.
        return UsageSafeChunk(message=message, generation_info=merged.generation_info)


def _builder(cls: type[Any]) -> Any:
    """A function building ``cls`` from trusted field values, without validation.

    What ``model_construct`` does, minus its per-field Python loop (which costs as much as
    validating): a ``__dict__`` of every field, the set of fields "given", no extras and no
    private state. Classes that have any of those hooks get ``model_construct`` itself.
    """
    if cls.__pydantic_post_init__ is not None or cls.__private_attributes__:
        return lambda fields_set, values: cls.model_construct(fields_set, **values)
    extra_allowed = cls.model_config.get("extra") == "allow"
    new, setattr_ = object.__new__, object.__setattr__

    def build(fields_set: set[str], values: dict[str, Any]) -> Any:
        obj = new(cls)
        setattr_(obj, "__dict__", values)
        setattr_(obj, "__pydantic_fields_set__", fields_set)
        setattr_(obj, "__pydantic_extra__", {} if extra_allowed else None)
        setattr_(obj, "__pydantic_private__", None)
        return obj

    return build


_new_message = _builder(AIMessageChunk)
_new_generation = _builder(UsageSafeChunk)


def text_chunk(text: str, message_id: str | None) -> UsageSafeChunk:
    """``UsageSafeChunk(message=AIMessageChunk(content=text, id=message_id))``, unvalidated."""
    message = _new_message(
        {"content", "id"},
        {
            "content": text,
            "additional_kwargs": {},
            "response_metadata": {},
            "type": "AIMessageChunk",
            "name": None,
            "id": message_id,
            "tool_calls": [],
            "invalid_tool_calls": [],
            "usage_metadata": None,
            "tool_call_chunks": [],
            "chunk_position": None,
        },
    )
    chunk: UsageSafeChunk = _new_generation(
        {"message", "text"},
        {"text": text, "generation_info": None, "type": "ChatGenerationChunk", "message": message},
    )
    return chunk
