"""From parsed pieces to what a caller sees: stop enforcement, metadata, usage. Pure.

Both models (chat and text) and both paths (sync and async) run their answers through
`Assembler`, so stop handling, finish reasons and usage accounting are written once:

- a whole answer: ``Assembler(...).whole(parsed)`` -> one final `Piece`;
- a stream: ``feed(parsed)`` per event -> zero or one `Piece` to emit now, then
  ``finish()`` -> the final `Piece`.

Usage, cost and response metadata travel on the final piece only: langchain-core merges
streamed chunks by adding numbers and concatenating strings, so metadata on several chunks
would be doubled (and float costs crash the merge, langchain issue 36015).

Tool calls are assembled by `langchain_customllm._tool_assembly.ToolCallAssembler`, which
evens out how servers stream them. One server quirk is undone here:

- Stream usage that is the server's estimate (a gateway's, ``usage_estimated`` in the
  profile) is marked ``usage_estimated: True`` in the final metadata. The LiteLLM proxy
  passes a whole answer's usage on from the backend but counts a stream's itself (19 prompt
  tokens where the backend counts 42), so only streamed answers are marked.

Every final piece with usage says where it came from in ``usage_source``: ``"server"`` (the
answer carried it), ``"estimated"`` (a gateway's estimate, as above), or what `add_usage`
was told when the usage was counted on our side (``"tokenized"``, ``"estimated"``; see
`langchain_customllm._counting`). ``usage_estimated: True`` goes with every
``"estimated"``, so the older flag and the new field never disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_customllm._exceptions import StreamError
from langchain_customllm._logprobs import Logprobs
from langchain_customllm._stop import StopMatcher, truncate_at_stop
from langchain_customllm._tool_assembly import ToolCallAssembler, unwrap_string_args
from langchain_customllm.formats.base import ParsedChunk, TokenUsage, ToolCallPiece
from langchain_customllm.pricing import Cost, Pricing, PricingTable, price_answer

__all__ = ["Assembler", "Piece", "UsageSource", "unwrap_string_args"]

UsageSource = Literal["server", "tokenized", "estimated"]
"""Where an answer's usage came from: the server's answer, the server's tokenizer (our
request), or an estimate (langchain-core's approximate count, or a gateway's own)."""


@dataclass
class Piece:
    """Something to hand to the caller.

    Attributes:
        text: Answer text to emit.
        reasoning: Reasoning text to emit.
        final: True for the last piece of an answer; only it has usage and metadata.
        usage: Token usage for the whole answer (final piece only).
        metadata: ``finish_reason``, ``model_name``, ``id``, ... (final piece only).
        id: The server's response id, on every piece once known.
        cost: What the answer cost (final piece only; None when no price is known).
        tool_calls: Whole tool calls (a whole answer) or this event's fragments of them,
            with each call's id and name given once (servers that repeat them in every
            chunk would otherwise get them concatenated when chunks are merged).
        only: The final piece is the answer's only one (a whole answer, or a stream with
            nothing to emit before its end): nothing will ever be merged into it.
    """

    text: str = ""
    reasoning: str = ""
    final: bool = False
    usage: TokenUsage | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    id: str | None = None
    cost: Cost | None = None
    tool_calls: list[ToolCallPiece] = field(default_factory=list)
    only: bool = False


class Assembler:
    """Collects one answer (see the module docstring).

    Args:
        stops: Stop sequences to enforce on the answer text.
        include_stop: Keep the matched stop sequence in the text.
        model: The requested model name, reported if the server does not name one.
        pricing: The model's resolved pricing, to price the answer's usage (optional).
        usage_estimated: The server's stream usage is its own estimate (a gateway's): say
            so in a stream's final metadata (``usage_estimated: True``) when it has usage.
        completion_prompt: For a text model, the prompt: logprobs are then given in OpenAI's
            legacy completions shape whatever the server sent (`langchain_customllm._logprobs`);
            None for a chat model (the chat shape).

    """

    def __init__(
        self,
        stops: Sequence[str] | None,
        include_stop: bool,
        model: str,
        pricing: Pricing | PricingTable | None = None,
        *,
        usage_estimated: bool = False,
        completion_prompt: str | None = None,
    ) -> None:
        self._pricing = pricing
        self._completion_prompt = completion_prompt
        self._usage_estimated = usage_estimated
        self._matcher = StopMatcher(stops, include_stop)
        self._include_stop = include_stop
        self._stops = stops
        self._model = model
        self._server_model: str | None = None
        self._id: str | None = None
        self._finish_reason: str | None = None
        self._usage: TokenUsage | None = None
        self._metadata: dict[str, Any] = {}
        self._logprobs = Logprobs()
        self._emitted: list[str] = []
        self._generated: list[str] = []  # reasoning and tool calls, counted as output too
        self._pieces_out = 0  # pieces feed() returned: is the final piece the only one?
        self._saw_done = False
        self._raw_len = 0  # text received, before stop matching (for cumulative streams)
        self._tools = ToolCallAssembler()

    @property
    def text_so_far(self) -> str:
        """All answer text emitted so far (attached to errors raised mid-stream)."""
        return "".join(self._emitted)

    @property
    def generated_text(self) -> str:
        """Everything the model generated, as text: answer, reasoning, tool calls."""
        return "".join(self._emitted) + "".join(self._generated)

    def add_usage(self, piece: Piece, usage: TokenUsage, source: UsageSource) -> Piece:
        """The final piece with usage counted on our side, priced and labelled ``source``."""
        self._usage = usage
        piece.usage = usage
        piece.cost = self._cost()
        piece.metadata["usage_source"] = source
        if source == "estimated":
            piece.metadata["usage_estimated"] = True
        return piece

    def whole(self, parsed: ParsedChunk) -> Piece:
        """Turn a whole (non-streamed) answer into the final piece."""
        self._absorb(parsed)
        self._note_generated(parsed)
        text, cut = truncate_at_stop(parsed.text, self._stops, self._include_stop)
        if cut:
            self._finish_reason = "stop"
        self._emitted.append(text)
        return Piece(
            text=text,
            reasoning=parsed.reasoning,
            tool_calls=self._tools.whole(parsed.tool_calls),
            final=True,
            usage=self._usage,
            metadata=self._final_metadata(streamed=False),
            id=self._id,
            cost=self._cost(),
            only=True,
        )

    def feed(self, parsed: ParsedChunk) -> Piece | None:
        """Take one stream event; return the piece to emit now, if any.

        After a stop sequence matched, events are still read (their text dropped) until the
        server ends the stream, so usage and metadata are the same as for ``invoke``.
        """
        if self._saw_done:
            return None  # anything after the end marker is not part of the answer
        self._absorb(parsed)
        self._note_generated(parsed)
        new = parsed.text
        if parsed.cumulative:
            new = new[self._raw_len :]
        self._raw_len += len(new)
        text = self._matcher.push(new) if new else ""
        if self._matcher.stopped:
            self._finish_reason = "stop"
        if parsed.done:
            self._saw_done = True
        reasoning = "" if self._matcher.stopped and not text else parsed.reasoning
        tool_calls = self._tools.feed(parsed.tool_calls) if parsed.tool_calls else []
        if not text and not reasoning and not tool_calls:
            return None
        if text:
            self._emitted.append(text)
        self._pieces_out += 1
        return Piece(text=text, reasoning=reasoning, id=self._id, tool_calls=tool_calls)

    def finish(self) -> Piece:
        """End of stream: the final piece with held-back text, usage and metadata.

        Raises:
            StreamError: If the stream ended without the server saying it was complete
                (no finish reason, no end marker): the text so far is attached to the
                error instead of being returned as if it were the whole answer.

        """
        tail = self._matcher.flush()
        if tail:
            self._emitted.append(tail)
        only = self._pieces_out == 0
        if not self._matcher.stopped and not self._saw_done and self._finish_reason is None:
            raise StreamError(
                "The stream ended before the server said the answer was complete "
                "(no finish_reason and no end marker); the text received so far is in "
                "`partial_text`",
                partial_text=self.text_so_far,
            )
        return Piece(
            text=tail,
            tool_calls=self._tools.finish(),
            final=True,
            usage=self._usage,
            metadata=self._final_metadata(streamed=True),
            id=self._id,
            cost=self._cost(),
            only=only,
        )

    def answered_by(self, replica: str | None) -> None:
        """Name the replica that answered in the metadata (models with several)."""
        if replica is not None:
            self._metadata["replica"] = replica

    def _cost(self) -> Cost | None:
        # The server's name first: it may be a dated snapshot of the requested model.
        return price_answer(self._pricing, self._usage, (self._server_model, self._model))

    def _note_generated(self, parsed: ParsedChunk) -> None:
        if parsed.reasoning:
            self._generated.append(parsed.reasoning)
        for call in parsed.tool_calls:
            self._generated.append((call.name or "") + call.args)

    def _absorb(self, parsed: ParsedChunk) -> None:
        if parsed.id and self._id is None:
            self._id = parsed.id
        if parsed.model and self._server_model is None:
            self._server_model = parsed.model
        if parsed.finish_reason and not self._matcher.stopped:
            self._finish_reason = parsed.finish_reason
        if parsed.usage is not None:
            # Servers that repeat usage send running totals: the last one is the answer's.
            self._usage = parsed.usage
        if parsed.metadata:
            for key, value in parsed.metadata.items():
                if key != "logprobs" or not self._logprobs.add(value):
                    self._metadata[key] = value

    def _final_metadata(self, *, streamed: bool) -> dict[str, Any]:
        meta: dict[str, Any] = dict(self._metadata)
        logprobs = (
            self._logprobs.chat()
            if self._completion_prompt is None
            else self._logprobs.legacy(len(self._completion_prompt))
        )
        if logprobs is not None:
            meta["logprobs"] = logprobs
        meta["finish_reason"] = self._finish_reason
        meta["model_name"] = self._server_model or self._model
        if self._usage is not None:
            estimated = self._usage_estimated and streamed
            meta["usage_source"] = "estimated" if estimated else "server"
            if estimated:
                meta["usage_estimated"] = True
        if self._id is not None:
            meta["id"] = self._id
        return meta
