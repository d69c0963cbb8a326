"""A chat chunk whose merge survives float costs in ``usage_metadata`` (langchain #36015).

langchain-core merges a stream n-ary (``chunks[0] + chunks[1:]``: `BaseChatModel.stream`
does it for ``on_llm_end``, `generate_from_stream` for ``streaming=True``). That merge adds
the usage of every chunk in turn, and two chunks without usage already add up to an
all-int zero usage; adding the final chunk's float ``input_cost`` to it then raises
``ValueError: Unknown value types``, even though only one chunk carries usage.

`UsageSafeChunk` merges the usage-less runs n-ary, as core does, and adds each chunk that
carries usage on its own, which core handles (``None + usage`` is the usage). Only the
first chunk's class decides how a list is merged, so every chat chunk we yield is one.
"""

from __future__ import annotations

from langchain_core.outputs import ChatGenerationChunk

__all__ = ["UsageSafeChunk"]


class UsageSafeChunk(ChatGenerationChunk):
    """`ChatGenerationChunk` with an n-ary merge that tolerates float costs (see module)."""

    @classmethod
    def lc_id(cls) -> list[str]:
        """Serialize as a plain `ChatGenerationChunk`: the class is an implementation detail."""
        return ChatGenerationChunk.lc_id()

    def __add__(
        self, other: ChatGenerationChunk | list[ChatGenerationChunk]
    ) -> ChatGenerationChunk:
        if not isinstance(other, list) or not other:
            return super().__add__(other)
        merged: ChatGenerationChunk = self
        run: list[ChatGenerationChunk] = []
        for chunk in other:
            if getattr(chunk.message, "usage_metadata", None) is None:
                run.append(chunk)
                continue
            if run:
                merged = ChatGenerationChunk.__add__(merged, run)
                run = []
            merged = ChatGenerationChunk.__add__(merged, chunk)
        return ChatGenerationChunk.__add__(merged, run) if run else merged
