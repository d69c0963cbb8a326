"""`ChatCustomLLM`: any chat server as a LangChain chat model."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel, LangSmithParams
from langchain_core.language_models.chat_models import (
    agenerate_from_stream,
    generate_from_stream,
)
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict

from langchain_customllm._assembly import Assembler, Piece
from langchain_customllm._common import CustomLLMFields
from langchain_customllm._convert import piece_to_chat_chunk, piece_to_message, token_usage_dict
from langchain_customllm._streaming import acomplete, aiter_pieces, complete, iter_pieces
from langchain_customllm.formats.base import WireRequest

__all__ = ["ChatCustomLLM"]


class ChatCustomLLM(CustomLLMFields, BaseChatModel):
    """Chat model for any LLM server: vLLM, llama.cpp, SGLang, LM Studio, gateways, ...

    Setup:
        Start a server (``make demo`` starts llama.cpp's on ``127.0.0.1:8765``) and point
        ``base_url`` at its API root; set ``CUSTOMLLM_API_KEY`` if it needs a key.

    Key init args:
        model: Model name the server knows (alias ``model_name``).
        base_url: API root, e.g. ``http://127.0.0.1:8000/v1`` (env ``CUSTOMLLM_BASE_URL``).
        api_key: Key, if any (env ``CUSTOMLLM_API_KEY``); sent as a Bearer token by default.
        wire_format: ``"openai"`` (default) or a registered / custom `WireFormat`.
        temperature, max_tokens, top_p, seed, stop: Generation settings.
        timeout, max_retries: Per-request timeout (s) and retries (default 2).
        extra_body: Vendor parameters merged into the request body.

    Example:
        .. code-block:: python

            from langchain_customllm import ChatCustomLLM

            llm = ChatCustomLLM(base_url="http://127.0.0.1:8765/v1", model="smollm2")
            llm.invoke("What is the capital of France?").content
            for chunk in llm.stream("Count to five."):
                print(chunk.content, end="")

    Stop sequences are enforced client-side as well, identically for ``invoke`` and streams;
    ``reasoning_content`` from reasoning servers is kept in ``additional_kwargs``; usage is in
    ``usage_metadata`` (on exactly one chunk when streaming). Errors are `CustomLLMError`
    subclasses that also inherit langchain-core's model errors.

    """

    # langchain-core's base config ignores unknown settings; a typo must be an error instead.
    model_config = ConfigDict(extra="forbid")

    @property
    def _llm_type(self) -> str:
        return "customllm-chat"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return self._identifying()

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        return self._ls_common(stop, kwargs, "chat")

    # ------------------------------------------------------------------ pure helpers

    def _prepare(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        kwargs: dict[str, Any],
        *,
        stream: bool,
    ) -> tuple[WireRequest, Assembler]:
        params, include_stop = self._params(stop, kwargs)
        request = self._wire().chat_request(messages, params, stream=stream)
        return request, Assembler(self._resolve_stop(stop), include_stop, params.model)

    @staticmethod
    def _result(piece: Piece) -> ChatResult:
        message = piece_to_message(piece)
        return ChatResult(
            generations=[
                ChatGeneration(
                    message=message,
                    generation_info={"finish_reason": piece.metadata.get("finish_reason")},
                )
            ],
            llm_output={
                "token_usage": token_usage_dict(piece.usage),
                "model_name": piece.metadata.get("model_name"),
            },
        )

    # ------------------------------------------------------------------ I/O shells

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.streaming:
            return generate_from_stream(self._stream(messages, stop, run_manager, **kwargs))
        request, assembler = self._prepare(messages, stop, kwargs, stream=False)
        return self._result(complete(self._client(), request, self._wire(), assembler, chat=True))

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.streaming:
            return await agenerate_from_stream(self._astream(messages, stop, run_manager, **kwargs))
        request, assembler = self._prepare(messages, stop, kwargs, stream=False)
        return self._result(
            await acomplete(self._client(), request, self._wire(), assembler, chat=True)
        )

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        request, assembler = self._prepare(messages, stop, kwargs, stream=True)
        for piece in iter_pieces(self._client(), request, self._wire(), assembler, chat=True):
            chunk = piece_to_chat_chunk(piece)
            # langchain-core's stream() fires the token callback itself and passes no
            # run_manager; other callers (streaming=True, event protocols) pass one.
            if run_manager is not None:
                run_manager.on_llm_new_token(piece.text, chunk=chunk)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        request, assembler = self._prepare(messages, stop, kwargs, stream=True)
        async for piece in aiter_pieces(
            self._client(), request, self._wire(), assembler, chat=True
        ):
            chunk = piece_to_chat_chunk(piece)
            if run_manager is not None:
                await run_manager.on_llm_new_token(piece.text, chunk=chunk)
            yield chunk
