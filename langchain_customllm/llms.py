"""`CustomLLM`: any text-completion server as a LangChain `LLM`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import LangSmithParams
from langchain_core.language_models.llms import LLM
from langchain_core.outputs import Generation, GenerationChunk, LLMResult
from pydantic import ConfigDict

from langchain_customllm._assembly import Assembler, Piece
from langchain_customllm._common import CustomLLMFields
from langchain_customllm._convert import add_token_usage, piece_to_generation_chunk
from langchain_customllm._counting import Prompt, acount_text, count_text
from langchain_customllm._runtime import Runtime
from langchain_customllm._streaming import acomplete, aiter_pieces, complete, iter_pieces
from langchain_customllm.formats.base import WireRequest
from langchain_customllm.pricing import sum_costs

__all__ = ["CustomLLM"]

_MAX_THREADS = 16


class CustomLLM(CustomLLMFields, LLM):
    """Text-completion model for any LLM server (the OpenAI ``/completions`` endpoint, ...).

    Takes the same settings as `ChatCustomLLM` (model, base_url, api_key, wire_format,
    temperature, max_tokens, stop, timeout, max_retries, extra_body, ...).

    Example:
        ```python
        from langchain_customllm import CustomLLM

        llm = CustomLLM(base_url="http://127.0.0.1:8765/v1", model="smollm2", max_tokens=32)
        llm.invoke("The capital of France is")
        for text in llm.stream("Once upon a time"):
            print(text, end="")
        ```

    ``generate()`` results carry ``llm_output["token_usage"]`` and ``["model_name"]``; each
    generation's ``generation_info`` has the finish reason and the answer's own usage.
    With ``pricing``, each ``generation_info["cost"]`` has the answer's cost and
    ``llm_output["cost"]`` their sum.
    Streaming fires ``on_llm_new_token`` before each chunk is yielded.

    """

    # langchain-core's base config ignores unknown settings; a typo must be an error instead.
    model_config = ConfigDict(extra="forbid")
    _config_types = ("llm", "text")

    @property
    def _llm_type(self) -> str:
        return "customllm"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return self._identifying()

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        return self._ls_common(stop, kwargs, "llm")

    # ------------------------------------------------------------------ pure helpers

    def _prepare(
        self,
        prompt: str,
        stop: list[str] | None,
        kwargs: dict[str, Any],
        *,
        stream: bool,
        run_manager: Any = None,
    ) -> tuple[Runtime, WireRequest, Assembler, Prompt]:
        runtime = self._runtime()
        route = self._route(kwargs, run_manager)
        params, include_stop = self._params(runtime, stop, kwargs)
        request = runtime.wire.completion_request(prompt, params, stream=stream)
        if route is not None:
            request = replace(request, route=route)
        return (
            runtime,
            request,
            Assembler(
                self._resolve_stop(stop),
                include_stop,
                params.model,
                runtime.pricing,
                usage_estimated=runtime.profile.usage_estimated,
                completion_prompt=prompt,
            ),
            Prompt(
                model=params.model,
                text=prompt,
                max_tokens=params.max_tokens,
                missing_usage=self.missing_usage,
                check_context=self.check_context_window,
            ),
        )

    # ------------------------------------------------------------------ token counts

    def get_num_tokens(self, text: str) -> int:
        """Tokens of ``text`` as a prompt, as the server counts it (special tokens included).

        By the server's tokenizer where its profile names one (equal to the server's
        ``prompt_tokens`` for that prompt); else langchain-core's approximate count, with a
        one-time warning saying why. Cached per text.
        """
        return count_text(self._ready(), self.model, text, special=True)

    async def aget_num_tokens(self, text: str) -> int:
        """Async twin of `get_num_tokens`."""
        return await acount_text(await self._aready(), self.model, text, special=True)

    @staticmethod
    def _generation(piece: Piece) -> Generation:
        chunk = piece_to_generation_chunk(piece)
        return Generation(text=chunk.text, generation_info=chunk.generation_info)

    @staticmethod
    def _merge_chunks(chunks: list[GenerationChunk]) -> Generation:
        merged = chunks[0]
        for chunk in chunks[1:]:
            merged += chunk
        return Generation(text=merged.text, generation_info=merged.generation_info)

    @staticmethod
    def _llm_result(generations: list[Generation], model: str) -> LLMResult:
        totals: dict[str, Any] = {}
        model_name = model
        for gen in generations:
            info = gen.generation_info or {}
            add_token_usage(totals, info.get("token_usage") or {})
            model_name = info.get("model_name") or model_name
        llm_output: dict[str, Any] = {"token_usage": totals, "model_name": model_name}
        cost = sum_costs([(g.generation_info or {}).get("cost") for g in generations])
        if cost is not None:
            llm_output["cost"] = cost
        return LLMResult(generations=[[g] for g in generations], llm_output=llm_output)

    def _complete(
        self, prompt: str, stop: list[str] | None, kwargs: dict[str, Any], run_manager: Any
    ) -> Piece:
        self._ready()  # detect the server family at the first call (see `_detect`)
        runtime, request, assembler, counted = self._prepare(
            prompt, stop, kwargs, stream=False, run_manager=run_manager
        )
        return complete(runtime, request, assembler, chat=False, prompt=counted)

    async def _acomplete(
        self, prompt: str, stop: list[str] | None, kwargs: dict[str, Any], run_manager: Any
    ) -> Piece:
        await self._aready()
        runtime, request, assembler, counted = self._prepare(
            prompt, stop, kwargs, stream=False, run_manager=run_manager
        )
        return await acomplete(runtime, request, assembler, chat=False, prompt=counted)

    # ------------------------------------------------------------------ I/O shells

    def _call(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> str:
        return self._complete(prompt, stop, kwargs, run_manager).text

    async def _acall(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> str:
        return (await self._acomplete(prompt, stop, kwargs, run_manager)).text

    def _generate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        def one(prompt: str) -> Generation:
            if self.streaming:
                return self._merge_chunks(list(self._stream(prompt, stop, run_manager, **kwargs)))
            return self._generation(self._complete(prompt, stop, kwargs, run_manager))

        # batch() hands us all its prompts at once: send them side by side, not in turn
        # (the pooled client is thread-safe; core already caps the batch at max_concurrency).
        if len(prompts) == 1:
            generations = [one(prompts[0])]
        else:
            with ThreadPoolExecutor(max_workers=min(len(prompts), _MAX_THREADS)) as pool:
                generations = list(pool.map(one, prompts))
        return self._llm_result(generations, kwargs.get("model", self.model))

    async def _agenerate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        async def one(prompt: str) -> Generation:
            if self.streaming:
                chunks = [c async for c in self._astream(prompt, stop, run_manager, **kwargs)]
                return self._merge_chunks(chunks)
            return self._generation(await self._acomplete(prompt, stop, kwargs, run_manager))

        # abatch() hands us all its prompts at once: they go out concurrently.
        generations = list(await asyncio.gather(*(one(prompt) for prompt in prompts)))
        return self._llm_result(generations, kwargs.get("model", self.model))

    def _stream(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[GenerationChunk]:
        self._ready()
        runtime, request, assembler, counted = self._prepare(
            prompt, stop, kwargs, stream=True, run_manager=run_manager
        )
        for piece in iter_pieces(runtime, request, assembler, chat=False, prompt=counted):
            chunk = piece_to_generation_chunk(piece)
            # langchain-core does not fire the token callback for LLMs: do it before yielding.
            if run_manager is not None:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    async def _astream(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[GenerationChunk]:
        await self._aready()
        runtime, request, assembler, counted = self._prepare(
            prompt, stop, kwargs, stream=True, run_manager=run_manager
        )
        async for piece in aiter_pieces(runtime, request, assembler, chat=False, prompt=counted):
            chunk = piece_to_generation_chunk(piece)
            if run_manager is not None:
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk
