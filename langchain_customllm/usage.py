"""Totals across a workflow: requests, tokens and cost, per model and overall.

::

    from langchain_customllm import track_usage

    with track_usage() as usage:
        chain.invoke({"q": "..."})
        chain.batch([...])
    print(usage)                # a small table, per model and in total
    usage.total.cost            # USD, or None if no call had a price

`track_usage` injects a `UsageTracker` into every LangChain call made inside it, the way
langchain-core's ``get_usage_metadata_callback`` does (a context variable registered with
``register_configure_hook``), so threads (``batch``), asyncio tasks (``abatch``,
``gather``) and nested trackers each see their own calls; an inner tracker's calls also
count in the outer one. The tracker only reads standard fields (``usage_metadata`` with
its ``*_cost`` keys, else ``response_metadata["cost"]``, which images priced per picture
have without tokens; for text LLMs ``generation_info["token_usage"]`` and ``["cost"]``), so
it counts any LangChain model that reports usage, not only ours.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from contextvars import ContextVar, Token
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGeneration, Generation, LLMResult
from langchain_core.tracers.context import register_configure_hook

from langchain_customllm._usage_table import format_table
from langchain_customllm.formats.base import TokenUsage
from langchain_customllm.pricing import (
    Pricing,
    PricingSpec,
    PricingTable,
    price_answer,
    resolve_pricing,
)

__all__ = ["ModelUsage", "UsageTracker", "track_usage"]

_UNKNOWN_MODEL = "unknown"
# Runs already counted, remembered for a while so that the same run reaching a tracker
# twice (directly as a callback and through an inner tracker) is counted once.
_RECENT_RUNS = 4096


@dataclass
class ModelUsage:
    """What the calls to one model (or to all of them) used.

    Attributes:
        requests: Calls answered by the model (answers from LangChain's cache excluded).
        input_tokens: Prompt tokens.
        output_tokens: Generated tokens (reasoning included).
        cached_tokens: Prompt tokens the server read from its prompt cache.
        reasoning_tokens: Generated tokens spent on reasoning.
        cost: USD summed over the priced calls; None if no call had a price.
        unpriced_requests: Calls without a cost (no price known, or no usage reported).
        cache_hits: Calls answered from LangChain's cache: no tokens, no cost.

    """

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cost: float | None = None
    unpriced_requests: int = 0
    cache_hits: int = 0

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens

    def add(self, other: ModelUsage) -> None:
        """Add another total into this one."""
        self.requests += other.requests
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cached_tokens += other.cached_tokens
        self.reasoning_tokens += other.reasoning_tokens
        if other.cost is not None:
            self.cost = other.cost + (self.cost or 0.0)
        self.unpriced_requests += other.unpriced_requests
        self.cache_hits += other.cache_hits


class UsageTracker(BaseCallbackHandler):
    """Callback handler that sums usage and cost per model (see the module docstring).

    Use it through `track_usage`, or pass it yourself:
    ``chain.invoke(x, config={"callbacks": [tracker]})``.

    Args:
        pricing: Optional prices for calls whose results carry no cost (other LangChain
            models, or ours without ``pricing``): anything the models' ``pricing`` field
            takes. A cost a result carries always wins.

    """

    # Cheap and thread-safe: no need for core to hop to an executor in async runs.
    run_inline = True

    def __init__(self, pricing: PricingSpec = None) -> None:
        super().__init__()
        self._pricing: Pricing | PricingTable | None = resolve_pricing(pricing)
        self._lock = threading.Lock()
        self._models: dict[str, ModelUsage] = {}
        self._pending: dict[UUID, str | None] = {}
        self._recent: OrderedDict[UUID, None] = OrderedDict()
        self._parent: UsageTracker | None = None

    # ---------------------------------------------------------------- results

    @property
    def by_model(self) -> dict[str, ModelUsage]:
        """Usage per model name (``ls_model_name``, else the answer's ``model_name``)."""
        with self._lock:
            return {name: replace(usage) for name, usage in self._models.items()}

    @property
    def total(self) -> ModelUsage:
        """Usage of all models together."""
        total = ModelUsage()
        for usage in self.by_model.values():
            total.add(usage)
        return total

    def reset(self) -> None:
        """Forget everything counted so far."""
        with self._lock:
            self._models.clear()

    def __str__(self) -> str:
        return format_table(self.by_model, self.total)

    def __repr__(self) -> str:
        total = self.total
        return (
            f"UsageTracker(requests={total.requests}, input_tokens={total.input_tokens}, "
            f"output_tokens={total.output_tokens}, cost={total.cost!r})"
        )

    # ---------------------------------------------------------------- callbacks

    @property
    def ignore_chain(self) -> bool:
        """Chains carry no usage of their own: skip their events."""
        return True

    @property
    def ignore_agent(self) -> bool:
        """Agents carry no usage of their own: skip their events."""
        return True

    @property
    def ignore_retriever(self) -> bool:
        """Retrievers carry no usage: skip their events."""
        return True

    def on_llm_start(
        self,
        serialized: dict[str, Any],
        prompts: list[str],
        *,
        run_id: UUID,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Remember the model name of a text LLM run."""
        self._start(run_id, _ls_model_name(metadata))

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Remember the model name of a chat model run."""
        self._start(run_id, _ls_model_name(metadata))

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        """Count one finished call."""
        self._end(run_id, response)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """Forget a failed call (its usage is unknown)."""
        self._error(run_id)

    # ---------------------------------------------------------------- internals

    def _start(self, run_id: UUID, name: str | None) -> None:
        with self._lock:
            self._pending[run_id] = name
        if self._parent is not None:
            self._parent._start(run_id, name)

    def _error(self, run_id: UUID) -> None:
        with self._lock:
            self._pending.pop(run_id, None)
        if self._parent is not None:
            self._parent._error(run_id)

    def _end(self, run_id: UUID, response: LLMResult) -> None:
        with self._lock:
            counted = run_id in self._recent
            name = self._pending.pop(run_id, None)
            if not counted:
                self._recent[run_id] = None
                if len(self._recent) > _RECENT_RUNS:
                    self._recent.popitem(last=False)
        if not counted:
            model, usage = _read_call(response, name)
            if usage.cost is None and usage.requests and self._pricing is not None:
                usage.cost = _price_tokens(self._pricing, usage, (name, model))
                usage.unpriced_requests = 0 if usage.cost is not None else 1
            with self._lock:
                self._models.setdefault(name or model, ModelUsage()).add(usage)
        if self._parent is not None:
            self._parent._end(run_id, response)


class _TrackUsage:
    """Context manager behind `track_usage` (sync ``with`` and ``async with``)."""

    def __init__(self, pricing: PricingSpec) -> None:
        self.tracker = UsageTracker(pricing)
        self._token: Token[UsageTracker | None] | None = None

    def __enter__(self) -> UsageTracker:
        if self._token is not None:
            raise RuntimeError("this track_usage() is already active; make a new one")
        self.tracker._parent = _current_tracker.get()
        self._token = _current_tracker.set(self.tracker)
        return self.tracker

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Always reset, also when the block raised: later calls must not count here.
        if self._token is not None:
            _current_tracker.reset(self._token)
            self._token = None
        self.tracker._parent = None

    async def __aenter__(self) -> UsageTracker:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


def track_usage(pricing: PricingSpec = None) -> _TrackUsage:
    """Count every LangChain model call made inside a ``with`` / ``async with`` block.

    Args:
        pricing: Optional prices for calls whose results carry no cost (see `UsageTracker`).

    Returns:
        A context manager; entering it gives the `UsageTracker` (``print`` it for a table).

    Example:
        .. code-block:: python

            with track_usage() as usage:
                chain.invoke({"q": "What is the capital of France?"})
            print(usage)

    """
    return _TrackUsage(pricing)


# One variable for all trackers: the innermost is injected, and forwards to the outer ones.
_current_tracker: ContextVar[UsageTracker | None] = ContextVar(
    "langchain_customllm_usage_tracker", default=None
)
register_configure_hook(_current_tracker, inheritable=True)


# -------------------------------------------------------------------- reading results


def _ls_model_name(metadata: Mapping[str, Any] | None) -> str | None:
    name = (metadata or {}).get("ls_model_name")
    return name if isinstance(name, str) and name else None


def _read_call(response: LLMResult, name: str | None) -> tuple[str, ModelUsage]:
    """One call's usage: (model name from the answer, usage as a one-request total)."""
    usage = ModelUsage(requests=1)
    model = name
    first = [gens[0] for gens in response.generations if gens]
    found = False
    for gen in first:
        if isinstance(gen, ChatGeneration):
            model = model or _str(gen.message.response_metadata.get("model_name"))
            found = _read_chat(gen, usage) or found
        else:
            model = model or _str((gen.generation_info or {}).get("model_name"))
            found = _read_text(gen, usage) or found
    if not found:
        # Other text LLMs report only llm_output["token_usage"] (core keeps it on the
        # first run of a batch and empties it on the others, so it is counted once).
        llm_output = response.llm_output or {}
        found = _read_token_usage(llm_output.get("token_usage"), usage)
        model = model or _str(llm_output.get("model_name"))
    if usage.cache_hits:
        usage.requests = 0
    elif usage.cost is None:
        usage.unpriced_requests = 1
    return model or _UNKNOWN_MODEL, usage


def _read_chat(gen: ChatGeneration, usage: ModelUsage) -> bool:
    meta = getattr(gen.message, "usage_metadata", None)
    if not isinstance(meta, Mapping):
        # An answer priced without tokens (images at a per-image price) has only this.
        cost = gen.message.response_metadata.get("cost")
        if not isinstance(cost, Mapping):
            return False
        _add_cost(usage, _cost_of(cost))
        return True
    if _served_from_cache(meta):
        usage.cache_hits = 1
        return True
    usage.input_tokens += _int(meta.get("input_tokens"))
    usage.output_tokens += _int(meta.get("output_tokens"))
    usage.cached_tokens += _int((meta.get("input_token_details") or {}).get("cache_read"))
    usage.reasoning_tokens += _int((meta.get("output_token_details") or {}).get("reasoning"))
    _add_cost(usage, _cost_of(meta))
    return True


def _read_text(gen: Generation, usage: ModelUsage) -> bool:
    info = gen.generation_info or {}
    if not _read_token_usage(info.get("token_usage"), usage):
        return False
    cost = info.get("cost")
    _add_cost(usage, _cost_of(cost) if isinstance(cost, Mapping) else None)
    return True


def _read_token_usage(token_usage: Any, usage: ModelUsage) -> bool:
    if not isinstance(token_usage, Mapping) or not token_usage:
        return False
    usage.input_tokens += _int(token_usage.get("prompt_tokens"))
    usage.output_tokens += _int(token_usage.get("completion_tokens"))
    usage.cached_tokens += _int(
        (token_usage.get("prompt_tokens_details") or {}).get("cached_tokens")
    )
    usage.reasoning_tokens += _int(
        (token_usage.get("completion_tokens_details") or {}).get("reasoning_tokens")
    )
    return True


def _served_from_cache(meta: Mapping[str, Any]) -> bool:
    # langchain-core marks a chat cache hit by setting usage_metadata["total_cost"] to the
    # int 0 (BaseChatModel._convert_cached_generations) and keeps the original token
    # counts; costs we compute are always floats, so an int 0 is core's mark. Text LLM
    # cache hits fire no callbacks at all.
    total = meta.get("total_cost")
    return type(total) is int and total == 0


def _cost_of(meta: Mapping[str, Any]) -> float | None:
    total = _number(meta.get("total_cost"))
    if total is not None:
        return total
    parts = [_number(meta.get("input_cost")), _number(meta.get("output_cost"))]
    known = [p for p in parts if p is not None]
    return sum(known) if known else None


def _add_cost(usage: ModelUsage, cost: float | None) -> None:
    if cost is not None:
        usage.cost = cost + (usage.cost or 0.0)


def _price_tokens(
    pricing: Pricing | PricingTable, usage: ModelUsage, names: Sequence[str | None]
) -> float | None:
    tokens = TokenUsage(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        total_tokens=usage.total_tokens,
        cache_read=usage.cached_tokens,
        reasoning=usage.reasoning_tokens,
    )
    cost = price_answer(pricing, tokens, names)
    return None if cost is None else cost.total_cost


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
