"""Calling the models: the streamed answers, as encoded SSE events.

Every call goes through the model's public async API (``astream``, ``ainvoke``,
``agenerate``, ``aembed_documents``), so callbacks, LangSmith tracing, ``track_usage`` and
the model's retries and errors work exactly as for a LangChain user. ``n`` choices (and a
list of prompts) are that many calls, streamed side by side (`merge_streams`).

Every stream is entered with ``aclosing``: when the client leaves, closing the generator
here closes the model's stream, and with it the backend's HTTP response.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import Any, cast

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessageChunk
from langchain_core.outputs import LLMResult
from langchain_core.runnables import Runnable

from langchain_customllm.llms import CustomLLM
from langchain_customllm.serve.streaming import merge_streams
from langchain_customllm.serve.wire_in import CallPlan
from langchain_customllm.serve.wire_out import ChunkWriter

__all__ = ["chat_events", "text_events"]


async def chat_events(
    runnable: Runnable[LanguageModelInput, Any],
    messages: Sequence[Any],
    plan: CallPlan,
    writer: ChunkWriter,
    n: int,
) -> AsyncGenerator[bytes, None]:
    """The SSE events of a streamed chat answer with ``n`` choices."""
    for index in range(n):
        writer.open(index)
    if n == 1:
        # The common case without the merging task: one stream, read in this task.
        stream = cast(
            "AsyncGenerator[AIMessageChunk, None]",
            runnable.astream(list(messages), stop=plan.stop, **plan.kwargs),
        )
        async with contextlib.aclosing(stream):
            async for chunk in stream:
                data = writer.chat_chunk(0, chunk)
                if data:
                    yield data
        yield writer.finish(0)
    else:
        streams = [
            runnable.astream(list(messages), stop=plan.stop, **plan.kwargs) for _ in range(n)
        ]
        async for index, item in merge_streams(streams):
            if item is None:
                yield writer.finish(index)
            elif isinstance(item, AIMessageChunk):
                data = writer.chat_chunk(index, item)
                if data:
                    yield data
    yield writer.end()


class _FinalInfo(BaseCallbackHandler):
    """Keeps the ``generation_info`` (finish reason, usage, cost) of a text stream.

    A text model's ``astream`` yields strings only; the rest of its last chunk reaches
    callbacks, in the merged result ``on_llm_end`` gets.
    """

    run_inline = True  # cheap: no executor hop in async runs

    def __init__(self) -> None:
        super().__init__()
        self.info: dict[str, Any] | None = None

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        """Keep the answer's generation info."""
        if response.generations and response.generations[0]:
            self.info = response.generations[0][0].generation_info or {}


async def _text_stream(
    model: CustomLLM, prompt: str, plan: CallPlan
) -> AsyncGenerator[tuple[str, dict[str, Any] | None], None]:
    """``(text, None)`` per piece, then ``("", generation_info)`` once the answer ends."""
    final = _FinalInfo()
    stream = cast(
        "AsyncGenerator[str, None]",
        model.astream(prompt, {"callbacks": [final]}, stop=plan.stop, **plan.kwargs),
    )
    async with contextlib.aclosing(stream):
        async for text in stream:
            yield text, None
    yield "", final.info


async def text_events(
    model: CustomLLM, prompts: Sequence[str], plan: CallPlan, writer: ChunkWriter
) -> AsyncGenerator[bytes, None]:
    """The SSE events of a streamed text completion, one choice per prompt."""
    streams: list[AsyncIterator[tuple[str, dict[str, Any] | None]]] = [
        _text_stream(model, prompt, plan) for prompt in prompts
    ]
    for index in range(len(prompts)):
        writer.open(index)
    async for index, item in merge_streams(streams):
        if item is None:
            yield writer.finish(index)
        else:
            data = writer.text_chunk(index, *item)
            if data:
                yield data
    yield writer.end()
