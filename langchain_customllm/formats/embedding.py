"""Embeddings on the wire: the request bodies and answer readers of each format (pure).

The format classes delegate their ``embed_request`` / ``parse_embeddings`` here, so what
every embeddings answer has in common is read once: a vector is a list of numbers, or
base64 of little-endian float32 (what OpenAI's API sends for ``encoding_format: "base64"``,
and what some servers send even when asked for floats); the ``index`` fields, where the
format has them, put the vectors back in input order. The checks that need the request
(as many vectors as inputs, one width, ``dimensions``) are the model's, in `embeddings`.

Inputs always go as raw strings, never token arrays: servers tokenize with the model's own
tokenizer (vLLM refuses OpenAI's client-side token arrays for many models, and tiktoken's
ids are wrong for every model that is not OpenAI's).
"""

from __future__ import annotations

import base64
import binascii
import sys
from array import array
from collections.abc import Sequence
from typing import Any

from langchain_customllm._exceptions import ResponseError
from langchain_customllm._text import excerpt
from langchain_customllm.formats.base import EmbedParams, ParsedEmbeddings, TokenUsage
from langchain_customllm.formats.selectors import compile_paths, select
from langchain_customllm.formats.template import EndpointSpec, check_template, render

__all__ = [
    "CustomEmbedder",
    "EmbedSpec",
    "decode_vector",
    "ollama_embed_body",
    "openai_embed_body",
    "parse_ollama_embeddings",
    "parse_openai_embeddings",
    "parse_tei_embeddings",
    "tei_embed_body",
]


def decode_vector(value: Any, where: str) -> list[float]:
    """One vector: a list of numbers, or base64 of little-endian float32.

    Args:
        value: What the answer holds for one input.
        where: Which input, for the message (``"input 3"``).

    Raises:
        ResponseError: For anything else, saying what came back.
    """
    if isinstance(value, list):
        # The common case first: a list of floats needs no conversion at all.
        if all(type(x) is float for x in value):
            return value
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value):
            raise ResponseError(f"The vector of {where} holds non-numbers: {excerpt(value)}")
        return [float(x) for x in value]
    if isinstance(value, str):
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ResponseError(
                f"The vector of {where} is text that is not base64: {excerpt(value)}"
            ) from None
        if len(raw) % 4:
            raise ResponseError(
                f"The base64 vector of {where} is {len(raw)} bytes, not a whole number of "
                "float32 values: the answer was cut or is not float32"
            )
        floats = array("f")
        floats.frombytes(raw)
        if sys.byteorder == "big":  # the wire is little-endian, whatever this machine is
            floats.byteswap()
        return floats.tolist()
    raise ResponseError(f"The vector of {where} is not a list of numbers: {excerpt(value)}")


def _body(params: EmbedParams, **fields: Any) -> dict[str, Any]:
    body = {key: value for key, value in fields.items() if value is not None}
    body.update(params.extra_body)
    return body


# ----------------------------------------------------------------- OpenAI-compatible


def openai_embed_body(texts: Sequence[str], params: EmbedParams) -> dict[str, Any]:
    """``POST /embeddings``: raw strings; floats asked for; vLLM's truncation option."""
    return _body(
        params,
        model=params.model,
        input=list(texts),
        encoding_format="float",
        dimensions=params.dimensions,
        # vLLM's own option (-1: the model's length); others ignore unknown fields.
        truncate_prompt_tokens=-1 if params.truncate else None,
    )


def parse_openai_embeddings(body: Any) -> ParsedEmbeddings:
    """Read ``{"data": [{"index", "embedding"}], "model"}``, ordered by ``index``.

    The ``usage`` object is the OpenAI format's own to read (`OpenAIFormat`).
    """
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list) or not data:
        raise ResponseError(
            "The embeddings answer has no `data` list of vectors -- is this an "
            f"OpenAI-compatible /embeddings endpoint? Got: {excerpt(body)}",
            body=body,
        )
    slots: list[Any] = [None] * len(data)
    for position, item in enumerate(data):
        if not isinstance(item, dict) or "embedding" not in item:
            raise ResponseError(
                f"Item {position} of the embeddings answer has no `embedding`: {excerpt(item)}",
                body=body,
            )
        index = item.get("index", position)
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(data):
            raise ResponseError(
                f"Item {position} of the embeddings answer has index {index!r}, outside "
                f"0..{len(data) - 1}",
                body=body,
            )
        if slots[index] is not None:
            raise ResponseError(
                f"The embeddings answer has index {index} twice: the vectors cannot be "
                "matched to the inputs",
                body=body,
            )
        slots[index] = decode_vector(item["embedding"], f"input {index}")
    model = body.get("model")
    return ParsedEmbeddings(slots, model=model if isinstance(model, str) else None)


# ----------------------------------------------------------------- Ollama


def ollama_embed_body(texts: Sequence[str], params: EmbedParams) -> dict[str, Any]:
    """``POST /api/embed``; Ollama truncates by default, so ``truncate`` is always sent."""
    return _body(
        params,
        model=params.model,
        input=list(texts),
        truncate=params.truncate,
        dimensions=params.dimensions,
    )


def parse_ollama_embeddings(body: Any) -> ParsedEmbeddings:
    """Read ``{"model", "embeddings": [[...]], "prompt_eval_count"}``."""
    vectors = body.get("embeddings") if isinstance(body, dict) else None
    if not isinstance(vectors, list):
        raise ResponseError(
            "The Ollama answer has no `embeddings` list -- is base_url the server root and "
            f"the model an embedding model? Got: {excerpt(body)}",
            body=body,
        )
    count = body.get("prompt_eval_count")
    usage = TokenUsage.from_counts(count, None) if isinstance(count, int) else None
    model = body.get("model")
    return ParsedEmbeddings(
        [decode_vector(v, f"input {i}") for i, v in enumerate(vectors)],
        usage,
        model if isinstance(model, str) else None,
    )


# ----------------------------------------------------------------- Hugging Face TEI


def tei_embed_body(texts: Sequence[str], params: EmbedParams) -> dict[str, Any]:
    """``POST /embed``: TEI serves one model, so no name; ``truncate`` is its own option."""
    return _body(params, inputs=list(texts), truncate=params.truncate, dimensions=params.dimensions)


def parse_tei_embeddings(body: Any) -> ParsedEmbeddings:
    """Read TEI's answer: a bare list of vectors (no usage, no model)."""
    if not isinstance(body, list):
        raise ResponseError(
            "The TEI answer is not a list of vectors -- is base_url the server root of a "
            f"text-embeddings-inference server? Got: {excerpt(body)}",
            body=body,
        )
    return ParsedEmbeddings([decode_vector(v, f"input {i}") for i, v in enumerate(body)])


# ----------------------------------------------------------------- custom (declared in data)

EMBED_PLACEHOLDERS = frozenset({"input", "model", "dimensions", "truncate"})


class EmbedSpec(EndpointSpec):
    """The ``embed`` section of a ``kind: custom`` wire format: an in-house embeddings API.

    Example (YAML)::

        embed:
          path: /v2/encode
          request: {texts: "{input}", model: "{model}", dim: "{dimensions}"}
          vectors: result.items          # the list, one entry per input
          vector: values                 # in each entry (omit if entries are the vectors)
          index: position                # in each entry (omit if answers keep input order)
          input_tokens: meta.tokens

    Attributes:
        path: The path of embeddings calls, relative to ``base_url``.
        request: The JSON body; placeholders ``{input}`` (the list of texts), ``{model}``,
            ``{dimensions}`` and ``{truncate}`` (an unset one drops its key).
        vectors: Path to the list of results; None: the answer itself is that list.
        vector: Path to the vector inside each result; None: each result is the vector.
        index: Path to the input index inside each result; None: results are in input order.
        input_tokens: Path to the input token count.
        total_tokens: Path to the total token count.
        model: Path to the model name the API reports.
    """

    vectors: str | None = None
    vector: str | None = None
    index: str | None = None
    input_tokens: str | None = None
    total_tokens: str | None = None
    model: str | None = None


class CustomEmbedder:
    """Builds and reads the requests of an `EmbedSpec` (selectors compiled once).

    Args:
        spec: The validated section.
        name: The format's name, for messages.

    Raises:
        ConfigurationError: For an unknown placeholder or a bad selector path.
    """

    def __init__(self, spec: EmbedSpec, name: str) -> None:
        check_template(spec.request, "embed.request", EMBED_PLACEHOLDERS)
        self.spec = spec
        self.name = name
        keys = ("vectors", "vector", "index", "input_tokens", "total_tokens", "model")
        self._paths = compile_paths({key: getattr(spec, key) for key in keys}, "embed")

    def request(self, texts: Sequence[str], params: EmbedParams) -> tuple[str, dict[str, Any]]:
        """The path and body of one request."""
        values = {
            "input": list(texts),
            "model": params.model,
            "dimensions": params.dimensions,
            "truncate": params.truncate,
        }
        body = render(self.spec.request, values)
        body.update(params.extra_body)
        return self.spec.path, body

    def _find(self, key: str, data: Any, *, required: bool = False) -> Any:
        selector = self._paths.get(key)
        if selector is None:
            return data if required else None
        return select(selector, data, self.name, required=required)

    def parse(self, body: Any) -> ParsedEmbeddings:
        """Read the vectors (ordered by ``index`` if declared), usage and model."""
        items = self._find("vectors", body, required=True)
        if not isinstance(items, list):
            raise ResponseError(
                f"custom wire format {self.name!r}: the vectors are not a list: {excerpt(items)}",
                body=body,
            )
        slots: list[Any] = [None] * len(items)
        for position, item in enumerate(items):
            index = self._find("index", item) if "index" in self._paths else position
            if isinstance(index, bool) or not isinstance(index, int):
                index = -1
            if not 0 <= index < len(items) or slots[index] is not None:
                raise ResponseError(
                    f"custom wire format {self.name!r}: result {position} has index "
                    f"{self._find('index', item)!r}: missing, repeated or outside "
                    f"0..{len(items) - 1}",
                    body=body,
                )
            slots[index] = decode_vector(
                self._find("vector", item, required=True), f"input {index}"
            )
        inp, total = self._find("input_tokens", body), self._find("total_tokens", body)
        usage = None
        if isinstance(inp, int) and not isinstance(inp, bool):
            usage = TokenUsage.from_counts(inp, None, total if isinstance(total, int) else None)
        model = self._find("model", body)
        return ParsedEmbeddings(slots, usage, model if isinstance(model, str) else None)
