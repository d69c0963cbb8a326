"""The unvalidated text chunk is the validated one, field by field (see _chunks)."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.load import dumpd
from langchain_core.messages import AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk
from pydantic import BaseModel, PrivateAttr

from langchain_customllm._chunks import UsageSafeChunk, _builder, text_chunk


def pydantic_state(obj: BaseModel) -> dict[str, Any]:
    return {
        "class": type(obj),
        "dict": dict(obj.__dict__),
        "fields_set": set(obj.model_fields_set),
        "extra": obj.__pydantic_extra__,
        "private": obj.__pydantic_private__,
    }


@pytest.mark.parametrize(("text", "message_id"), [("Par", "chatcmpl-1"), ("", None), ("é\n", "x")])
def test_text_chunk_is_the_validated_chunk(text: str, message_id: str | None) -> None:
    fast = text_chunk(text, message_id)
    slow = UsageSafeChunk(message=AIMessageChunk(content=text, id=message_id))
    assert fast == slow
    assert pydantic_state(fast.message) == pydantic_state(slow.message)
    fast_state, slow_state = pydantic_state(fast), pydantic_state(slow)
    # The messages compare equal above; the outer dicts hold them.
    assert fast_state.pop("dict").keys() == slow_state.pop("dict").keys()
    assert fast_state == slow_state
    assert fast.text == slow.text == text
    assert fast.model_dump() == slow.model_dump()
    assert dumpd(fast) == dumpd(slow)
    assert repr(fast) == repr(slow)
    # Every field the class has today is set, so a field core adds fails here first.
    assert set(fast.message.__dict__) == set(AIMessageChunk.model_fields)
    assert set(fast.__dict__) == set(ChatGenerationChunk.model_fields)


def test_text_chunks_share_no_mutable_state() -> None:
    a, b = text_chunk("a", None), text_chunk("b", None)
    a.message.additional_kwargs["k"] = 1
    a.message.response_metadata["k"] = 1
    a.message.tool_call_chunks.append({"name": "f", "args": "", "id": None, "index": 0})  # type: ignore[typeddict-item]
    assert b.message.additional_kwargs == {}
    assert b.message.response_metadata == {}
    assert b.message.tool_call_chunks == []


def test_text_chunks_merge_and_assign_like_validated_ones() -> None:
    chunks = [text_chunk(t, "id-1") for t in ("The ", "capital ", "is ", "Paris.")]
    merged = chunks[0] + chunks[1:]
    assert merged.message.content == "The capital is Paris."
    assert merged.text == "The capital is Paris."
    # What core's stream() does to every chunk.
    chunks[0].message.response_metadata = {"model_provider": "customllm"}
    assert chunks[0].message.response_metadata == {"model_provider": "customllm"}
    assert chunks[0].message.content_blocks == [{"type": "text", "text": "The "}]


def test_builder_falls_back_to_model_construct_for_private_state() -> None:
    class WithPrivate(BaseModel):
        a: int = 0
        _secret: int = PrivateAttr(default=7)

    built = _builder(WithPrivate)({"a"}, {"a": 3})
    assert built.a == 3
    assert built._secret == 7
    assert built.model_fields_set == {"a"}
