"""The wire-format interface: how one server family spells requests and answers.

A wire format is a small, pure object. It turns LangChain messages (or a prompt) plus
generation parameters into a `WireRequest`, and turns a decoded answer body or one stream
event into a format-neutral `ParsedChunk` (the data types are in `datatypes`, re-exported
here). Embeddings and image generation are optional methods with the same shape: a request
builder and an answer reader. A format never does I/O, so the sync and async paths,
and the tests, share all of it. What is common to every format (stop enforcement, usage,
callbacks, retries) lives outside, in the models and the client.

To support a new server family, subclass `WireFormat`, implement the four abstract methods
and register it with `register_format`.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, NoReturn

from langchain_core.messages import BaseMessage

from langchain_customllm._exceptions import ConfigurationError, CustomLLMError, ResponseError
from langchain_customllm._framing import Framing, StreamEvent
from langchain_customllm._text import did_you_mean, excerpt
from langchain_customllm.formats.datatypes import (
    EmbedParams,
    GeneratedImage,
    GenerationParams,
    ImageParams,
    ParsedChunk,
    ParsedEmbeddings,
    ParsedImages,
    TokenUsage,
    ToolCallPiece,
    WireRequest,
)

__all__ = [
    "EmbedParams",
    "GeneratedImage",
    "GenerationParams",
    "ImageParams",
    "ParsedChunk",
    "ParsedEmbeddings",
    "ParsedImages",
    "TokenUsage",
    "ToolCallPiece",
    "WireFormat",
    "WireRequest",
    "get_format",
    "parse_embeddings_safely",
    "parse_event_safely",
    "parse_images_safely",
    "parse_response_safely",
    "register_format",
    "sampling_fields",
]


class WireFormat(ABC):
    """How one family of servers spells requests and answers (see the module docstring).

    Attributes:
        name: The name users select the format by (``wire_format="openai"``).
        framing: How streamed answers are framed: ``"sse"``, ``"ndjson"`` or ``"text"``.
        sends_stop_to_server: Whether requests carry the stop sequences (they are enforced
            client-side either way).
        supports_streaming: Whether the server can stream answers.
        reports_usage: Whether answers carry token counts.
        keeps_stop_text: Whether the server returns the stop sequence inside the text (TGI);
            then stops are sent even with ``include_stop_sequence``.
        supports_tools: Whether requests can carry tools and answers tool calls.
        supports_response_format: Whether requests can ask for JSON / JSON-schema output.
        supports_images: Whether requests can carry image content (else images are refused,
            never dropped).
        supports_embeddings: Whether the format can build embeddings requests.
        supports_image_generation: Whether the format can build image-generation requests.
    """

    name: ClassVar[str]
    framing: ClassVar[Framing] = "sse"
    sends_stop_to_server: ClassVar[bool] = True
    supports_streaming: ClassVar[bool] = True
    reports_usage: ClassVar[bool] = True
    keeps_stop_text: ClassVar[bool] = False
    supports_tools: ClassVar[bool] = False
    supports_response_format: ClassVar[bool] = False
    supports_images: ClassVar[bool] = False
    supports_embeddings: ClassVar[bool] = False
    supports_image_generation: ClassVar[bool] = False

    @abstractmethod
    def chat_request(
        self, messages: Sequence[BaseMessage], params: GenerationParams, *, stream: bool
    ) -> WireRequest:
        """Build a chat request from LangChain messages."""

    @abstractmethod
    def completion_request(
        self, prompt: str, params: GenerationParams, *, stream: bool
    ) -> WireRequest:
        """Build a text-completion request from a prompt string."""

    @abstractmethod
    def parse_response(self, body: Any, *, chat: bool) -> ParsedChunk:
        """Parse a whole (non-streamed) answer body.

        Raises:
            ResponseError: If the body is not what this format expects.

        """

    @abstractmethod
    def parse_event(self, event: StreamEvent, *, chat: bool) -> ParsedChunk | None:
        """Parse one stream event; None for events that carry nothing (keep-alives).

        Raises:
            StreamError: If the event reports an error.
            ResponseError: If the event cannot be understood.

        """

    def error_message(self, body: Any) -> str | None:
        """The server's own message in an HTTP error body, if this format knows where it is.

        Returning None lets the generic extraction handle the common shapes
        (``{"error": {"message"}}``, ``{"error": "..."}``, ``{"detail"}``, ``{"message"}``).
        """
        return None

    def embed_request(self, texts: Sequence[str], params: EmbedParams) -> WireRequest:
        """Build a request that embeds ``texts`` (raw strings, in order).

        Raises:
            ConfigurationError: If this format has no embeddings endpoint (the default).
        """
        raise ConfigurationError(
            f"wire_format {self.name!r} has no embeddings endpoint; use 'openai' "
            "(/v1/embeddings), 'ollama' (/api/embed), 'tei' (/embed), or a custom format "
            "with an `embed` section"
        )

    def parse_embeddings(self, body: Any) -> ParsedEmbeddings:
        """Read an embeddings answer: the vectors in input order, usage and model.

        Raises:
            ResponseError: If the body is not what this format expects.
        """
        raise ConfigurationError(f"wire_format {self.name!r} has no embeddings endpoint")

    def image_request(self, prompt: str, params: ImageParams) -> WireRequest:
        """Build a request that generates images from ``prompt``.

        Raises:
            ConfigurationError: If this format has no image endpoint (the default).
        """
        raise ConfigurationError(
            f"wire_format {self.name!r} has no image-generation endpoint; use 'openai' "
            "(/v1/images/generations), a custom format with an `image` section, or a "
            "WireFormat subclass that implements image_request and parse_images"
        )

    def parse_images(self, body: Any) -> ParsedImages:
        """Read an image-generation answer: the images in order, usage and model.

        `GeneratedImage` entries carry the base64 or the URL as sent; the model checks and
        decodes them (count, base64, image signature, URL scheme) whatever the format.

        Raises:
            ResponseError: If the body is not what this format expects.
        """
        raise ConfigurationError(f"wire_format {self.name!r} has no image-generation endpoint")


_REGISTRY: dict[str, Callable[..., WireFormat]] = {}
# The built-in formats, imported on first use: a program that speaks only OpenAI's format
# never loads the others (the custom format alone costs ~15 ms to import).
_BUILTIN_MODULES = {
    "openai": "langchain_customllm.formats.openai",
    "ollama": "langchain_customllm.formats.ollama",
    "tgi": "langchain_customllm.formats.tgi",
    "tei": "langchain_customllm.formats.tei",
    "custom": "langchain_customllm.formats.custom",
}


def register_format(name: str, factory: Callable[..., WireFormat]) -> None:
    """Make a wire format selectable by name (``wire_format=name``).

    Like LiteLLM's ``custom_provider_map``, but for the wire format only: the model classes,
    streaming, stop handling, usage and callbacks stay ours.

    Args:
        name: The name; registering an existing name replaces it.
        factory: Called with the options of a mapping spec (``{"kind": name, **options}``),
            or with none for a plain name; usually the class itself.
    """
    _REGISTRY[name] = factory


def register_builtin_format(name: str, factory: Callable[..., WireFormat]) -> None:
    """Register a built-in format when its module loads, unless the user took the name."""
    _REGISTRY.setdefault(name, factory)


def _factory(name: str) -> Callable[..., WireFormat] | None:
    factory = _REGISTRY.get(name)
    if factory is None and name in _BUILTIN_MODULES:
        importlib.import_module(_BUILTIN_MODULES[name])
        factory = _REGISTRY.get(name)
    return factory


def get_format(spec: str | WireFormat | Mapping[str, Any]) -> WireFormat:
    """Resolve a ``wire_format`` setting.

    Args:
        spec: A registered name (``"openai"``), a `WireFormat` instance, or a mapping
            ``{"kind": name, **options}`` (e.g. a ``kind: custom`` description from YAML).

    Raises:
        ConfigurationError: For an unknown name or options the format does not take.
    """
    if isinstance(spec, WireFormat):
        return spec
    options: dict[str, Any] = {}
    if isinstance(spec, Mapping):
        options = dict(spec)
        kind = options.pop("kind", None)
        if not isinstance(kind, str):
            raise ConfigurationError(
                "A wire_format mapping needs `kind` (e.g. kind: custom, kind: tgi)"
            )
        spec = kind
    factory = _factory(spec)
    if factory is None:
        names = sorted({*_REGISTRY, *_BUILTIN_MODULES})
        raise ConfigurationError(
            f"Unknown wire_format {spec!r}{did_you_mean(spec, names)}. "
            f"Known formats: {', '.join(names)}. "
            "Pass a WireFormat instance or register yours with register_format()."
        )
    try:
        return factory(**options)
    except TypeError as exc:
        raise ConfigurationError(
            f"wire_format {spec!r}: bad options {sorted(options)}: {exc}"
        ) from None


def sampling_fields(params: GenerationParams, max_tokens: str = "max_tokens") -> dict[str, Any]:
    """The sampling settings that are set, by their OpenAI names (pure).

    Unset ones are left out so the server applies its own defaults.

    Args:
        params: The merged generation parameters.
        max_tokens: The format's name for the output cap (Ollama: ``num_predict``).

    Returns:
        ``temperature``, ``top_p``, ``seed``, the cap and ``stop`` (a list), where set.
    """
    fields: dict[str, Any] = {}
    if params.temperature is not None:
        fields["temperature"] = params.temperature
    if params.top_p is not None:
        fields["top_p"] = params.top_p
    if params.seed is not None:
        fields["seed"] = params.seed
    if params.max_tokens is not None:
        fields[max_tokens] = params.max_tokens
    if params.stop:
        fields["stop"] = list(params.stop)
    return fields


def _raise_typed(
    fmt: WireFormat, what: str, got: Any, exc: Exception, body: Any = None
) -> NoReturn:
    """Re-raise ``exc`` if it is ours; else a `ResponseError` naming the format and ``got``."""
    if isinstance(exc, CustomLLMError):
        raise exc
    raise ResponseError(
        f"wire format {fmt.name!r} could not read {what} ({type(exc).__name__}: {exc}); "
        f"got: {excerpt(got)}",
        body=body,
    ) from exc


def parse_response_safely(fmt: WireFormat, body: Any, *, chat: bool) -> ParsedChunk:
    """`WireFormat.parse_response`, with a user adapter's stray exception made typed.

    A ``KeyError`` from a hand-written adapter becomes a `ResponseError` naming the format
    and showing what arrived, instead of escaping bare.
    """
    try:
        return fmt.parse_response(body, chat=chat)
    except Exception as exc:  # any adapter bug must surface as a typed error
        _raise_typed(fmt, "the answer", body, exc, body)


def parse_embeddings_safely(fmt: WireFormat, body: Any) -> ParsedEmbeddings:
    """`WireFormat.parse_embeddings`, with a user adapter's stray exception made typed."""
    try:
        return fmt.parse_embeddings(body)
    except Exception as exc:  # any adapter bug must surface as a typed error
        _raise_typed(fmt, "the embeddings answer", body, exc, body)


def parse_images_safely(fmt: WireFormat, body: Any) -> ParsedImages:
    """`WireFormat.parse_images`, with a user adapter's stray exception made typed."""
    try:
        return fmt.parse_images(body)
    except Exception as exc:  # any adapter bug must surface as a typed error
        _raise_typed(fmt, "the image answer", body, exc, body)


def parse_event_safely(fmt: WireFormat, event: StreamEvent, *, chat: bool) -> ParsedChunk | None:
    """`WireFormat.parse_event`, with a user adapter's stray exception made typed."""
    try:
        return fmt.parse_event(event, chat=chat)
    except Exception as exc:  # any adapter bug must surface as a typed error
        _raise_typed(fmt, "a stream event", event.data, exc)
