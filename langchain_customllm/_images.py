"""What an image call does besides I/O: the prompt, the answer checks, the result (pure).

`CustomImageGenerator` sends one request and hands the answer here, so its sync and async
paths (and the tests) share all of it: the prompt is read from the call's input, every
answer is checked (as many images as ``n``, each a real image, of the ``output_format``
asked for), priced, and turned into an `ImageResult`, whose `ImageResult.to_message` is
what the runnable returns and `ImageResult.to_openai` what an OpenAI-compatible server
answers.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, convert_to_messages
from langchain_core.messages.content import create_image_block
from langchain_core.prompt_values import PromptValue, StringPromptValue

from langchain_customllm._convert import MODEL_PROVIDER, usage_to_metadata
from langchain_customllm._exceptions import ConfigurationError, ResponseError
from langchain_customllm.formats.base import GeneratedImage, ImageParams, ParsedImages, TokenUsage
from langchain_customllm.formats.image import check_image
from langchain_customllm.pricing import Cost, Pricing, PricingTable, price_answer

__all__ = ["IMAGE_CALL_KEYS", "ImageResult", "check_answer", "image_result", "prompt_text"]

# Per-call keyword arguments read as the generator's settings (validated as they are); any
# other keyword argument goes verbatim into the request body.
IMAGE_CALL_KEYS = frozenset(
    {
        "model", "n", "size", "quality", "style", "response_format", "output_format",
        "background", "user", "extra_body",
    }
)  # fmt: skip

_FORMAT_MIME = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "jpg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
}


def _messages_text(messages: Sequence[BaseMessage]) -> str:
    texts = []
    for message in messages:
        for block in message.content_blocks:
            if block["type"] == "text":
                texts.append(block["text"])
            else:
                raise ConfigurationError(
                    f"A {message.type} message holds a {block['type']!r} block: image "
                    "generation takes a text prompt only (image inputs and edits are not "
                    "supported); pass the text"
                )
    return "\n\n".join(text for text in texts if text)


def prompt_text(value: LanguageModelInput) -> str:
    """The prompt of one call: a string, a prompt value's text, or the messages' text.

    Messages (a chat prompt's system and human turns) are joined by blank lines, so an
    instruction such as "in watercolour" in a system message is kept.

    Raises:
        ConfigurationError: For an empty prompt, non-text content, or another input type.
    """
    if isinstance(value, str):
        text = value
    elif isinstance(value, StringPromptValue):
        text = value.text
    elif isinstance(value, PromptValue):
        text = _messages_text(value.to_messages())
    elif isinstance(value, Sequence):
        try:
            messages = convert_to_messages(value)
        except (ValueError, TypeError, NotImplementedError) as exc:
            raise ConfigurationError(f"The image prompt is not a list of messages: {exc}") from None
        text = _messages_text(messages)
    else:
        raise ConfigurationError(
            f"An image prompt is a str, a PromptValue or a list of messages, not "
            f"{type(value).__name__}"
        )
    if not text.strip():
        raise ConfigurationError("The image prompt is empty: describe the image to generate")
    return text


def check_answer(parsed: ParsedImages, params: ImageParams) -> list[GeneratedImage]:
    """The answer's images, each checked (`check_image`), as many as asked for.

    Raises:
        ResponseError: For a count other than ``n`` (1 when unset), an image that is not
            one, or one of another format than ``output_format``.
    """
    expected, got = params.n or 1, len(parsed.images)
    if got != expected:
        raise ResponseError(
            f"The server returned {got} image{'s' * (got != 1)} for n={expected} -- a cut "
            "answer, or a server that does not honour `n` (set n to what it returns)"
        )
    images = [check_image(image, f"Image {i}") for i, image in enumerate(parsed.images)]
    wanted = _FORMAT_MIME.get((params.output_format or "").lower())
    for index, image in enumerate(images):
        if wanted and image.mime_type is not None and image.mime_type != wanted:
            raise ResponseError(
                f"Image {index} is {image.mime_type}, not output_format="
                f"{params.output_format!r} -- the server ignored output_format"
            )
    return images


@dataclass(frozen=True)
class ImageResult:
    """What one image-generation call gave: the checked images, usage and cost.

    Attributes:
        images: The images, in the answer's order: each has ``base64`` and ``mime_type``,
            or an http(s) ``url``.
        model: The model name the server reported, else the one asked for.
        created: The answer's Unix time (the server's, else when it arrived).
        usage: Token usage as the server reported it (GPT image models), or None.
        cost: What the call cost, where priced (`Cost.image_cost` is the per-image part).
        metadata: Other answer fields the server sent: OpenAI's ``size``, ``quality``,
            ``output_format``, ``background``.
    """

    images: tuple[GeneratedImage, ...]
    model: str
    created: int
    usage: TokenUsage | None = None
    cost: Cost | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def to_openai(self) -> dict[str, Any]:
        """The answer of OpenAI's ``/images/generations``: ``created``, ``data``, ``usage``.

        Each ``data`` entry has ``b64_json`` or ``url``, and ``revised_prompt`` when the
        server rewrote the prompt; ``usage`` (input, output and total tokens) is there when
        the server reported it. The cost is not part of OpenAI's answer: see ``cost``.
        """
        data = []
        for image in self.images:
            entry = {"b64_json": image.base64} if image.base64 is not None else {"url": image.url}
            if image.revised_prompt is not None:
                entry["revised_prompt"] = image.revised_prompt
            data.append(entry)
        answer: dict[str, Any] = {"created": self.created, "data": data, **self.metadata}
        if self.usage is not None:
            answer["usage"] = {
                "input_tokens": self.usage.input_tokens,
                "output_tokens": self.usage.output_tokens,
                "total_tokens": self.usage.total_tokens,
            }
        return answer

    def to_message(self) -> AIMessage:
        """The images as an `AIMessage` of LangChain image content blocks.

        Blocks are ``{"type": "image", "base64": ..., "mime_type": ...}`` or ``{"type":
        "image", "url": ...}`` (langchain-core's ``ImageContentBlock``), with the revised
        prompt in ``extras``; ``response_metadata`` has ``model_name``, ``created``, the
        answer's fields, ``revised_prompts`` and ``cost``; ``usage_metadata`` the tokens.
        """
        blocks: list[str | dict[str, Any]] = [
            create_image_block(  # type: ignore[misc]  # a TypedDict is a dict at run time
                base64=image.base64,
                url=image.url,
                mime_type=image.mime_type,
                revised_prompt=image.revised_prompt,
            )
            for image in self.images
        ]
        meta: dict[str, Any] = {
            "model_name": self.model,
            "model_provider": MODEL_PROVIDER,
            "created": self.created,
            **self.metadata,
        }
        revised = [image.revised_prompt for image in self.images]
        if any(prompt is not None for prompt in revised):
            meta["revised_prompts"] = revised
        if self.cost is not None:
            meta["cost"] = self.cost.as_dict()
        usage = None if self.usage is None else usage_to_metadata(self.usage, self.cost)
        return AIMessage(content=blocks, response_metadata=meta, usage_metadata=usage)


def image_result(
    parsed: ParsedImages, params: ImageParams, pricing: Pricing | PricingTable | None
) -> ImageResult:
    """The checked, priced result of one answer (see `check_answer`)."""
    images = check_answer(parsed, params)
    cost = price_answer(pricing, parsed.usage, [parsed.model, params.model], images=len(images))
    return ImageResult(
        images=tuple(images),
        model=parsed.model or params.model,
        created=parsed.created if parsed.created is not None else int(time.time()),
        usage=parsed.usage,
        cost=cost,
        metadata=dict(parsed.metadata),
    )
