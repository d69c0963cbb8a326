"""`ChatCustomLLM`: any chat server as a LangChain chat model."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any, NamedTuple

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel, LangSmithParams, LanguageModelInput
from langchain_core.language_models.chat_models import (
    agenerate_from_stream,
    generate_from_stream,
)
from langchain_core.language_models.model_profile import ModelProfile
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from pydantic import BaseModel, ConfigDict

from langchain_customllm._assembly import Assembler, Piece
from langchain_customllm._common import CustomLLMFields
from langchain_customllm._convert import piece_to_chat_chunk, piece_to_message, token_usage_dict
from langchain_customllm._counting import (
    Prompt,
    acount_messages,
    acount_text,
    count_messages,
    count_text,
)
from langchain_customllm._exceptions import ConfigurationError, ResponseError
from langchain_customllm._runtime import Runtime
from langchain_customllm._streaming import acomplete, aiter_pieces, complete, iter_pieces
from langchain_customllm._structured import (
    StructuredMethod,
    check_tool_choice,
    format_tools,
    structured_output,
)
from langchain_customllm.formats.base import WireRequest
from langchain_customllm.profiles import ServerProfile, prefill_tool_call

__all__ = ["ChatCustomLLM"]


class ChatCustomLLM(CustomLLMFields, BaseChatModel):
    """Chat model for any LLM server: vLLM, llama.cpp, SGLang, LM Studio, gateways, ...

    Setup:
        Start a server (``make demo`` starts llama.cpp's on ``127.0.0.1:8765``) and point
        ``base_url`` at its API root; set ``CUSTOMLLM_API_KEY`` if it needs a key.

    Key init args:
        - model: Model name the server knows (alias ``model_name``).
        - base_url: API root, e.g. ``http://127.0.0.1:8000/v1`` (env ``CUSTOMLLM_BASE_URL``).
        - api_key: Key, if any (env ``CUSTOMLLM_API_KEY``); sent as a Bearer token by default.
        - wire_format: ``"openai"`` (default) or a registered / custom `WireFormat`.
        - temperature, max_tokens, top_p, seed, stop: Generation settings.
        - timeout, max_retries: Per-request timeout (s) and retries (default 2).
        - extra_body: Vendor parameters merged into the request body.
        - pricing: Price (USD per million tokens) or price table: each answer's cost in
          ``usage_metadata`` and ``response_metadata["cost"]`` (see docs/cost.md).

    Example:
        ```python
        from langchain_customllm import ChatCustomLLM

        llm = ChatCustomLLM(base_url="http://127.0.0.1:8765/v1", model="smollm2")
        llm.invoke("What is the capital of France?").content
        for chunk in llm.stream("Count to five."):
            print(chunk.content, end="")
        ```

    Stop sequences are enforced client-side as well, identically for ``invoke`` and streams;
    ``reasoning_content`` from reasoning servers is kept in ``additional_kwargs``; usage is in
    ``usage_metadata`` (on exactly one chunk when streaming). Errors are `CustomLLMError`
    subclasses that also inherit langchain-core's model errors.

    """

    # langchain-core's base config ignores unknown settings; a typo must be an error instead.
    model_config = ConfigDict(extra="forbid")
    _config_types = ("chat",)

    @property
    def _llm_type(self) -> str:
        return "customllm-chat"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return self._identifying()

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        return self._ls_common(stop, kwargs, "chat")

    def _resolve_model_profile(self) -> ModelProfile | None:
        # No I/O: a server detected earlier in this process is known, else generic until
        # the first call detects it (then `profile` follows, see `_value._follow_detection`).
        return self._derived_profile()

    def _derived_profile(self, profile: ServerProfile | None = None) -> ModelProfile:
        runtime = self._runtime()
        return (profile or runtime.profile).model_profile(runtime.wire)

    # ------------------------------------------------------------------ tools, structure

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | bool | dict[str, Any] | None = None,
        strict: bool | None = None,
        parallel_tool_calls: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools (pydantic models, functions, `BaseTool`s or OpenAI dicts).

        Args:
            tools: The tools the model may call.
            tool_choice: ``"auto"``, ``"none"``, ``"any"``/``"required"``/True (must call
                one), or a tool's name. Spelled for the server's profile when each request
                is built: where ``required`` is unsupported (llama-cpp-python), one bound
                tool is named instead.
            strict: Ask the server to enforce the argument schema (``strict: true``);
                defaults to the profile's choice, made per request (vLLM needs it for JSON
                arguments).
            parallel_tool_calls: Allow several calls in one answer, where supported.
            **kwargs: Further per-call parameters to bind.

        Raises:
            ConfigurationError: At bind time, if the server's known profile cannot honour
                ``tool_choice`` (a server still to be detected: at the first call).
        """
        self._check_format_can(tools=True, response_format=False)
        profile = self._runtime().profile
        formatted = format_tools(tools, profile, strict)
        check_tool_choice(tool_choice, formatted, profile)
        if parallel_tool_calls is not None:
            kwargs["parallel_tool_calls"] = parallel_tool_calls
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        return super().bind(tools=formatted, **kwargs)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type,
        *,
        method: StructuredMethod = "json_schema",
        include_raw: bool = False,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | BaseModel]:
        """Answers parsed into ``schema`` (a pydantic class, TypedDict or JSON schema).

        Args:
            schema: The output schema.
            method: ``"json_schema"`` (the server constrains the output to the schema;
                llama-cpp-python's ``json_object`` + ``schema`` where that is its
                spelling),
                ``"function_calling"`` (one forced tool), or ``"json_mode"`` (JSON only;
                describe the shape in the prompt).
            include_raw: Return ``{"raw", "parsed", "parsing_error"}`` instead of raising
                when the answer does not parse.
            strict: Strict schema enforcement, where the server supports it.
            **kwargs: Not supported; named here so a typo fails loudly.
        """
        if kwargs:
            raise ConfigurationError(f"Unexpected arguments: {sorted(kwargs)}")
        if method == "function_calling":
            self._check_format_can(tools=True, response_format=False)
        elif method in ("json_schema", "json_mode"):
            self._check_format_can(tools=False, response_format=True)
        return structured_output(
            self,
            self.bind_tools,
            self._runtime().profile,
            schema,
            method=method,
            include_raw=include_raw,
            strict=strict,
        )

    # ------------------------------------------------------------------ pure helpers

    def _prepare(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        kwargs: dict[str, Any],
        *,
        stream: bool,
        run_manager: Any = None,
    ) -> _Prepared:
        """Build the request, and say how to send it and what to check in the answer."""
        if not messages:
            raise ConfigurationError(
                "No messages to send: the input is an empty list, and a server would make an "
                "answer up from nothing; pass at least one message"
            )
        runtime = self._runtime()
        route = self._route(kwargs, run_manager)
        params, include_stop = self._params(runtime, stop, kwargs)
        profile = runtime.profile
        # Looked for only where some image would be refused (a scan of every message).
        images = not (runtime.wire.supports_images and profile.image_inputs) and _has_images(
            messages
        )
        if images and not runtime.wire.supports_images:
            raise ConfigurationError(
                f"wire_format {runtime.wire.name!r} cannot carry images, so they would be "
                "lost; use the 'openai' or 'ollama' format for image input"
            )
        if images and not profile.image_inputs:
            raise ConfigurationError(
                f"server_profile {profile.name!r} says this server ignores images, so they "
                "would be lost; use a server with image input, or "
                "server_profile={'base': ..., 'image_inputs': True} if yours reads them"
            )
        # llama-cpp-python streams an empty body when `auto` picks a tool: ask for a whole
        # answer.
        whole = (
            stream
            and bool(params.tools)
            and params.tool_choice in (None, "auto")
            and not profile.tool_stream_auto
        )
        request = runtime.wire.chat_request(messages, params, stream=stream and not whole)
        if route is not None:
            request = replace(request, route=route)
        assembler = Assembler(
            self._resolve_stop(stop),
            include_stop,
            params.model,
            runtime.pricing,
            usage_estimated=profile.usage_estimated,
        )
        forced = params.tool_choice if params.tool_choice not in (None, "auto", "none") else None
        if forced is not None:
            prefill_tool_call(request.body, profile)
        prompt = Prompt(
            model=params.model,
            messages=messages,
            # What the server's template reads (tools, tool_choice, template kwargs): the
            # request itself where it is OpenAI's shape, else the messages and tools alone.
            chat_body=request.body if runtime.wire.name == "openai" else {},
            tools=params.tools,
            max_tokens=params.max_tokens,
            missing_usage=self.missing_usage,
            check_context=self.check_context_window,
        )
        return _Prepared(runtime, request, assembler, whole, forced, prompt)

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

    # ------------------------------------------------------------------ token counts

    def get_num_tokens(self, text: str) -> int:
        """Tokens in a text, by the server's tokenizer where its profile names one.

        The text alone, without the special tokens a prompt starts with. Without a
        tokenizer: langchain-core's approximate count, with a one-time warning saying why.
        Cached per text; works inside a running event loop too (a short sync request).
        """
        return count_text(self._ready(), self.model, text, special=False)

    def get_num_tokens_from_messages(
        self, messages: list[BaseMessage], tools: Sequence[Any] | None = None
    ) -> int:
        """Prompt tokens of ``messages`` (and ``tools``) as the server's chat template renders them.

        Equal to the ``prompt_tokens`` the server reports for the same request on llama.cpp
        (``/apply-template`` + ``/tokenize``) and vLLM (``/tokenize`` with messages);
        ChatML through its tokenizer on llama-cpp-python; else langchain-core's estimate,
        with a one-time warning. So ``trim_messages(token_counter=llm, ...)`` is exact.
        """
        return count_messages(self._ready(), self.model, messages, tools)

    async def aget_num_tokens(self, text: str) -> int:
        """Async twin of `get_num_tokens`."""
        return await acount_text(await self._aready(), self.model, text, special=False)

    async def aget_num_tokens_from_messages(
        self, messages: list[BaseMessage], tools: Sequence[Any] | None = None
    ) -> int:
        """Async twin of `get_num_tokens_from_messages`."""
        return await acount_messages(await self._aready(), self.model, messages, tools)

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
        self._ready()  # detect the server family at the first call (see `_detect`)
        call = self._prepare(messages, stop, kwargs, stream=False, run_manager=run_manager)
        piece = complete(call.runtime, call.request, call.assembler, chat=True, prompt=call.prompt)
        call.check_tool_called(bool(piece.tool_calls))
        return self._result(piece)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.streaming:
            return await agenerate_from_stream(self._astream(messages, stop, run_manager, **kwargs))
        await self._aready()  # detect the server family at the first call (see `_detect`)
        call = self._prepare(messages, stop, kwargs, stream=False, run_manager=run_manager)
        piece = await acomplete(
            call.runtime, call.request, call.assembler, chat=True, prompt=call.prompt
        )
        call.check_tool_called(bool(piece.tool_calls))
        return self._result(piece)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        self._ready()  # detect the server family at the first call (see `_detect`)
        call = self._prepare(messages, stop, kwargs, stream=True, run_manager=run_manager)
        called = False
        for piece in iter_pieces(
            call.runtime,
            call.request,
            call.assembler,
            chat=True,
            whole=call.whole,
            prompt=call.prompt,
        ):
            called = called or bool(piece.tool_calls)
            chunk = piece_to_chat_chunk(piece)
            # langchain-core's stream() fires the token callback itself and passes no
            # run_manager; other callers (streaming=True, event protocols) pass one.
            if run_manager is not None:
                run_manager.on_llm_new_token(piece.text, chunk=chunk)
            yield chunk
        call.check_tool_called(called)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        await self._aready()  # detect the server family at the first call (see `_detect`)
        call = self._prepare(messages, stop, kwargs, stream=True, run_manager=run_manager)
        called = False
        async for piece in aiter_pieces(
            call.runtime,
            call.request,
            call.assembler,
            chat=True,
            whole=call.whole,
            prompt=call.prompt,
        ):
            called = called or bool(piece.tool_calls)
            chunk = piece_to_chat_chunk(piece)
            if run_manager is not None:
                await run_manager.on_llm_new_token(piece.text, chunk=chunk)
            yield chunk
        call.check_tool_called(called)


class _Prepared(NamedTuple):
    """One call, ready to send: how, and what its answer must contain."""

    runtime: Runtime
    request: WireRequest
    assembler: Assembler
    whole: bool
    """Fetch a whole answer even for a stream (a server whose tool streams are broken)."""
    forced: Any
    """The tool choice that forces a call (``"required"`` or a named tool), or None."""
    prompt: Prompt
    """What the request sends, for token accounting (context check, missing usage)."""

    def check_tool_called(self, called: bool) -> None:
        """Refuse an answer without a tool call when one was forced (never silent text)."""
        if self.forced is None or called:
            return
        profile = self.runtime.profile.name
        raise ResponseError(
            f"tool_choice {self.forced!r} forced a tool call, but the server answered without "
            f"one (server_profile {profile!r}): it ignores tool_choice, or its chat template "
            "has no tools. Run `customllm probe --base-url <url> --model <name>` to find the "
            "server_profile that fits, and serve the model with a tool-capable chat template"
        )


def _has_images(messages: list[BaseMessage]) -> bool:
    """Whether any message carries an image content block (any LangChain spelling)."""
    for message in messages:
        if isinstance(message.content, str):
            continue
        for block in message.content:
            if not isinstance(block, dict):
                continue
            kind = block.get("type")
            if kind in ("image", "image_url"):
                return True
            if kind == "file" and str(block.get("mime_type", "")).startswith("image/"):
                return True
    return False
