"""``GET /metrics``: Prometheus' text exposition format, written here (no client library).

Per model and endpoint: requests by status, errors by OpenAI error type, prompt and
completion tokens, cost in USD, and a latency histogram (the whole request: for a stream,
until its last event). Each worker process counts its own requests in memory; with
``--workers N`` (one port, the kernel picks the worker per connection) each also keeps a
snapshot of its counts in a directory the workers share (`WorkerFiles`, written at most
once a second and at exit), and ``/metrics`` answers the sum over every worker's snapshot,
so any scrape sees the whole gateway and counters never go back (a worker that died or was
restarted keeps its file).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import os
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["LATENCY_BUCKETS", "Metrics", "WorkerFiles"]

# Seconds; from a cache-hit answer to a long generation.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def _label(value: str) -> str:
    # The exposition format escapes backslash, double quote and line feed in label values.
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


@dataclass
class _Histogram:
    buckets: list[int] = field(default_factory=lambda: [0] * len(LATENCY_BUCKETS))
    count: int = 0
    total: float = 0.0

    def observe(self, seconds: float) -> None:
        index = bisect.bisect_left(LATENCY_BUCKETS, seconds)
        if index < len(self.buckets):
            self.buckets[index] += 1
        self.count += 1
        self.total += seconds


class Metrics:
    """The gateway's counters (one process; asyncio code only, so no locks)."""

    def __init__(self) -> None:
        self.requests: defaultdict[tuple[str, str, str], int] = defaultdict(int)
        self.errors: defaultdict[tuple[str, str, str], int] = defaultdict(int)
        self.tokens: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.cost: defaultdict[str, float] = defaultdict(float)
        self.latency: defaultdict[tuple[str, str], _Histogram] = defaultdict(_Histogram)
        self.version = 0
        """How many requests were counted (a writer compares it with what it last wrote)."""

    def observe(
        self,
        *,
        model: str,
        route: str,
        status: int,
        seconds: float,
        error_type: str | None = None,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        cost: float | None = None,
    ) -> None:
        """Count one finished request.

        Args:
            model: The model's name (``""`` when the request named none we know).
            route: The endpoint path.
            status: The HTTP status answered (200 for a stream that later failed).
            seconds: How long the whole request took.
            error_type: The OpenAI error type, if the request failed (also mid-stream).
            prompt_tokens: Input tokens used.
            completion_tokens: Output tokens used.
            cost: USD, where the model is priced.
        """
        self.requests[(model, route, str(status))] += 1
        if error_type is not None:
            self.errors[(model, route, error_type)] += 1
        if prompt_tokens:
            self.tokens[(model, "prompt")] += prompt_tokens
        if completion_tokens:
            self.tokens[(model, "completion")] += completion_tokens
        if cost:
            self.cost[model] += cost
        self.latency[(model, route)].observe(seconds)
        self.version += 1

    def snapshot(self) -> dict[str, Any]:
        """Every count, JSON-safe (`add` reads it back)."""
        return {
            "requests": [[*key, value] for key, value in self.requests.items()],
            "errors": [[*key, value] for key, value in self.errors.items()],
            "tokens": [[*key, value] for key, value in self.tokens.items()],
            "cost": [[model, value] for model, value in self.cost.items()],
            "latency": [
                [*key, hist.buckets, hist.count, hist.total] for key, hist in self.latency.items()
            ],
        }

    def add(self, snapshot: dict[str, Any]) -> None:
        """Add another worker's `snapshot` to these counts."""
        for model, route, status, value in snapshot.get("requests", []):
            self.requests[(model, route, status)] += value
        for model, route, kind, value in snapshot.get("errors", []):
            self.errors[(model, route, kind)] += value
        for model, kind, value in snapshot.get("tokens", []):
            self.tokens[(model, kind)] += value
        for model, value in snapshot.get("cost", []):
            self.cost[model] += value
        for model, route, buckets, count, total in snapshot.get("latency", []):
            hist = self.latency[(model, route)]
            if len(buckets) != len(hist.buckets):
                continue  # written by another version with other buckets: not comparable
            hist.buckets = [a + b for a, b in zip(hist.buckets, buckets, strict=True)]
            hist.count += count
            hist.total += total

    def render(self) -> str:
        """Everything counted so far, in the text exposition format (version 0.0.4)."""
        lines = [
            "# HELP customllm_requests_total Requests answered, by model, endpoint and status.",
            "# TYPE customllm_requests_total counter",
        ]
        for (model, route, status), value in sorted(self.requests.items()):
            lines.append(
                f'customllm_requests_total{{model="{_label(model)}",route="{route}",'
                f'status="{status}"}} {value}'
            )
        lines += [
            "# HELP customllm_errors_total Failed requests (streams that failed part-way "
            "included), by OpenAI error type.",
            "# TYPE customllm_errors_total counter",
        ]
        for (model, route, kind), value in sorted(self.errors.items()):
            lines.append(
                f'customllm_errors_total{{model="{_label(model)}",route="{route}",'
                f'type="{_label(kind)}"}} {value}'
            )
        lines += [
            "# HELP customllm_tokens_total Tokens used, by model and kind (prompt, completion).",
            "# TYPE customllm_tokens_total counter",
        ]
        for (model, kind), value in sorted(self.tokens.items()):
            lines.append(f'customllm_tokens_total{{model="{_label(model)}",kind="{kind}"}} {value}')
        lines += [
            "# HELP customllm_cost_usd_total Cost of the answers in USD, for priced models.",
            "# TYPE customllm_cost_usd_total counter",
        ]
        for model, total in sorted(self.cost.items()):
            lines.append(f'customllm_cost_usd_total{{model="{_label(model)}"}} {total!r}')
        lines += [
            "# HELP customllm_request_seconds Request latency (a stream: until its last event).",
            "# TYPE customllm_request_seconds histogram",
        ]
        for (model, route), hist in sorted(self.latency.items()):
            labels = f'model="{_label(model)}",route="{route}"'
            running = 0
            for bound, count in zip(LATENCY_BUCKETS, hist.buckets, strict=True):
                running += count
                lines.append(f'customllm_request_seconds_bucket{{{labels},le="{bound}"}} {running}')
            lines.append(f'customllm_request_seconds_bucket{{{labels},le="+Inf"}} {hist.count}')
            lines.append(f"customllm_request_seconds_sum{{{labels}}} {hist.total!r}")
            lines.append(f"customllm_request_seconds_count{{{labels}}} {hist.count}")
        return "\n".join(lines) + "\n"


class WorkerFiles:
    """One worker's counts kept in a directory every worker of one gateway shares.

    Args:
        directory: The shared directory (``customllm serve --workers N`` makes one per run
            and removes it at exit).
        metrics: This worker's counts.
        interval: Seconds between two writes while requests are counted.
    """

    def __init__(self, directory: str | os.PathLike[str], metrics: Metrics, interval: float = 1.0):
        self.directory = Path(directory)
        self.metrics = metrics
        self.interval = interval
        # A name of its own even if a restarted worker gets a dead one's pid back: the
        # dead worker's counts stay in the total.
        self.path = self.directory / f"worker-{os.getpid()}-{uuid.uuid4().hex[:8]}.json"
        self._written = -1

    def write(self) -> None:
        """Write this worker's counts now if they changed (atomically: never half a file)."""
        version = self.metrics.version
        if version == self._written:
            return
        partial = self.path.with_suffix(".tmp")
        partial.write_text(json.dumps(self.metrics.snapshot()))
        os.replace(partial, self.path)
        self._written = version

    def combined(self) -> Metrics:
        """Every worker's counts added up (this one's written first, so they are current)."""
        self.write()
        total = Metrics()
        for path in sorted(self.directory.glob("worker-*.json")):
            try:
                total.add(json.loads(path.read_text()))
            except (OSError, ValueError, TypeError):
                continue  # a file being replaced right now, or not ours: the next scrape reads it
        return total

    async def run(self) -> None:
        """Write every ``interval`` seconds while the worker serves (cancel it to stop)."""
        try:
            while True:
                await asyncio.sleep(self.interval)
                with contextlib.suppress(OSError):
                    self.write()
        finally:
            with contextlib.suppress(OSError):
                self.write()
