"""The data of the wire-format interface: what a format is given and what it gives back.

Plain frozen dataclasses (a few mutable ones that readers fill in), no behaviour: a format
turns the parameters here into a `WireRequest`, and an answer into a `ParsedChunk`,
`ParsedEmbeddings` or `ParsedImages`. `langchain_customllm.formats.base` re-exports them
with the `WireFormat` interface itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
    "WireRequest",
]


@dataclass(frozen=True)
class GenerationParams:
    """Everything a format needs to build one request, already merged (field < per call).

    Attributes:
        model: The model name sent to the server.
        temperature: Sampling temperature, or None to leave the server's default.
        max_tokens: Cap on generated tokens, sent under the format's own name for it.
        top_p: Nucleus sampling, or None.
        seed: Random seed, or None.
        stop: Stop sequences (also enforced client-side).
        stream_usage: Ask the server for token usage in streams, where it can say.
        extra_body: Vendor parameters merged verbatim into the top level of the body.
        tools: Tool definitions in OpenAI's function format (already adapted).
        tool_choice: The tool choice, already spelled for this server, or None.
        response_format: A structured-output request, already spelled for this server.
        logprobs: Ask for token log-probabilities (True; an int is the text endpoint's
            legacy count of alternatives per token).
        top_logprobs: How many alternatives per token, with ``logprobs``.
    """

    model: str
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()
    stream_usage: bool = True
    extra_body: dict[str, Any] = field(default_factory=dict)
    tools: tuple[dict[str, Any], ...] = ()
    tool_choice: Any = None
    response_format: dict[str, Any] | None = None
    logprobs: bool | int | None = None
    top_logprobs: int | None = None


@dataclass(frozen=True)
class WireRequest:
    """A request ready to send: path relative to ``base_url``, JSON body, extra headers.

    Attributes:
        path: Path appended to ``base_url``, starting with ``/`` (``/chat/completions``).
        body: The JSON body.
        method: The HTTP method.
        headers: Extra headers for this request (the key and ``default_headers`` are added
            by the client).
        root: The path is relative to the server's root, not to ``base_url``: llama.cpp's
            ``/tokenize`` and ``/props`` sit beside its ``/v1``, not under it.
        route: With several replicas, requests with the same route key go to the same one
            while it is healthy (the model's ``sticky_key``); None routes by load.
    """

    path: str
    body: dict[str, Any]
    method: str = "POST"
    headers: dict[str, str] = field(default_factory=dict)
    root: bool = False
    route: str | None = None


@dataclass(frozen=True)
class ToolCallPiece:
    """A tool call, whole (in an answer) or a fragment of one (in a stream event).

    Attributes:
        index: Which call of the answer this is (streams interleave several by index).
        id: The call's id, if this piece carries it.
        name: The function name, if this piece carries it.
        args: The arguments as JSON text: all of it, or the next fragment when streaming.
    """

    index: int
    id: str | None = None
    name: str | None = None
    args: str = ""


@dataclass(frozen=True)
class TokenUsage:
    """Token counts as the server reported them.

    Attributes:
        input_tokens: Prompt tokens.
        output_tokens: Generated tokens (including reasoning tokens).
        total_tokens: Their sum, or the server's own total.
        cache_read: Prompt tokens served from the server's prompt cache, if reported.
        reasoning: Generated tokens spent on reasoning, if reported.

    """

    input_tokens: int
    output_tokens: int
    total_tokens: int
    cache_read: int | None = None
    reasoning: int | None = None

    @classmethod
    def from_counts(
        cls, input_tokens: int | None, output_tokens: int | None, total_tokens: int | None = None
    ) -> TokenUsage | None:
        """Usage from the counts a server sent, a missing one as 0; None if it sent neither.

        Args:
            input_tokens: Prompt tokens, if sent.
            output_tokens: Generated tokens, if sent.
            total_tokens: The server's own total, if sent (else the sum).
        """
        if input_tokens is None and output_tokens is None:
            return None
        inp, out = input_tokens or 0, output_tokens or 0
        return cls(inp, out, inp + out if total_tokens is None else total_tokens)


@dataclass(frozen=True)
class EmbedParams:
    """What a format needs to build one embeddings request, besides the texts.

    Attributes:
        model: The model name sent to the server.
        dimensions: The vector width to ask for (Matryoshka models), or None.
        truncate: Let the server cut inputs that are too long (its own option); False asks
            it to refuse them instead, where it can be told.
        extra_body: Vendor parameters merged verbatim into the top level of the body.
    """

    model: str
    dimensions: int | None = None
    truncate: bool = False
    extra_body: dict[str, Any] = field(default_factory=dict)


@dataclass
class ParsedEmbeddings:
    """The vectors of one embeddings answer, in input order, and what the server reported.

    Attributes:
        vectors: One vector per input, already ordered by the answer's ``index`` fields.
        usage: Input tokens as the server reported them, if it did.
        model: The model name the server reports.
    """

    vectors: list[list[float]]
    usage: TokenUsage | None = None
    model: str | None = None


@dataclass
class ParsedChunk:
    """A format-neutral piece of an answer: a whole response, or one stream event.

    Attributes:
        text: Answer text (content) in this piece.
        reasoning: Reasoning text (``reasoning_content`` / ``reasoning`` / ``thinking``).
        finish_reason: Why generation ended, if this piece says.
        usage: Token usage, if this piece carries it.
        model: The model name the server reports.
        id: The server's id for the response.
        metadata: Other response metadata (``system_fingerprint``, ``logprobs``, ...).
        done: True for an explicit end-of-stream marker (SSE ``[DONE]``, ``"done": true``).
        cumulative: True if ``text`` is the whole answer so far rather than what is new
            (some APIs stream that way); the assembler then emits only the new part.
        tool_calls: Tool calls (whole answers) or tool-call fragments (stream events).
    """

    text: str = ""
    reasoning: str = ""
    finish_reason: str | None = None
    usage: TokenUsage | None = None
    model: str | None = None
    id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    done: bool = False
    cumulative: bool = False
    tool_calls: list[ToolCallPiece] = field(default_factory=list)


@dataclass(frozen=True)
class ImageParams:
    """What a format needs to build one image-generation request, besides the prompt.

    The names are those of OpenAI's ``POST /images/generations``; an unset one (None) is
    left out of the request, so the server applies its own default.

    Attributes:
        model: The model name sent to the server.
        n: How many images to ask for.
        size: ``WIDTHxHEIGHT`` (``"1024x1024"``) or ``"auto"``.
        quality: ``"low"``, ``"medium"``, ``"high"``, ``"auto"`` (``"standard"`` or
            ``"hd"`` for DALL-E 3), or the server's own values.
        style: ``"vivid"`` or ``"natural"`` (DALL-E 3).
        response_format: ``"b64_json"`` or ``"url"``: how the images should come back.
        output_format: ``"png"``, ``"jpeg"``, ``"webp"`` or ``"gif"`` (GPT image models).
        background: ``"transparent"``, ``"opaque"`` or ``"auto"`` (GPT image models).
        user: An id of the end user, for the server's abuse monitoring.
        extra_body: Vendor parameters merged verbatim into the top level of the body.
    """

    model: str
    n: int | None = None
    size: str | None = None
    quality: str | None = None
    style: str | None = None
    response_format: str | None = None
    output_format: str | None = None
    background: str | None = None
    user: str | None = None
    extra_body: dict[str, Any] = field(default_factory=dict)

    @property
    def width_height(self) -> tuple[int, int] | None:
        """``size`` as two integers, None when it is unset or not ``WIDTHxHEIGHT``."""
        width, sep, height = (self.size or "").partition("x")
        if sep and width.isdigit() and height.isdigit():
            return int(width), int(height)
        return None


@dataclass(frozen=True)
class GeneratedImage:
    """One generated image: base64 data or a URL, as the server gave it.

    Wire formats fill ``base64`` or ``url`` (and ``revised_prompt`` where the server has
    one); `CustomImageGenerator` checks every image and fills ``mime_type`` from the
    decoded bytes, so a checked image always has both ``base64`` and ``mime_type``, or an
    http(s) ``url``.

    Attributes:
        base64: The image's bytes as base64 (OpenAI's ``b64_json``).
        url: Where the image can be fetched (OpenAI's ``url``).
        mime_type: ``image/png``, ``image/jpeg``, ``image/webp`` or ``image/gif``, read from
            the bytes' signature; None for URL images (their bytes are not fetched).
        revised_prompt: The prompt the server actually drew from, if it rewrote yours.
    """

    base64: str | None = None
    url: str | None = None
    mime_type: str | None = None
    revised_prompt: str | None = None


@dataclass
class ParsedImages:
    """The images of one image-generation answer, and what the server reported.

    Attributes:
        images: The images, in the answer's order.
        usage: Token usage (GPT image models report input and output tokens), if any.
        model: The model name the server reports.
        created: The answer's Unix time, if the server says.
        metadata: Other answer fields worth keeping (OpenAI's ``size``, ``quality``,
            ``output_format``, ``background``).
    """

    images: list[GeneratedImage]
    usage: TokenUsage | None = None
    model: str | None = None
    created: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
