"""`CustomLLMEmbeddings`: any embeddings server as a LangChain `Embeddings`."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManager,
    AsyncCallbackManagerForLLMRun,
    CallbackManager,
    CallbackManagerForLLMRun,
    Callbacks,
)
from langchain_core.embeddings import Embeddings
from langchain_core.load.serializable import Serializable
from langchain_core.outputs import Generation, LLMResult
from pydantic import ConfigDict, Field

from langchain_customllm._connection import ConnectionFields
from langchain_customllm._convert import token_usage_dict
from langchain_customllm._embed_batches import (
    Batch,
    check_batch,
    check_widths,
    is_too_large,
    plan_batches,
    too_long,
    total_usage,
)
from langchain_customllm._exceptions import APIStatusError
from langchain_customllm._runtime import Runtime
from langchain_customllm.formats.base import (
    EmbedParams,
    ParsedEmbeddings,
    parse_embeddings_safely,
)
from langchain_customllm.pricing import price_answer

__all__ = ["CustomLLMEmbeddings"]

_SERIALIZED = {
    "lc": 1,
    "type": "not_implemented",
    "id": ["langchain_customllm", "embeddings", "CustomLLMEmbeddings"],
    "name": "CustomLLMEmbeddings",
}


class CustomLLMEmbeddings(ConnectionFields, Serializable, Embeddings):
    """Embeddings from any server: OpenAI-compatible, Ollama, TEI, or your own API.

    Takes the connection settings of `ChatCustomLLM` (``model``, ``base_url``, ``api_key``,
    headers, ``timeout``, ``max_retries``, TLS, ``wire_format``, ``server_profile``,
    ``pricing`` of input tokens) and these of its own: batching (``chunk_size``,
    ``max_batch_bytes``, ``max_concurrency``), ``dimensions``, instruction prefixes and
    ``truncate``.

    Example:
        ```python
        from langchain_customllm import CustomLLMEmbeddings

        emb = CustomLLMEmbeddings(base_url="http://127.0.0.1:8765/v1", model="smollm2")
        vectors = emb.embed_documents(["first text", "second text"])
        query = emb.embed_query("what is said?")
        ```

    Texts go as raw strings (never token arrays); every answer is checked (as many vectors
    as inputs, put back in input order, one width, ``dimensions`` when set) and a
    `ResponseError` says what came back otherwise. Batches go out concurrently, each
    retried on its own; a batch the server finds too large (413) is halved and sent again.
    An input the server refuses as too long raises `ContextLengthExceededError` naming
    its index (``.index``), unless ``truncate`` lets the server cut it. Usage and cost
    reach callbacks, ``track_usage()`` and LangSmith as one run per call.
    """

    # Unknown settings are errors (a typo such as ``chunksize`` must not pass silently).
    model_config = ConfigDict(extra="forbid")
    _config_types = ("embeddings",)

    chunk_size: int = Field(default=64, ge=1)
    """Most texts in one request (1 or more); servers cap their batch (vLLM's
    ``max_num_seqs``, llama.cpp's ``--parallel`` slots)."""

    max_batch_bytes: int = Field(default=1_000_000, ge=1)
    """Most bytes of text in one request body (1 or more): proxies and TEI refuse large
    bodies (TEI's ``--payload-limit`` is 2 MB)."""

    max_concurrency: int = Field(default=4, ge=1)
    """Batches in flight at once: tasks in async calls, threads in sync ones."""

    dimensions: int | None = Field(default=None, ge=1)
    """Vector width to ask for (Matryoshka models); sent where the format can say it and
    checked on every answer. None takes the model's own width."""

    query_instruction: str = ""
    """Prefix of every ``embed_query`` text, as retrieval models expect: e5's
    ``"query: "``, nomic's ``"search_query: "``, bge's ``"Represent this sentence for
    searching relevant passages: "``."""

    document_instruction: str = ""
    """Prefix of every ``embed_documents`` text: e5's ``"passage: "``, nomic's
    ``"search_document: "``; empty for bge."""

    truncate: bool = False
    """Let the server cut inputs that are too long (vLLM's ``truncate_prompt_tokens``,
    TEI's and Ollama's ``truncate``). False: a too-long input raises
    `ContextLengthExceededError` naming its index (Ollama is told not to truncate)."""

    callbacks: Callbacks = Field(default=None, exclude=True)
    """Callback handlers for the run of each call (with ``track_usage()`` and LangSmith
    tracing, which need none)."""

    # ------------------------------------------------------------------ LangChain API

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed documents, with ``document_instruction`` before each.

        Args:
            texts: The texts; an empty list returns ``[]`` without a request.

        Returns:
            One vector per text, in order.
        """
        return self._embed(self._prefixed(texts, self.document_instruction))

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Async twin of `embed_documents` (batches as concurrent tasks)."""
        return await self._aembed(self._prefixed(texts, self.document_instruction))

    def embed_query(self, text: str) -> list[float]:
        """Embed a query, with ``query_instruction`` before it."""
        return self._embed([self.query_instruction + text])[0]

    async def aembed_query(self, text: str) -> list[float]:
        """Async twin of `embed_query`."""
        return (await self._aembed([self.query_instruction + text]))[0]

    # ------------------------------------------------------------------ pure helpers

    @staticmethod
    def _prefixed(texts: Sequence[str], instruction: str) -> list[str]:
        return [instruction + text for text in texts] if instruction else list(texts)

    def _plan(self, texts: Sequence[str]) -> tuple[Runtime, EmbedParams, list[Batch]]:
        runtime = self._runtime()
        params = EmbedParams(
            model=self.model,
            dimensions=self.dimensions,
            truncate=self.truncate,
            extra_body=dict(self.extra_body or {}),
        )
        # Refused before any request if the format has no embeddings endpoint.
        runtime.wire.embed_request(texts[:1], params)
        return runtime, params, plan_batches(texts, self.chunk_size, self.max_batch_bytes)

    def _run_metadata(self) -> dict[str, Any]:
        # What LangSmith and `track_usage` read a run's provider and model from.
        return {
            "ls_provider": self.provider,
            "ls_model_name": self.model,
            "ls_model_type": "embedding",
        }

    def _run_info(self) -> dict[str, Any]:
        return {
            "invocation_params": {"model": self.model, "dimensions": self.dimensions},
            "name": type(self).__name__,
        }

    def _result(
        self, runtime: Runtime, answers: list[ParsedEmbeddings]
    ) -> tuple[list[list[float]], LLMResult]:
        """The vectors in input order, checked, and the run's result (usage, cost)."""
        vectors = [vector for answer in answers for vector in answer.vectors]
        check_widths(vectors, self.dimensions)
        usage = total_usage(answers)
        served = next((a.model for a in answers if a.model), None)
        cost = price_answer(runtime.pricing, usage, [served, self.model])
        info: dict[str, Any] = {
            "token_usage": token_usage_dict(usage),
            "model_name": served or self.model,
        }
        if cost is not None:
            info["cost"] = cost.as_dict()
        result = LLMResult(
            generations=[[Generation(text="", generation_info=info)]],
            llm_output={"token_usage": info["token_usage"], "model_name": info["model_name"]},
        )
        return vectors, result

    # ------------------------------------------------------------------ I/O twins

    def _send(self, runtime: Runtime, params: EmbedParams, batch: Batch) -> ParsedEmbeddings:
        request = runtime.wire.embed_request(batch.texts, params)
        try:
            body = runtime.client.send(request, runtime.wire.error_message)
        except APIStatusError as error:
            if not is_too_large(error):
                raise
            if len(batch.texts) == 1:
                raise too_long(error, batch.start, self.truncate) from error
            first, second = batch.halves()
            one = self._send(runtime, params, first)
            two = self._send(runtime, params, second)
            return ParsedEmbeddings(one.vectors + two.vectors, total_usage([one, two]), one.model)
        parsed = parse_embeddings_safely(runtime.wire, body)
        check_batch(parsed, batch)
        return parsed

    async def _asend(self, runtime: Runtime, params: EmbedParams, batch: Batch) -> ParsedEmbeddings:
        request = runtime.wire.embed_request(batch.texts, params)
        try:
            body = await runtime.client.asend(request, runtime.wire.error_message)
        except APIStatusError as error:
            if not is_too_large(error):
                raise
            if len(batch.texts) == 1:
                raise too_long(error, batch.start, self.truncate) from error
            first, second = batch.halves()
            one = await self._asend(runtime, params, first)
            two = await self._asend(runtime, params, second)
            return ParsedEmbeddings(one.vectors + two.vectors, total_usage([one, two]), one.model)
        parsed = parse_embeddings_safely(runtime.wire, body)
        check_batch(parsed, batch)
        return parsed

    async def _agather(
        self, runtime: Runtime, params: EmbedParams, batches: list[Batch]
    ) -> list[ParsedEmbeddings]:
        """Every batch as a task, at most ``max_concurrency`` in flight, in order."""
        gate = asyncio.Semaphore(self.max_concurrency)

        async def one(batch: Batch) -> ParsedEmbeddings:
            async with gate:
                return await self._asend(runtime, params, batch)

        tasks = [asyncio.ensure_future(one(batch)) for batch in batches]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            # One batch failed (or the call was cancelled): the others stop too, rather
            # than run on unowned in the caller's event loop.
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    def _embed(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        runtime, params, batches = self._plan(texts)
        manager = CallbackManager.configure(self.callbacks, local_metadata=self._run_metadata())
        info = self._run_info()
        run: CallbackManagerForLLMRun = manager.on_llm_start(
            _SERIALIZED, ["\n".join(texts)], **info
        )[0]
        try:
            if len(batches) == 1:
                answers = [self._send(runtime, params, batches[0])]
            else:
                # The pooled client is thread-safe; the pool bounds what is in flight.
                workers = min(self.max_concurrency, len(batches))
                with ThreadPoolExecutor(max_workers=workers) as pool:
                    answers = list(pool.map(lambda b: self._send(runtime, params, b), batches))
            vectors, result = self._result(runtime, answers)
        except BaseException as error:
            run.on_llm_error(error)
            raise
        run.on_llm_end(result)
        return vectors

    async def _aembed(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        runtime, params, batches = self._plan(texts)
        manager = AsyncCallbackManager.configure(
            self.callbacks, local_metadata=self._run_metadata()
        )
        info = self._run_info()
        run: AsyncCallbackManagerForLLMRun = (
            await manager.on_llm_start(_SERIALIZED, ["\n".join(texts)], **info)
        )[0]
        try:
            if len(batches) == 1:
                answers = [await self._asend(runtime, params, batches[0])]
            else:
                answers = await self._agather(runtime, params, batches)
            vectors, result = self._result(runtime, answers)
        except BaseException as error:
            await run.on_llm_error(error)
            raise
        await run.on_llm_end(result)
        return vectors


# The settings validated on reassignment (see `ModelValue`): all of this class's fields.
CustomLLMEmbeddings._settings = frozenset(CustomLLMEmbeddings.model_fields)
