"""Prices for models no public price table knows, and the cost of one answer. Pure.

A `Pricing` is one model's price in USD: per million input, cached-input, output and
reasoning tokens, plus a fixed amount per request and, for image models, per image. A
`PricingTable` names the prices of several models and finds one by model name::

    # prices.yaml: USD per million tokens
    models:
      smollm2: {input: 0.02, output: 0.04}
      gpt-4o: {input: 2.50, output: 10.00, cached_input: 1.25}
      "llama-3.1-*": {input: 0.10, output: 0.10, per_request: 0.0001}

`cost_for` turns token usage and a price into a `Cost`. The models call `price_answer` on
each answer's final piece: when no price is known (no table entry matches, or the server
reported no usage), the cost is absent, never zero, and one debug line says why.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from langchain_customllm._exceptions import ConfigurationError
from langchain_customllm._text import validation_problems
from langchain_customllm.formats.base import TokenUsage

__all__ = [
    "Cost",
    "Pricing",
    "PricingSpec",
    "PricingTable",
    "cost_for",
    "price_answer",
    "resolve_pricing",
    "sum_costs",
]

logger = logging.getLogger(__name__)

_PER_MILLION = 1_000_000
# Dated snapshots (gpt-4o-2024-08-06, claude-3-5-sonnet-20241022) are priced as the model.
_DATE_SUFFIX = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8})$")
_GLOB_CHARS = frozenset("*?[")


class Pricing(BaseModel):
    """One model's price in USD.

    Attributes:
        input: USD per million input (prompt) tokens.
        output: USD per million output tokens.
        cached_input: USD per million input tokens served from the server's prompt cache;
            None: the ``input`` price.
        reasoning: USD per million reasoning tokens (part of the output); None: the
            ``output`` price.
        per_request: USD added once per request (gateways, hosted endpoints).
        per_image: USD per generated image, for image models priced by the picture
            (DALL-E 3: 0.04 at 1024x1024); 0 for those priced by tokens (gpt-image-1).

    Example:
        .. code-block:: python

            Pricing(input=0.15, output=0.60, cached_input=0.075)

    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    input: float = Field(ge=0, allow_inf_nan=False)
    output: float = Field(ge=0, allow_inf_nan=False)
    cached_input: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    reasoning: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    per_request: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    per_image: float = Field(default=0.0, ge=0, allow_inf_nan=False)

    @property
    def cached_input_price(self) -> float:
        """USD per million cached input tokens, with the default applied."""
        return self.input if self.cached_input is None else self.cached_input

    @property
    def reasoning_price(self) -> float:
        """USD per million reasoning tokens, with the default applied."""
        return self.output if self.reasoning is None else self.reasoning


@dataclass(frozen=True)
class Cost:
    """What one answer cost, in USD.

    Attributes:
        input_cost: Input tokens, the cached part at the cached-input price.
        output_cost: Output tokens, the reasoning part at the reasoning price.
        request_cost: The fixed per-request amount.
        total_cost: The sum of them all.
        image_cost: The images at the per-image price; None for answers that are not
            images (chat, text, embeddings).

    """

    input_cost: float
    output_cost: float
    request_cost: float
    total_cost: float
    image_cost: float | None = None

    def as_dict(self) -> dict[str, float]:
        """The amounts as a plain dict (``response_metadata["cost"]``).

        ``image_cost`` is there for image answers only.
        """
        # Spelled out: dataclasses.asdict deep-copies, ten times slower on this hot path.
        amounts = {
            "input_cost": self.input_cost,
            "output_cost": self.output_cost,
            "request_cost": self.request_cost,
            "total_cost": self.total_cost,
        }
        if self.image_cost is not None:
            amounts["image_cost"] = self.image_cost
        return amounts


def cost_for(usage: TokenUsage, pricing: Pricing, *, images: int | None = None) -> Cost:
    """Price one answer's token usage (and its images, for an image answer).

    Cached and reasoning counts are parts of the input and output counts; a server that
    reports more of them than the whole is clamped to the whole rather than billed twice.

    Args:
        usage: Token counts of one answer.
        pricing: The model's price.
        images: How many images the answer has; None for answers that are not images.

    Returns:
        The answer's cost in USD.

    """
    # Plain comparisons rather than min()/max(): this runs on every priced answer.
    input_tokens = usage.input_tokens if usage.input_tokens > 0 else 0
    output_tokens = usage.output_tokens if usage.output_tokens > 0 else 0
    cached = usage.cache_read or 0
    cached = input_tokens if cached > input_tokens else cached if cached > 0 else 0
    reasoning = usage.reasoning or 0
    reasoning = output_tokens if reasoning > output_tokens else reasoning if reasoning > 0 else 0
    cached_price = pricing.input if pricing.cached_input is None else pricing.cached_input
    reasoning_price = pricing.output if pricing.reasoning is None else pricing.reasoning
    input_cost = ((input_tokens - cached) * pricing.input + cached * cached_price) / _PER_MILLION
    output_cost = (
        (output_tokens - reasoning) * pricing.output + reasoning * reasoning_price
    ) / _PER_MILLION
    request_cost = pricing.per_request
    image_cost = None if images is None else images * pricing.per_image
    return Cost(
        input_cost=input_cost,
        output_cost=output_cost,
        request_cost=request_cost,
        total_cost=input_cost + output_cost + request_cost + (image_cost or 0.0),
        image_cost=image_cost,
    )


class PricingTable:
    """Prices of several models, found by model name.

    Names are matched without regard to case, in this order:

    1. the exact name;
    2. the name without a date suffix (``-2024-08-06`` or ``-20240806``), so a dated
       snapshot the server reports is priced as the undated entry;
    3. glob patterns (``llama-3.1-*``, ``*/qwen2.5-*``, ``*``), the most specific first
       (most literal characters; on a tie, the first in the table), against both names.

    Args:
        entries: Model name or glob pattern -> `Pricing` (or a mapping of its fields).

    Raises:
        ConfigurationError: If an entry is not a valid price.

    """

    def __init__(self, entries: Mapping[str, Pricing | Mapping[str, Any]]) -> None:
        self._entries = _validate_entries(entries, where="pricing table")
        self._exact: dict[str, Pricing] = {}
        patterns: list[tuple[str, Pricing]] = []
        for name, pricing in self._entries.items():
            key = name.strip().lower()
            if _GLOB_CHARS.isdisjoint(key):
                self._exact.setdefault(key, pricing)
            else:
                patterns.append((key, pricing))
        # sorted() is stable: equally specific patterns keep their order in the table.
        self._patterns = sorted(patterns, key=lambda item: -_literal_length(item[0]))
        self._found: dict[str, Pricing | None] = {}

    @classmethod
    def load(cls, source: str | os.PathLike[str] | Mapping[str, Any]) -> PricingTable:
        """Read a table from a YAML or JSON file (``.json``: JSON; else YAML) or a mapping.

        The prices sit under a top-level ``models:`` key, or are the whole mapping.

        Args:
            source: A file path, or a mapping as the file would hold it.

        Returns:
            The table.

        Raises:
            ConfigurationError: If the file cannot be read or parsed, or an entry is not a
                valid price; the message names the file and the entry.

        """
        if isinstance(source, Mapping):
            return cls(_validate_entries(_table_entries(source, "pricing table"), "pricing table"))
        path = Path(source)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigurationError(f"Cannot read pricing table {path}: {exc}") from None
        kind = "JSON" if path.suffix.lower() == ".json" else "YAML"
        import yaml  # only for files: PyYAML costs ~30 ms to import

        try:
            data = json.loads(text) if kind == "JSON" else yaml.safe_load(text)
        except (ValueError, yaml.YAMLError) as exc:
            raise ConfigurationError(f"{path} is not valid {kind}: {exc}") from None
        if not isinstance(data, Mapping):
            raise ConfigurationError(
                f"{path}: expected a mapping of model names to prices, got {type(data).__name__}"
            )
        return cls(_validate_entries(_table_entries(data, str(path)), str(path)))

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """The table as the plain mapping that builds it again (``dumps`` writes this)."""
        return {name: price.model_dump() for name, price in self._entries.items()}

    def find(self, model: str) -> Pricing | None:
        """The price for a model name, or None if no entry matches (see the class doc)."""
        key = model.strip().lower()
        if key in self._found:
            return self._found[key]
        names = [key]
        undated = _DATE_SUFFIX.sub("", key)
        if undated != key:
            names.append(undated)
        found = next((self._exact[n] for n in names if n in self._exact), None)
        if found is None:
            found = next(
                (
                    pricing
                    for pattern, pricing in self._patterns
                    if any(fnmatch.fnmatchcase(n, pattern) for n in names)
                ),
                None,
            )
        # Memoized per name: answers are priced on the hot path; a dict store is atomic.
        self._found[key] = found
        return found

    @property
    def entries(self) -> Mapping[str, Pricing]:
        """The entries as given (name or pattern -> price)."""
        return dict(self._entries)

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, model: object) -> bool:
        return isinstance(model, str) and self.find(model) is not None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PricingTable) and self._entries == other._entries

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"PricingTable({self._entries!r})"


PricingSpec: TypeAlias = (
    "Pricing | PricingTable | Mapping[str, Any] | str | os.PathLike[str] | None"
)
"""What the ``pricing`` field accepts (see `resolve_pricing`)."""

_PRICING_FIELDS = frozenset(Pricing.model_fields)


def sum_costs(costs: Sequence[Mapping[str, float] | None]) -> dict[str, float] | None:
    """Add ``Cost.as_dict()`` amounts; None if any is missing (a partial sum would mislead).

    Args:
        costs: One cost dict (or None) per answer.

    Returns:
        The amounts summed key by key, or None.

    """
    if not costs or any(c is None for c in costs):
        return None
    total: dict[str, float] = {}
    for cost in costs:
        for key, value in (cost or {}).items():
            total[key] = total.get(key, 0.0) + value
    return total


def resolve_pricing(value: Any) -> Pricing | PricingTable | None:
    """Turn a ``pricing`` setting into a `Pricing` or a `PricingTable` (once, at build time).

    Args:
        value: None; a `Pricing` or `PricingTable`; a path to a table file; or a mapping:
            one price when all its keys are `Pricing` fields (``{"input": 0.1,
            "output": 0.2}``), else a table (``{"models": {...}}`` or ``{name: price}``).

    Returns:
        The resolved price source, or None for no pricing.

    Raises:
        ConfigurationError: If the value is not a valid price or table.

    """
    if value is None or isinstance(value, (Pricing, PricingTable)):
        return value
    if isinstance(value, (str, os.PathLike)):
        return PricingTable.load(value)
    if isinstance(value, Mapping):
        if value and set(value) <= _PRICING_FIELDS:
            return _validate_pricing(value, "pricing")
        return PricingTable.load(value)
    raise ConfigurationError(
        "pricing must be a Pricing, a PricingTable, a mapping or a path to a table file, "
        f"got {type(value).__name__}"
    )


def price_answer(
    source: Pricing | PricingTable | None,
    usage: TokenUsage | None,
    models: Sequence[str | None],
    *,
    images: int | None = None,
) -> Cost | None:
    """The cost of one answer, or None (with one debug line per model and reason) if unknown.

    Args:
        source: The model's resolved pricing; None: no pricing configured (no log).
        usage: The answer's token usage, if the server reported any.
        models: Names to look the price up by, in order: the server's model name first
            (it may be a dated snapshot), then the requested one.
        images: How many images an image answer has (None otherwise): a price without
            token prices needs no usage to price them.

    Returns:
        The cost, or None when no price matches or there is no usage to price.

    """
    if source is None:
        return None
    if usage is not None and isinstance(source, Pricing):
        return cost_for(usage, source, images=images)
    names = list(dict.fromkeys(m for m in models if m))
    label = names[0] if names else "<unnamed>"
    found = source if isinstance(source, Pricing) else _find_any(source, names)
    if found is None:
        _explain_once(label, f"no entry of the pricing table matches {names}")
        return None
    if usage is None:
        if images is None or any((found.input, found.output, found.cached_input, found.reasoning)):
            _explain_once(label, "the server reported no token usage (nothing is estimated)")
            return None
        usage = TokenUsage(0, 0, 0)  # priced by the image alone: no tokens to count
    return cost_for(usage, found, images=images)


# ------------------------------------------------------------------ helpers

_explained: set[tuple[str, str]] = set()
_explained_lock = threading.Lock()


def _explain_once(model: str, reason: str) -> None:
    # One line per model and reason for the process: a missing price is a configuration
    # fact, not news on every call.
    with _explained_lock:
        if (model, reason) in _explained:
            return
        _explained.add((model, reason))
    logger.debug("No cost for model %r: %s; the cost is left absent, not zero.", model, reason)


def _find_any(table: PricingTable, names: Sequence[str]) -> Pricing | None:
    return next((p for p in map(table.find, names) if p is not None), None)


def _literal_length(pattern: str) -> int:
    return len(re.sub(r"\[[^\]]*\]|[*?]", "", pattern))


def _table_entries(data: Mapping[str, Any], where: str) -> dict[str, Any]:
    models = data.get("models")
    if isinstance(models, Mapping) and set(data) == {"models"}:
        data = models
    entries: dict[str, Any] = {}
    for name, value in data.items():
        if not isinstance(name, str) or not name.strip():
            raise ConfigurationError(f"{where}: model names must be non-empty strings: {name!r}")
        entries[name] = value
    return entries


def _validate_entries(
    entries: Mapping[str, Pricing | Mapping[str, Any]], where: str
) -> dict[str, Pricing]:
    if not isinstance(entries, Mapping):
        raise ConfigurationError(f"{where}: expected a mapping of model names to prices")
    return {
        name: _validate_pricing(value, f"{where}, entry {name!r}")
        for name, value in entries.items()
    }


def _validate_pricing(value: Any, where: str) -> Pricing:
    if isinstance(value, Pricing):
        return value
    if not isinstance(value, Mapping):
        raise ConfigurationError(
            f"{where}: expected a mapping like {{input: 0.15, output: 0.6}} "
            f"(USD per million tokens), got {value!r}"
        )
    try:
        return Pricing.model_validate(dict(value))
    except ValidationError as exc:
        problems = validation_problems(exc, "value", known=Pricing.model_fields)
        raise ConfigurationError(f"{where}: {problems}") from None
