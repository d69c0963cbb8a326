"""Shared pieces of the fault suite: models wired to record retries, calls under a watchdog."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from langchain_customllm import ChatCustomLLM, CustomLLM
from tests._calls import PATHS, text_of
from tests._calls import call as call_path
from tests.servers.faulty import Dialect

KEY = "sk-fault-suite-7f3a9c1e5b2d46802c"
PROMPT = "What is the capital of France?"
PIECES = ["Paris", " is the", " capital of France.", " ✓ café"]
TEXT = "".join(PIECES)
PARTIAL = "".join(PIECES[:2])  # what the scripted faults let through before they strike

METHODS = PATHS
MODEL_CLASSES: dict[str, type[ChatCustomLLM] | type[CustomLLM]] = {
    "chat": ChatCustomLLM,
    "text": CustomLLM,
}

HAS_CHUNK_TIMEOUT = all("stream_chunk_timeout" in c.model_fields for c in MODEL_CLASSES.values())
needs_chunk_timeout = pytest.mark.xfail(
    not HAS_CHUNK_TIMEOUT, strict=True, reason="stream_chunk_timeout not implemented yet"
)

WATCHDOG_S = 10.0


@dataclass
class Recorder:
    """Retry delays the client asked to sleep, recorded instead of slept."""

    delays: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.delays.append(seconds)

    async def asleep(self, seconds: float) -> None:
        self.delays.append(seconds)


def build_model(
    cls: type[ChatCustomLLM] | type[CustomLLM],
    dialect: Dialect,
    root: str,
    recorder: Recorder | None = None,
    **overrides: Any,
) -> Any:
    """A model pointed at ``root`` with short timeouts; retries record instead of sleeping."""
    kwargs: dict[str, Any] = {
        "model": "m",
        "base_url": dialect.base_url(root),
        "api_key": KEY,
        "wire_format": dialect.wire_format,
        "timeout": 0.5,
        # The scripted server answers requests in order: no detection GET before them
        # (detection's own failures are covered by tests/unit_tests/test_detect.py).
        "server_profile": "generic",
    }
    if HAS_CHUNK_TIMEOUT:
        kwargs["stream_chunk_timeout"] = 0.5
    kwargs.update(overrides)
    if not HAS_CHUNK_TIMEOUT and kwargs.get("stream_chunk_timeout") is None:
        kwargs.pop("stream_chunk_timeout", None)
    model = cls(**kwargs)
    if recorder is not None:
        client = model._runtime().client
        client.sleep = recorder.sleep
        client.asleep = recorder.asleep
    return model


@dataclass
class Outcome:
    """How a call ended: its text, or the exception; chunks the caller saw; time taken."""

    text: str | None = None
    error: BaseException | None = None
    seen: list[Any] = field(default_factory=list)
    elapsed: float = 0.0


def _run_method(model: Any, method: str, prompt: str, seen: list[Any]) -> str:
    # The async client is closed inside the call's own loop: it is bound to that loop.
    return text_of(call_path(model, method, prompt, seen=seen, aclose=model.aclose))


def within_watchdog(fn: Callable[[], Any], limit: float = WATCHDOG_S) -> Any:
    """Run ``fn`` in a thread; fail the test if it is still running after ``limit`` s."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed back to the test thread
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(limit)
    if thread.is_alive():
        pytest.fail(f"the call hung: still running after {limit} s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def call(model: Any, method: str, prompt: str = PROMPT, limit: float = WATCHDOG_S) -> Outcome:
    """Run one of invoke/ainvoke/stream/astream under the watchdog; never raises the
    call's own exception (it is returned in the outcome)."""
    outcome = Outcome()
    start = time.monotonic()

    def run() -> None:
        try:
            outcome.text = _run_method(model, method, prompt, outcome.seen)
        except Exception as exc:
            outcome.error = exc

    try:
        within_watchdog(run, limit)
    finally:
        outcome.elapsed = time.monotonic() - start
        model.close()
    return outcome
