"""What an embeddings call does besides I/O: batches, answer checks, usage (pure).

`CustomLLMEmbeddings` sends the batches `plan_batches` makes and checks every answer here,
so the sync and async paths (and the tests) share all of it. A batch is cut at
``chunk_size`` texts or ``max_batch_bytes`` of JSON text, whichever comes first: servers
cap both (vLLM and llama.cpp the batch, proxies and TEI the body size).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from langchain_customllm._exceptions import (
    APIStatusError,
    ContextLengthExceededError,
    ResponseError,
)
from langchain_customllm.formats.base import ParsedEmbeddings, TokenUsage

__all__ = [
    "Batch",
    "check_batch",
    "check_widths",
    "is_too_large",
    "plan_batches",
    "too_long",
    "total_usage",
]


@dataclass(frozen=True)
class Batch:
    """Consecutive inputs sent in one request.

    Attributes:
        start: The index of the first input in the whole call.
        texts: The inputs.
    """

    start: int
    texts: Sequence[str]

    def halves(self) -> tuple[Batch, Batch]:
        """The batch cut in two, for a server that found it too large."""
        mid = len(self.texts) // 2
        return Batch(self.start, self.texts[:mid]), Batch(self.start + mid, self.texts[mid:])


def _size(text: str) -> int:
    # What the text costs in the JSON body: escapes and non-ASCII included, plus ``"",``.
    return len(json.dumps(text).encode()) + 1


def plan_batches(texts: Sequence[str], chunk_size: int, max_bytes: int) -> list[Batch]:
    """Cut ``texts`` into batches of at most ``chunk_size`` texts and ``max_bytes`` of text.

    A single text larger than ``max_bytes`` goes alone (the server says whether it fits).
    """
    # The common case without encoding each text: JSON spends at most 6 bytes a character
    # (``\uXXXX``) and 3 more a text (quotes, comma).
    if len(texts) <= chunk_size and sum(len(t) + 1 for t in texts) * 6 <= max_bytes:
        return [Batch(0, texts)]
    batches: list[Batch] = []
    start, size = 0, 0
    for index, text in enumerate(texts):
        cost = _size(text)
        if index > start and (index - start >= chunk_size or size + cost > max_bytes):
            batches.append(Batch(start, texts[start:index]))
            start, size = index, 0
        size += cost
    batches.append(Batch(start, texts[start:]))
    return batches


def is_too_large(error: Exception) -> bool:
    """Whether the server refused a batch for its size (so halves may pass)."""
    return isinstance(error, ContextLengthExceededError) or (
        isinstance(error, APIStatusError) and error.status_code == 413
    )


def too_long(error: APIStatusError, index: int, truncate: bool) -> ContextLengthExceededError:
    """The error for one input the server refused alone: it names the input."""
    fix = (
        "the server does not truncate by itself (truncate=True is sent as vLLM's "
        "truncate_prompt_tokens, TEI's and Ollama's truncate): shorten or split it"
        if truncate
        else "shorten or split it, or set truncate=True to let the server cut it"
    )
    found = ContextLengthExceededError(
        f"Input {index} is too long for the model: {error.message} -- {fix}",
        status_code=error.status_code,
        body=error.body,
        request_id=error.request_id,
    )
    found.index = index  # type: ignore[attr-defined]
    return found


def check_batch(parsed: ParsedEmbeddings, batch: Batch) -> None:
    """As many vectors as inputs.

    Raises:
        ResponseError: Naming the inputs of the batch and what came back.
    """
    got, sent = len(parsed.vectors), len(batch.texts)
    if got != sent:
        last = batch.start + sent - 1
        raise ResponseError(
            f"The server returned {got} vectors for {sent} inputs (inputs {batch.start} to "
            f"{last}) -- a cut answer, or a server that drops or merges inputs; try a "
            "smaller chunk_size"
        )


def check_widths(vectors: Sequence[Sequence[float]], dimensions: int | None) -> None:
    """All vectors of one width, equal to ``dimensions`` when set.

    Raises:
        ResponseError: Naming the first input whose width differs.
    """
    width = len(vectors[0])
    if width == 0:
        raise ResponseError("The server returned an empty vector for input 0")
    for index, vector in enumerate(vectors):
        if len(vector) != width:
            raise ResponseError(
                f"Input {index} came back {len(vector)} wide and input 0 {width} wide: one "
                "model gives one width -- a cut answer, or vectors of different models"
            )
    if dimensions is not None and width != dimensions:
        raise ResponseError(
            f"The vectors are {width} wide, not dimensions={dimensions} -- the "
            "server ignored `dimensions` or the model cannot shorten its vectors; leave "
            "dimensions unset to take the model's width"
        )


def total_usage(answers: Sequence[ParsedEmbeddings]) -> TokenUsage | None:
    """The input tokens of every batch together; None if no answer reported any."""
    reported = [a.usage for a in answers if a.usage is not None]
    if not reported:
        return None
    tokens = sum(u.input_tokens for u in reported)
    return TokenUsage(tokens, 0, sum(u.total_tokens for u in reported))
