"""Image generation on the wire: request bodies, answer readers and image checks (pure).

The format classes delegate their ``image_request`` / ``parse_images`` here, as they do for
embeddings (`embedding`). Readers only pick the base64 or the URL of each image out of the
answer; `check_image` then proves each one is an image, whatever format (or Python adapter)
read it: base64 that decodes to bytes with a PNG, JPEG, WEBP or GIF signature (its MIME
type is read from those bytes, never trusted from the answer), a ``data:`` URL likewise, or
an http(s) URL.

OpenAI's ``POST /images/generations`` (openai-python ``types/image_generate_params.py``,
``types/images_response.py``): ``model``, ``prompt``, ``n``, ``size``, ``quality``,
``style``, ``response_format`` (``url`` | ``b64_json``), ``output_format``, ``background``,
``user`` in; ``{"created", "data": [{"b64_json" | "url", "revised_prompt"}], "size",
"quality", "output_format", "background", "usage": {"input_tokens", "output_tokens",
"total_tokens", "input_tokens_details"}}`` out (usage from GPT image models only).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from langchain_customllm._exceptions import ResponseError, error_detail
from langchain_customllm._http import http_url
from langchain_customllm._text import excerpt
from langchain_customllm.formats.datatypes import (
    GeneratedImage,
    ImageParams,
    ParsedImages,
    TokenUsage,
)
from langchain_customllm.formats.selectors import compile_paths, select
from langchain_customllm.formats.template import EndpointSpec, check_template, render

__all__ = [
    "IMAGE_PLACEHOLDERS",
    "CustomImager",
    "ImageSpec",
    "check_image",
    "openai_image_body",
    "parse_image_usage",
    "parse_openai_images",
    "sniff_mime",
]

# The answer fields of OpenAI's ImagesResponse kept as response metadata.
_OPENAI_META = ("size", "quality", "output_format", "background")


def sniff_mime(data: bytes) -> str | None:
    """The MIME type of image bytes from their signature, or None if not a known image.

    Known: PNG, JPEG, WEBP and GIF (what image APIs answer with).
    """
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    return None


def _decoded(text: str, where: str) -> tuple[str, str]:
    """Base64 text as (the clean base64, its sniffed MIME type), or a `ResponseError`."""
    clean = "".join(text.split())  # some servers wrap base64 in lines, as MIME does
    try:
        data = base64.b64decode(clean, validate=True)
    except (binascii.Error, ValueError):
        raise ResponseError(f"{where} is text that is not base64: {excerpt(text, 80)}") from None
    mime = sniff_mime(data)
    if mime is None:
        head = data[:12]
        raise ResponseError(
            f"{where} decodes to {len(data)} bytes that are not a PNG, JPEG, WEBP or GIF "
            f"image (they start {head.hex(' ')} {head.decode('latin-1')!r}) -- an error page "
            "or another format sent as the image"
        )
    return clean, mime


def check_image(image: GeneratedImage, where: str) -> GeneratedImage:
    """The image checked, with its MIME type read from its bytes (pure).

    A ``data:`` URL becomes base64 data; an http(s) URL is kept as it is (not fetched).

    Args:
        image: As a wire format read it.
        where: Which image, for messages (``"Image 2"``).

    Raises:
        ResponseError: For base64 that does not decode to a PNG, JPEG, WEBP or GIF, a URL
            that is not http(s) with a host, or an image with neither.
    """
    if image.base64 is not None:
        if not isinstance(image.base64, str) or not image.base64.strip():
            raise ResponseError(f"{where} has empty or non-text base64: {excerpt(image.base64)}")
        data, mime = _decoded(image.base64, f"The base64 of {where.lower()}")
        return replace(image, base64=data, url=None, mime_type=mime)
    url = image.url
    if not isinstance(url, str) or not url.strip():
        raise ResponseError(f"{where} has neither base64 data nor a URL: {excerpt(url)}")
    if url.startswith("data:"):
        header, _, payload = url.partition(",")
        if not header.endswith(";base64"):
            raise ResponseError(
                f"The data URL of {where.lower()} is not base64: {excerpt(url, 80)}"
            )
        data, mime = _decoded(payload, f"The data URL of {where.lower()}")
        return replace(image, base64=data, url=None, mime_type=mime)
    if http_url(url) is None:
        raise ResponseError(
            f"The URL of {where.lower()} is not an http(s) URL with a host: {excerpt(url, 120)}"
        )
    return replace(image, mime_type=None)


def _text(value: Any, what: str, body: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ResponseError(f"{what} should be text, got: {excerpt(value)}", body=body)


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def parse_image_usage(raw: Any) -> TokenUsage | None:
    """Read an image answer's ``usage``; None if absent or without counts.

    OpenAI's ``input_tokens`` / ``output_tokens`` (GPT image models), or the chat names
    ``prompt_tokens`` / ``completion_tokens`` that some gateways send.
    """
    if not isinstance(raw, Mapping):
        return None
    inp = _count(raw.get("input_tokens", raw.get("prompt_tokens")))
    out = _count(raw.get("output_tokens", raw.get("completion_tokens")))
    return TokenUsage.from_counts(inp, out, _count(raw.get("total_tokens")))


# ----------------------------------------------------------------- OpenAI-compatible


def _fields(prompt: str, params: ImageParams) -> dict[str, Any]:
    """The request's values by OpenAI's names, an unset one None."""
    return {
        "model": params.model,
        "prompt": prompt,
        "n": params.n,
        "size": params.size,
        "quality": params.quality,
        "style": params.style,
        "response_format": params.response_format,
        "output_format": params.output_format,
        "background": params.background,
        "user": params.user,
    }


def openai_image_body(prompt: str, params: ImageParams) -> dict[str, Any]:
    """``POST /images/generations``: the set parameters only, by OpenAI's names."""
    body = {key: value for key, value in _fields(prompt, params).items() if value is not None}
    body.update(params.extra_body)
    return body


def parse_openai_images(body: Any) -> ParsedImages:
    """Read ``{"created", "data": [{"b64_json" | "url", "revised_prompt"}], "usage"}``."""
    if isinstance(body, dict) and "error" in body and "data" not in body:
        raise ResponseError(f"The server returned an error: {error_detail(body)}", body=body)
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        raise ResponseError(
            "The image answer has no `data` list of images -- is this an OpenAI-compatible "
            f"/images/generations endpoint? Got: {excerpt(body)}",
            body=body,
        )
    images = []
    for index, item in enumerate(data):
        if not isinstance(item, dict) or (item.get("b64_json") is None and not item.get("url")):
            raise ResponseError(
                f"Image {index} of the answer has neither `b64_json` nor `url`: {excerpt(item)}",
                body=body,
            )
        images.append(
            GeneratedImage(
                base64=_text(item.get("b64_json"), f"Image {index}'s `b64_json`", body),
                url=_text(item.get("url"), f"Image {index}'s `url`", body),
                revised_prompt=_text(
                    item.get("revised_prompt"), f"Image {index}'s `revised_prompt`", body
                ),
            )
        )
    meta = {key: body[key] for key in _OPENAI_META if isinstance(body.get(key), str)}
    model = body.get("model")
    return ParsedImages(
        images,
        usage=parse_image_usage(body.get("usage")),
        model=model if isinstance(model, str) else None,
        created=_count(body.get("created")),
        metadata=meta,
    )


# ----------------------------------------------------------------- custom (declared in data)

IMAGE_PLACEHOLDERS = frozenset(
    {
        "prompt", "model", "n", "size", "width", "height", "quality", "style",
        "response_format", "output_format", "background", "user",
    }
)  # fmt: skip


class ImageSpec(EndpointSpec):
    """The ``image`` section of a ``kind: custom`` wire format: an in-house image API.

    Example (YAML)::

        image:
          path: /v2/render
          request: {text: "{prompt}", width: "{width}", height: "{height}", count: "{n}"}
          images: result.outputs       # the list, one entry per image
          base64: png                  # in each entry: the image as base64 (or a data URL)
          url: link                    # in each entry: or where to fetch it
          revised_prompt: prompt_used
          input_tokens: meta.tokens_in

    Attributes:
        path: The path of image calls, relative to ``base_url``.
        request: The JSON body; placeholders ``{prompt}``, ``{model}``, ``{n}``,
            ``{size}`` (and its parts ``{width}`` and ``{height}``), ``{quality}``,
            ``{style}``, ``{response_format}``, ``{output_format}``, ``{background}``,
            ``{user}`` (an unset one drops its key).
        images: Path to the list of images; None: the answer itself is that list.
        base64: Path to the base64 data in each entry.
        url: Path to the URL in each entry. With neither ``base64`` nor ``url``, each entry
            is the image itself: a URL if it starts with ``http://``, ``https://`` or
            ``data:``, else base64 (as Stable Diffusion WebUI's ``images`` list).
        revised_prompt: Path to the prompt the API drew from, in each entry.
        input_tokens: Path to the input token count.
        output_tokens: Path to the output token count.
        total_tokens: Path to the total token count (else input plus output).
        model: Path to the model name the API reports.
    """

    images: str | None = None
    base64: str | None = None
    url: str | None = None
    revised_prompt: str | None = None
    input_tokens: str | None = None
    output_tokens: str | None = None
    total_tokens: str | None = None
    model: str | None = None


class CustomImager:
    """Builds and reads the requests of an `ImageSpec` (selectors compiled once).

    Usage and the model name are read by the format (`CustomFormat`), from `paths`.

    Args:
        spec: The validated section.
        name: The format's name, for messages.

    Raises:
        ConfigurationError: For an unknown placeholder or a bad selector path.
    """

    def __init__(self, spec: ImageSpec, name: str) -> None:
        check_template(spec.request, "image.request", IMAGE_PLACEHOLDERS)
        self.spec = spec
        self.name = name
        keys = (
            "images", "base64", "url", "revised_prompt",
            "input_tokens", "output_tokens", "total_tokens", "model",
        )  # fmt: skip
        self.paths = compile_paths({key: getattr(spec, key) for key in keys}, "image")

    def request(self, prompt: str, params: ImageParams) -> tuple[str, dict[str, Any]]:
        """The path and body of one request."""
        width, height = params.width_height or (None, None)
        values = {**_fields(prompt, params), "width": width, "height": height}
        body = render(self.spec.request, values)
        body.update(params.extra_body)
        return self.spec.path, body

    def _find(self, key: str, data: Any) -> Any:
        selector = self.paths.get(key)
        return None if selector is None else select(selector, data, self.name, required=False)

    def _entry(self, item: Any, index: int, body: Any) -> GeneratedImage:
        where = f"custom wire format {self.name!r}: image {index}"
        if "base64" not in self.paths and "url" not in self.paths:
            if not isinstance(item, str):
                raise ResponseError(f"{where} is not a string: {excerpt(item)}", body=body)
            is_url = item.startswith(("http://", "https://", "data:"))
            return GeneratedImage(base64=None if is_url else item, url=item if is_url else None)
        data, url = self._find("base64", item), self._find("url", item)
        if data is None and url is None:
            declared = " or ".join(
                f"`{self.paths[k].path}`" for k in ("base64", "url") if k in self.paths
            )
            raise ResponseError(f"{where} has no {declared}: {excerpt(item)}", body=body)
        return GeneratedImage(
            base64=_text(data, f"{where}'s base64", body),
            url=_text(url, f"{where}'s URL", body),
            revised_prompt=_text(self._find("revised_prompt", item), f"{where}'s prompt", body),
        )

    def parse(self, body: Any) -> list[GeneratedImage]:
        """The images of an answer, in its order."""
        selector = self.paths.get("images")
        items = body if selector is None else select(selector, body, self.name, required=True)
        if not isinstance(items, list):
            raise ResponseError(
                f"custom wire format {self.name!r}: the images are not a list: {excerpt(items)}",
                body=body,
            )
        return [self._entry(item, index, body) for index, item in enumerate(items)]
