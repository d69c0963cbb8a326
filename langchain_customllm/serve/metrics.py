"""``GET /metrics``: Prometheus' text exposition format, written here (no client library).

Per model and endpoint: requests by status, errors by OpenAI error type, prompt and
completion tokens, cost in USD, and a latency histogram (the whole request: for a stream,
until its last event). Each worker process counts its own requests (``--workers N`` share
nothing), so a scrape sees the worker that answered it; label each worker's target, or run
one worker per port, to scrape them all.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass, field

__all__ = ["LATENCY_BUCKETS", "Metrics"]

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
