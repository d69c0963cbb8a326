"""`CustomImageGenerator`: any image-generation server as a LangChain runnable."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, TypeAlias

from langchain_core.callbacks import (
    AsyncCallbackManager,
    AsyncCallbackManagerForLLMRun,
    CallbackManager,
    CallbackManagerForLLMRun,
    Callbacks,
)
from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessage, AnyMessage
from langchain_core.outputs import ChatGeneration, LLMResult
from langchain_core.prompt_values import ChatPromptValueConcrete, StringPromptValue
from langchain_core.runnables import RunnableConfig, RunnableSerializable, ensure_config
from langchain_core.tools import BaseTool, StructuredTool
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model

from langchain_customllm._connection import ConnectionFields
from langchain_customllm._convert import token_usage_dict
from langchain_customllm._exceptions import ConfigurationError
from langchain_customllm._images import IMAGE_CALL_KEYS, ImageResult, image_result, prompt_text
from langchain_customllm._params import check_call_values
from langchain_customllm._runtime import Runtime
from langchain_customllm.formats.base import ImageParams, WireRequest, parse_images_safely

__all__ = ["CustomImageGenerator", "ImagePrompt"]

_SERIALIZED = {
    "lc": 1,
    "type": "not_implemented",
    "id": ["langchain_customllm", "images", "CustomImageGenerator"],
    "name": "CustomImageGenerator",
}
_SIZE = re.compile(r"[1-9]\d{0,4}x[1-9]\d{0,4}|auto")


def _check_size(value: str) -> str:
    if not _SIZE.fullmatch(value):
        raise ValueError(f"size is WIDTHxHEIGHT (e.g. '1024x1024') or 'auto', not {value!r}")
    return value


# A type, not a field validator: per-call values are validated by the field's type alone.
ImageSize = Annotated[str, AfterValidator(_check_size)]
# What a call sends: through which runtime, with which parameters, as which request.
_Plan: TypeAlias = tuple[Runtime, ImageParams, WireRequest]


class ImagePrompt(BaseModel):
    """The arguments of the tool `CustomImageGenerator.as_tool` makes."""

    prompt: str = Field(description="What the image shows, in detail: subject, style, colours.")
    """The description of the image to generate."""


class CustomImageGenerator(ConnectionFields, RunnableSerializable[LanguageModelInput, AIMessage]):
    """Images from any server: OpenAI-compatible ``/images/generations``, or your own API.

    Takes the connection settings of `ChatCustomLLM` (``model``, ``base_url``,
    ``api_key``, headers, ``timeout``, ``max_retries``, TLS, ``wire_format``,
    ``pricing``) and the image settings below, which are also per-call keyword arguments
    (``generator.invoke("a cat", size="512x512")``); any other keyword argument goes
    verbatim into the request body, like ``extra_body``.

    Example:
        ```python
        from langchain_customllm import CustomImageGenerator

        images = CustomImageGenerator(base_url="http://127.0.0.1:8080/v1", model="dall-e-3")
        message = images.invoke("A lighthouse at dawn, watercolour")
        block = message.content[0]  # {"type": "image", "base64": ..., "mime_type": ...}
        ```

    The input is a string, a prompt value or a list of messages (their text, joined by
    blank lines). The output is an `AIMessage` whose ``content`` is a list of langchain-core
    image content blocks, one per image: ``{"type": "image", "base64", "mime_type"}`` or
    ``{"type": "image", "url"}``. That is what chat models accept as input and what
    multimodal agents read, so the output goes on into a chain, a vision model or a tool
    message as it is; ``response_metadata`` holds the model, the revised prompts and the
    cost, ``usage_metadata`` the tokens where the server counts them (GPT image models).
    `generate_images` / `agenerate_images` return the same as an `ImageResult`, for code
    that serves the images on (an OpenAI-compatible gateway: `ImageResult.to_openai`).

    Every answer is checked: as many images as ``n``, base64 that decodes to a PNG, JPEG,
    WEBP or GIF (the MIME type is read from the bytes), of ``output_format`` when set,
    or an http(s) URL; otherwise `ResponseError` says what came back. Each call is one run
    for callbacks, ``track_usage()`` and LangSmith, retried like every request (429 with
    ``Retry-After``, 5xx, connection errors); its cost is priced per image
    (``Pricing(per_image=...)``) and/or per token.
    """

    # Unknown settings are errors (a typo such as ``sise`` must not pass silently).
    model_config = ConfigDict(extra="forbid")
    _config_types = ("image",)

    n: int | None = Field(default=None, ge=1)
    """Images per call (1 or more); None sends none and expects the server's default, 1."""

    size: ImageSize | None = None
    """``WIDTHxHEIGHT`` (``"1024x1024"``) or ``"auto"``; None leaves the server's default."""

    quality: str | None = None
    """``"low"``, ``"medium"``, ``"high"`` or ``"auto"`` (GPT image models), ``"standard"``
    or ``"hd"`` (DALL-E 3), or your server's own values."""

    style: str | None = None
    """``"vivid"`` or ``"natural"`` (DALL-E 3)."""

    response_format: Literal["b64_json", "url"] | None = None
    """How images come back: ``"b64_json"`` (base64 blocks) or ``"url"`` (URL blocks).
    GPT image models always answer base64 and refuse the setting: leave it None."""

    output_format: Literal["png", "jpeg", "webp", "gif"] | None = None
    """The image format to ask for (GPT image models); checked on every image."""

    background: Literal["transparent", "opaque", "auto"] | None = None
    """Transparent or opaque background (GPT image models, ``png`` or ``webp``)."""

    user: str | None = None
    """An id of your end user, for the provider's abuse monitoring."""

    @property
    def InputType(self) -> TypeAlias:  # noqa: N802 (langchain-core's name)
        """A string, a prompt value or a list of messages (as chat models take)."""
        return str | StringPromptValue | ChatPromptValueConcrete | list[AnyMessage]

    @property
    def OutputType(self) -> type[AIMessage]:  # noqa: N802 (langchain-core's name)
        """An `AIMessage` of image content blocks."""
        return AIMessage

    # ------------------------------------------------------------------ Runnable API

    def invoke(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AIMessage:
        """Generate images for a prompt.

        Args:
            input: A string, a prompt value or a list of messages.
            config: The run's config (callbacks, tags, metadata, run name).
            **kwargs: Per-call settings (``n``, ``size``, ...); others go into the body.

        Returns:
            An `AIMessage` whose content is one image block per image.
        """
        return self._generate(prompt_text(input), config, kwargs)[1]

    async def ainvoke(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AIMessage:
        """Async twin of `invoke`."""
        return (await self._agenerate(prompt_text(input), config, kwargs))[1]

    def generate_images(
        self, prompt: str, *, config: RunnableConfig | None = None, **options: Any
    ) -> ImageResult:
        """Generate images and return them as an `ImageResult` (one run, as `invoke`).

        Args:
            prompt: The description of the image.
            config: The run's config (callbacks, tags, metadata, run name).
            **options: Per-call settings by OpenAI's names (``n``, ``size``, ``quality``,
                ``style``, ``response_format``, ``output_format``, ``background``,
                ``user``, ``model``); a None value leaves the model's setting; other
                keys go verbatim into the request body.
        """
        return self._generate(prompt_text(prompt), config, options)[0]

    async def agenerate_images(
        self, prompt: str, *, config: RunnableConfig | None = None, **options: Any
    ) -> ImageResult:
        """Async twin of `generate_images`.

        A server answering OpenAI's ``POST /images/generations`` calls it with the
        request's ``prompt`` and its other fields but ``model`` as ``options``, then
        answers ``result.to_openai()``.
        """
        return (await self._agenerate(prompt_text(prompt), config, options))[0]

    def as_tool(
        self,
        args_schema: type[BaseModel] | None = None,
        *,
        name: str | None = None,
        description: str | None = None,
        arg_types: dict[str, type] | None = None,
    ) -> BaseTool:
        """A tool that generates images, for agents.

        Its argument is ``prompt`` (`ImagePrompt`); an ``args_schema`` or ``arg_types`` of
        your own may add per-call settings (``size``, ``n``...), which must include
        ``prompt``. The tool's content is the list of image blocks (a `ToolMessage` a
        multimodal model reads as images, not base64 text), and its artifact the whole
        `AIMessage` with the metadata and cost (``response_format="content_and_artifact"``).

        Raises:
            ConfigurationError: For a schema without a ``prompt`` field.
        """
        schema = args_schema or ImagePrompt
        if arg_types is not None:
            fields: dict[str, Any] = {key: (kind, ...) for key, kind in arg_types.items()}
            schema = create_model("ImageToolArgs", **fields)
        if "prompt" not in schema.model_fields:
            raise ConfigurationError(
                f"as_tool: the tool's arguments ({', '.join(schema.model_fields)}) need a "
                "`prompt` field, the description of the image"
            )

        def run(callbacks: Callbacks = None, **args: Any) -> tuple[Any, AIMessage]:
            message = self.invoke(args.pop("prompt"), {"callbacks": callbacks}, **args)
            return message.content, message

        async def arun(callbacks: Callbacks = None, **args: Any) -> tuple[Any, AIMessage]:
            message = await self.ainvoke(args.pop("prompt"), {"callbacks": callbacks}, **args)
            return message.content, message

        return StructuredTool.from_function(
            func=run,
            coroutine=arun,
            name=name or self.name or "generate_image",
            description=description
            or "Generate an image from a text description. Returns the image.",
            args_schema=schema,
            response_format="content_and_artifact",
        )

    # ------------------------------------------------------------------ pure helpers

    def _plan(self, prompt: str, options: dict[str, Any]) -> _Plan:
        """The runtime, the merged parameters and the request.

        A bad setting fails here, before a run starts or anything is sent.
        """
        given = {key: value for key, value in options.items() if value is not None}
        checked = check_call_values(type(self), given, IMAGE_CALL_KEYS)
        extra = {k: v for k, v in given.items() if k not in IMAGE_CALL_KEYS}

        def pick(key: str) -> Any:
            return checked.get(key, getattr(self, key))

        params = ImageParams(
            model=pick("model"),
            n=pick("n"),
            size=pick("size"),
            quality=pick("quality"),
            style=pick("style"),
            response_format=pick("response_format"),
            output_format=pick("output_format"),
            background=pick("background"),
            user=pick("user"),
            extra_body={**(self.extra_body or {}), **(checked.get("extra_body") or {}), **extra},
        )
        runtime = self._runtime()
        return runtime, params, runtime.wire.image_request(prompt, params)

    def _run_options(self, config: RunnableConfig, params: ImageParams) -> dict[str, Any]:
        """The run's id, name and invocation parameters, for ``on_llm_start``."""
        invocation = {
            key: getattr(params, key)
            for key in sorted(IMAGE_CALL_KEYS - {"extra_body"})
            if getattr(params, key) is not None
        }
        return {
            "run_id": config.pop("run_id", None),
            "name": config.get("run_name") or self.get_name(),
            "invocation_params": invocation,
            "batch_size": 1,
        }

    def _managers(self, config: RunnableConfig) -> dict[str, Any]:
        # The model's run metadata is what LangSmith and `track_usage` read the model from.
        return {
            "inheritable_callbacks": config.get("callbacks"),
            "inheritable_tags": config.get("tags"),
            "inheritable_metadata": config.get("metadata"),
            "local_metadata": {
                "ls_provider": self.provider,
                "ls_model_name": self.model,
                "ls_model_type": "image",
            },
        }

    @staticmethod
    def _outcome(result: ImageResult) -> tuple[ImageResult, AIMessage, LLMResult]:
        message = result.to_message()
        usage = token_usage_dict(result.usage)
        llm_output = {"token_usage": usage, "model_name": result.model}
        generation = ChatGeneration(message=message)
        return result, message, LLMResult(generations=[[generation]], llm_output=llm_output)

    # ------------------------------------------------------------------ I/O twins

    def _generate(
        self, prompt: str, config: RunnableConfig | None, options: dict[str, Any]
    ) -> tuple[ImageResult, AIMessage]:
        runtime, params, request = self._plan(prompt, options)
        config = ensure_config(config)
        manager = CallbackManager.configure(**self._managers(config))
        run: CallbackManagerForLLMRun = manager.on_llm_start(
            _SERIALIZED, [prompt], **self._run_options(config, params)
        )[0]
        try:
            body = runtime.client.send(request, runtime.wire.error_message)
            parsed = parse_images_safely(runtime.wire, body)
            result, message, output = self._outcome(image_result(parsed, params, runtime.pricing))
        except BaseException as error:
            run.on_llm_error(error)
            raise
        run.on_llm_end(output)
        return result, message

    async def _agenerate(
        self, prompt: str, config: RunnableConfig | None, options: dict[str, Any]
    ) -> tuple[ImageResult, AIMessage]:
        runtime, params, request = self._plan(prompt, options)
        config = ensure_config(config)
        manager = AsyncCallbackManager.configure(**self._managers(config))
        run: AsyncCallbackManagerForLLMRun = (
            await manager.on_llm_start(_SERIALIZED, [prompt], **self._run_options(config, params))
        )[0]
        try:
            body = await runtime.client.asend(request, runtime.wire.error_message)
            parsed = parse_images_safely(runtime.wire, body)
            result, message, output = self._outcome(image_result(parsed, params, runtime.pricing))
        except BaseException as error:
            await run.on_llm_error(error)
            raise
        await run.on_llm_end(output)
        return result, message


# The settings validated on reassignment (see `ModelValue`): all of this class's fields.
CustomImageGenerator._settings = frozenset(CustomImageGenerator.model_fields)
