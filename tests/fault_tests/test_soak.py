"""A bounded soak: a few thousand calls with random faults, concurrently; nothing else raised.

Each call draws (seeded RNG) a method (invoke / ainvoke / stream / astream), a model (chat,
text; OpenAI and Ollama wire formats) and a *plan*: what the server does on each attempt
(answer, 503, 429, reset, cut, error event, no end marker, 400, hang). The plan rides in the
prompt, so the server can carry it out whatever order concurrent requests arrive in, and the
test can predict each call's outcome from the retry policy:

- every call ends with exactly the predicted outcome: the full expected text, or a typed
  `CustomLLMError` (both are counted; anything else is a failure);
- the whole run stays under a minute;
- memory does not grow: tracemalloc starts after a warm-up batch (pools, caches and lazy
  imports are in place by then), and what the rest of the run allocated and still holds at
  its end -- after garbage collection -- stays within a small tolerance.

Sync calls run on a thread pool and async calls on one event loop, at the same time.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import random
import threading
import time
import tracemalloc
from collections import Counter
from dataclasses import dataclass
from typing import Any

from langchain_customllm import CustomLLMError
from tests._calls import text_of
from tests.fault_tests._helpers import MODEL_CLASSES, build_model
from tests.servers.faulty import (
    DIALECTS,
    Action,
    Behaviour,
    Dialect,
    FaultyServer,
    Request,
    cut_body,
    hang,
    json_answer,
    reset_before_answer,
    status_error,
    stream,
    truncated_json,
)

SEED = 20240611
WARMUP = 400
REST = 1000
SYNC_WORKERS = 3
ASYNC_CONCURRENCY = 6
TIME_LIMIT_S = 60.0
MEMORY_TOLERANCE = 1024 * 1024  # bytes still held at the end that the traced part allocated
# Generous for loopback, so a busy machine cannot turn a scheduling stall into a timeout the
# plan did not ask for; a planned hang costs 3 x this.
TIMEOUT_S = 1.0

# Failure codes, with how often a plan step uses each. "hang" costs a timeout: keep it rare.
FAULT_WEIGHTS = {
    "503": 10,
    "429": 8,
    "rst": 6,
    "cut": 8,
    "evt": 6,
    "noend": 6,
    "400": 4,
    "hang": 1,
}
TARGETS = [("openai", True), ("openai", False), ("ollama", True)]
METHODS = ("invoke", "ainvoke", "stream", "astream")


def expected_text(call_id: int) -> str:
    return f"answer {call_id}: " + "lorem ipsum é " * (call_id % 5 + 1)


def pieces_of(text: str) -> list[str]:
    return [text[i : i + 7] for i in range(0, len(text), 7)]


def retryable(code: str, streamed: bool) -> bool:
    """Whether the policy retries this failure (a stream cut after it began is not)."""
    if code in ("503", "429", "rst", "hang"):
        return True
    return code == "cut" and not streamed


def predict(plan: list[str], streamed: bool, max_retries: int = 2) -> bool:
    """True if the call must succeed with the full text, False if it must fail typed."""
    for attempt in range(max_retries + 1):
        code = plan[min(attempt, len(plan) - 1)]
        if code == "ok":
            return True
        if not retryable(code, streamed):
            return False
    return False


class PlanResponder:
    """The server's default behaviour: read the plan from the prompt, run this attempt's step."""

    def __init__(self) -> None:
        self._attempts: dict[int, int] = {}
        self._lock = threading.Lock()
        self._dialects = {d.path: d for d in DIALECTS.values() if d.family != "custom"}

    def forget(self, call_id: int) -> None:
        with self._lock:
            self._attempts.pop(call_id, None)

    def __call__(self, request: Request) -> list[Action]:
        dialect = self._dialects[request.path]
        _, call_id_text, plan_text = dialect.prompt_of(request).split(" ", 2)
        call_id, plan = int(call_id_text), plan_text.split(",")
        with self._lock:
            attempt = self._attempts.get(call_id, 0)
            self._attempts[call_id] = attempt + 1
        code = plan[min(attempt, len(plan) - 1)]
        behaviour = self._behaviour(dialect, code, call_id, dialect.is_stream(request))
        return list(behaviour(request))

    @staticmethod
    def _behaviour(d: Dialect, code: str, call_id: int, streamed: bool) -> Behaviour:
        text = expected_text(call_id)
        pieces = pieces_of(text)
        ctype = d.content_type
        simple: dict[str, Behaviour] = {
            "503": status_error(503, body=d.error_body("busy", 503)),
            "429": status_error(429, body=d.error_body("slow down", 429), retry_after_ms=5),
            "400": status_error(400, body=d.error_body("bad request", 400)),
            "rst": reset_before_answer(),
            "hang": hang(),
        }
        if code in simple:
            return simple[code]
        if not streamed:
            whole = {
                "ok": json_answer(d.whole(text)),
                "cut": cut_body(d.whole(text)),
                "evt": json_answer(d.error_body("model crashed")),
                "noend": truncated_json(d.whole(text)),
            }
            return whole[code]
        head = d.piece_events(pieces[:2])
        streams = {
            "ok": stream(d.full_stream(pieces), content_type=ctype),
            "cut": stream(head, end="close", content_type=ctype),
            "evt": stream([*head, d.error_event("model crashed")], content_type=ctype),
            "noend": stream(d.piece_events(pieces), content_type=ctype),
        }
        return streams[code]


@dataclass(frozen=True)
class Call:
    call_id: int
    method: str
    target: tuple[str, bool]
    plan: tuple[str, ...]

    @property
    def streamed(self) -> bool:
        return self.method in ("stream", "astream")

    @property
    def prompt(self) -> str:
        return f"soak {self.call_id} {','.join(self.plan)}"


def draw_calls(rng: random.Random, start: int, count: int) -> list[Call]:
    codes, weights = zip(*FAULT_WEIGHTS.items(), strict=True)
    calls = []
    for call_id in range(start, start + count):
        if rng.random() < 0.45:
            plan: tuple[str, ...] = ("ok",)
        else:
            steps = list(rng.choices(codes, weights, k=rng.randint(1, 3)))
            if rng.random() < 0.6:
                steps.append("ok")
            plan = tuple(steps)
        calls.append(Call(call_id, rng.choice(METHODS), rng.choice(TARGETS), plan))
    return calls


class Soak:
    """Runs batches of calls against one server with a shared set of models."""

    def __init__(self, server: FaultyServer, responder: PlanResponder) -> None:
        self.server = server
        self.responder = responder
        self.models: dict[tuple[str, bool], Any] = {}
        for family, chat in TARGETS:
            model = build_model(
                MODEL_CLASSES["chat" if chat else "text"],
                DIALECTS[(family, chat)],
                server.url,
                timeout=TIMEOUT_S,
                stream_chunk_timeout=TIMEOUT_S,
            )
            client = model._runtime().client
            client.sleep = _no_sleep
            client.asleep = _no_asleep
            self.models[(family, chat)] = model
        self.counts: Counter[str] = Counter()
        self.failures: list[str] = []
        self._lock = threading.Lock()

    def _record(self, call: Call, text: str | None, error: BaseException | None) -> None:
        self.responder.forget(call.call_id)
        must_succeed = predict(list(call.plan), call.streamed)
        with self._lock:
            if error is None and text == expected_text(call.call_id):
                self.counts["ok"] += 1
                if not must_succeed:
                    self.failures.append(f"{call}: succeeded, but the plan must fail")
            elif error is None:
                self.failures.append(f"{call}: wrong text {text!r}")
            elif isinstance(error, CustomLLMError):
                self.counts["typed_error"] += 1
                self.counts[type(error).__name__] += 1
                if must_succeed:
                    self.failures.append(f"{call}: {type(error).__name__}: {error}")
            else:
                self.failures.append(f"{call}: untyped {type(error).__name__}: {error!r}")

    def _sync_call(self, call: Call) -> None:
        model = self.models[call.target]
        try:
            if call.method == "invoke":
                text = text_of(model.invoke(call.prompt))
            else:
                text = "".join(text_of(c) for c in model.stream(call.prompt))
        except Exception as exc:
            self._record(call, None, exc)
        else:
            self._record(call, text, None)

    async def _async_call(self, call: Call, gate: asyncio.Semaphore) -> None:
        model = self.models[call.target]
        async with gate:
            try:
                if call.method == "ainvoke":
                    coro: Any = model.ainvoke(call.prompt)
                    text = text_of(await asyncio.wait_for(coro, 10))
                else:

                    async def collect() -> str:
                        return "".join([text_of(c) async for c in model.astream(call.prompt)])

                    text = await asyncio.wait_for(collect(), 10)
            except Exception as exc:
                self._record(call, None, exc)
            else:
                self._record(call, text, None)

    def run(self, calls: list[Call], loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        sync_calls = [c for c in calls if c.method in ("invoke", "stream")]
        async_calls = [c for c in calls if c.method in ("ainvoke", "astream")]

        async def run_async() -> None:
            gate = asyncio.Semaphore(ASYNC_CONCURRENCY)
            await asyncio.gather(*(self._async_call(c, gate) for c in async_calls))

        async_future = asyncio.run_coroutine_threadsafe(run_async(), loop)
        with concurrent.futures.ThreadPoolExecutor(SYNC_WORKERS) as pool:
            futures = [pool.submit(self._sync_call, c) for c in sync_calls]
            done, not_done = concurrent.futures.wait(
                futures, timeout=max(deadline - time.monotonic(), 1)
            )
            assert not not_done, f"{len(not_done)} sync calls still running: a hang"
            for future in done:
                future.result()  # a bug in the harness itself must surface
        async_future.result(timeout=max(deadline - time.monotonic(), 1))

    async def aclose(self) -> None:
        for model in self.models.values():
            await model.aclose()

    def close(self) -> None:
        for model in self.models.values():
            model.close()


def _no_sleep(seconds: float) -> None:
    return None


async def _no_asleep(seconds: float) -> None:
    return None


def traced_now() -> int:
    gc.collect()
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def test_soak_random_faults() -> None:
    rng = random.Random(SEED)
    responder = PlanResponder()
    loop = asyncio.new_event_loop()
    loop_thread = threading.Thread(target=loop.run_forever, daemon=True)
    loop_thread.start()
    started = time.monotonic()
    deadline = started + TIME_LIMIT_S
    was_tracing = tracemalloc.is_tracing()
    with FaultyServer(record=False, default=responder) as server:
        soak = Soak(server, responder)
        try:
            soak.run(draw_calls(rng, 0, WARMUP), loop, deadline)
            gc.collect()
            tracemalloc.start()
            after_warmup = traced_now()
            soak.run(draw_calls(rng, WARMUP, REST), loop, deadline)
            after_rest = traced_now()
            growth = after_rest - after_warmup
            top = tracemalloc.take_snapshot().statistics("lineno")[:8]
        finally:
            if not was_tracing:
                tracemalloc.stop()
            asyncio.run_coroutine_threadsafe(soak.aclose(), loop).result(10)
            soak.close()
            loop.call_soon_threadsafe(loop.stop)
            loop_thread.join(5)
            loop.close()
        elapsed = time.monotonic() - started
        attempts = server.attempts
        handler_errors = list(server.handler_errors)

    total = WARMUP + REST
    print(
        f"\nsoak: {total} calls, {attempts} requests in {elapsed:.1f} s; outcomes "
        f"{dict(soak.counts)}; memory allocated after warm-up and still held at the end: "
        f"{growth / 1e6:.3f} MB"
    )
    assert not soak.failures, f"{len(soak.failures)} bad outcomes, e.g. {soak.failures[:5]}"
    assert soak.counts["ok"] + soak.counts["typed_error"] == total
    assert soak.counts["ok"] > total // 3
    assert soak.counts["typed_error"] > total // 10
    assert not handler_errors, handler_errors
    assert elapsed < TIME_LIMIT_S, f"the soak took {elapsed:.1f} s"
    assert growth < MEMORY_TOLERANCE, (
        f"{growth / 1e6:.2f} MB allocated during {REST} calls after warm-up are still held; "
        "largest holders:\n" + "\n".join(str(stat) for stat in top)
    )
