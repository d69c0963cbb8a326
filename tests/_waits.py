"""Retries without waiting: a model's client records the delays it would have slept."""

from __future__ import annotations

from typing import Any, TypeVar

__all__ = ["no_waits"]

_M = TypeVar("_M")


def no_waits(model: _M, delays: list[float] | None = None) -> _M:
    """``model``, its client's retry sleeps (sync and async) replaced by a record.

    Args:
        model: One of the package's models (its runtime is built here).
        delays: Where each delay is appended; None forgets them.
    """
    record: list[float] = [] if delays is None else delays
    client: Any = model._runtime().client  # type: ignore[attr-defined]
    client.sleep = record.append

    async def asleep(seconds: float) -> None:
        record.append(seconds)

    client.asleep = asleep
    return model
