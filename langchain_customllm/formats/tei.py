"""Hugging Face Text Embeddings Inference (TEI): ``POST /embed``, an embeddings-only server.

Select it with ``wire_format="tei"``; ``base_url`` is the server root (``http://host:8080``).
The request is ``{"inputs": [...], "truncate": bool}`` and the answer a bare list of vectors
(TEI's ``router/src/http/types.rs``, ``EmbedRequest``); TEI reports token counts only in
headers, so its answers carry no usage. TEI also serves ``/v1/embeddings``: the ``openai``
format works against it too, with usage. For text generation, TGI's own format is ``tgi``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NoReturn

from langchain_core.messages import BaseMessage

from langchain_customllm._exceptions import ConfigurationError
from langchain_customllm._framing import StreamEvent
from langchain_customllm.formats.base import (
    EmbedParams,
    GenerationParams,
    ParsedChunk,
    ParsedEmbeddings,
    WireFormat,
    WireRequest,
    register_builtin_format,
)
from langchain_customllm.formats.embedding import parse_tei_embeddings, tei_embed_body

__all__ = ["TEIFormat"]


def _no_generation() -> NoReturn:
    raise ConfigurationError(
        "wire_format 'tei' is an embeddings server (text-embeddings-inference); for text "
        "generation use wire_format='tgi' or 'openai' against a generation server"
    )


class TEIFormat(WireFormat):
    """Text Embeddings Inference's native ``/embed`` (embeddings only)."""

    name = "tei"
    supports_streaming = False
    reports_usage = False
    supports_embeddings = True

    def embed_request(self, texts: Sequence[str], params: EmbedParams) -> WireRequest:
        """Build a ``POST /embed`` request with TEI's own ``truncate``."""
        return WireRequest(path="/embed", body=tei_embed_body(texts, params))

    def parse_embeddings(self, body: Any) -> ParsedEmbeddings:
        """Read TEI's bare list of vectors."""
        return parse_tei_embeddings(body)

    def chat_request(
        self, messages: Sequence[BaseMessage], params: GenerationParams, *, stream: bool
    ) -> WireRequest:
        """TEI cannot chat: a `ConfigurationError`."""
        _no_generation()

    def completion_request(
        self, prompt: str, params: GenerationParams, *, stream: bool
    ) -> WireRequest:
        """TEI cannot complete text: a `ConfigurationError`."""
        _no_generation()

    def parse_response(self, body: Any, *, chat: bool) -> ParsedChunk:
        """Never reached: no generation request is ever built."""
        _no_generation()

    def parse_event(self, event: StreamEvent, *, chat: bool) -> ParsedChunk | None:
        """Never reached: no generation request is ever built."""
        _no_generation()

    def error_message(self, body: Any) -> str | None:
        """TEI's errors are ``{"error": "...", "error_type": "..."}``."""
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            kind = body.get("error_type")
            return f"{body['error']} ({kind})" if isinstance(kind, str) else body["error"]
        return None


register_builtin_format("tei", TEIFormat)
