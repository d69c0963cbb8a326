"""``customllm probe``: measure what an OpenAI-compatible server can do.

The probe sends ~25 small real requests (``max_tokens`` of a few tokens, temperature 0, a
fixed seed) straight through httpx, so it sees the server's raw behaviour rather than what
this package makes of it, and prints a capability table, the best-matching `ServerProfile`
and the ``ChatCustomLLM(...)`` line to use::

    customllm probe --base-url http://127.0.0.1:8080/v1 [--model M] [--api-key-env VAR]
                    [--json] [--timeout S]
    python -m langchain_customllm probe ...
    customllm profiles [--markdown]

Layout: the decision logic is pure (``judge_*`` turn recorded `Exchange` objects into rows
and capability facts, `score_profiles` compares facts with `PROFILES`, ``render_*`` format
the `ProbeReport`); `Prober` drives the requests through an ``httpx.Client`` (tests give it
an ``httpx.MockTransport``); `main` is the command line.

Exit codes: 0 the probe ran, 1 the server answered but chat completions failed (nothing
else could be measured), 2 usage error, 3 server unreachable.

The API key is read from the environment variable named by ``--api-key-env``, sent as
``Authorization: Bearer <key>`` and never printed: it is scrubbed from everything the server
sends back before that is kept.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import struct
import sys
import textwrap
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, TextIO

import httpx

from langchain_customllm._exceptions import decode_body, error_detail
from langchain_customllm.profiles import PROFILES, ServerProfile, profile_dict

__all__ = [
    "EXIT_CHAT_FAILED",
    "EXIT_OK",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "Exchange",
    "ProbeReport",
    "ProbeUsageError",
    "Prober",
    "ProfileMatch",
    "Row",
    "ServerUnreachableError",
    "main",
    "render_json",
    "render_profiles",
    "render_text",
    "run_probe",
    "score_profiles",
]

EXIT_OK = 0
EXIT_CHAT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3

SEED = 42
CHAT_PROMPT = "What is the capital of France? Answer in one sentence."
CHAT_MAX_TOKENS = 16
SEED_PROMPT = "Write one sentence about the sea."
JSON_PROMPT = "Give the capital of France as a JSON object with the key city."
TOOL_PROMPT = "What is the weather in Paris?"
IMAGE_PROMPT = "What colour is this image? Answer with one word."
COMPLETION_PROMPT = "The capital of France is"
UNKNOWN_MODEL = "customllm-probe-no-such-model"
WRONG_KEY = "customllm-probe-wrong-key"
MALFORMED_BODY = b'{"model": "x", "messages": [{"role": "user", "content": "hi"'
CITY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
    "additionalProperties": False,
}
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "The city."}},
            "required": ["city"],
        },
    },
}
NAMED_CHOICE: dict[str, Any] = {"type": "function", "function": {"name": "get_weather"}}
# The fields of ServerProfile the probe measures (all but the name).
PROFILE_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(ServerProfile) if f.name != "name")
# After this many transport failures in a row the server is taken as gone.
_MAX_CONSECUTIVE_FAILURES = 2
_EVIDENCE_CHARS = 240
_DETAIL_CHARS = 120  # of a server's error message (some include a traceback)
_TEXT_EVIDENCE_CHARS = 64


class ProbeUsageError(Exception):
    """The command line cannot be acted on (exit code 2)."""


class ServerUnreachableError(Exception):
    """Nothing answers at the base URL (exit code 3)."""


# --------------------------------------------------------------------------- records


@dataclass
class Exchange:
    """One request the probe sent and what came back (scrubbed of the key).

    Attributes:
        method: HTTP method.
        path: Path below the base URL, e.g. ``/chat/completions``.
        body: The JSON request body, or None (GET, or a raw malformed body).
        status: HTTP status, or None when no answer came (see ``error``).
        content_type: The response's content type.
        text: The response body as text.
        error: Transport failure, e.g. ``ConnectError: ...``; None if the server answered.
        error_kind: ``connect``, ``timeout`` or ``protocol`` for transport failures.
        elapsed: Seconds the request took.
        headers: Response headers, lower-cased names.
    """

    method: str
    path: str
    body: Any = None
    status: int | None = None
    content_type: str = ""
    text: str = ""
    error: str | None = None
    error_kind: str | None = None
    elapsed: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether the server answered with a 2xx status."""
        return self.status is not None and 200 <= self.status < 300

    def json(self) -> Any:
        """The body parsed as JSON, or None if it is not JSON."""
        try:
            return json.loads(self.text)
        except ValueError:
            return None

    def choices(self) -> list[dict[str, Any]]:
        """The ``choices`` of a non-streamed answer (empty when there are none)."""
        data = self.json()
        if not isinstance(data, dict):
            return []
        choices = data.get("choices")
        return [c for c in choices if isinstance(c, dict)] if isinstance(choices, list) else []

    def message(self) -> dict[str, Any]:
        """The first choice's ``message`` (empty when there is none)."""
        choices = self.choices()
        message = choices[0].get("message") if choices else None
        return message if isinstance(message, dict) else {}

    def content(self) -> str | None:
        """The first choice's message content, if it is a string."""
        content = self.message().get("content")
        return content if isinstance(content, str) else None

    def finish_reason(self) -> str | None:
        """The first choice's ``finish_reason``."""
        choices = self.choices()
        reason = choices[0].get("finish_reason") if choices else None
        return reason if isinstance(reason, str) else None

    def usage(self) -> dict[str, Any] | None:
        """The ``usage`` object of a non-streamed answer."""
        data = self.json()
        usage = data.get("usage") if isinstance(data, dict) else None
        return usage if isinstance(usage, dict) else None

    def summary(self) -> str:
        """A short account of a failed exchange: status and the server's words."""
        if self.status is None:
            return f"no answer ({self.error})"
        body = decode_body(self.text.encode())
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict) and not error.get("message"):
            detail = f"(empty error message, type {error.get('type')})"
        else:
            detail = error_detail(body) or "(empty body)"
        kind = self.content_type.split(";")[0].strip()
        suffix = f" {kind}" if kind and kind != "application/json" else ""
        return f"{self.status}{suffix}: {_clip(detail, _DETAIL_CHARS)}"


@dataclass(frozen=True)
class Row:
    """One line of the capability table.

    Attributes:
        key: Stable identifier, e.g. ``stream_usage``.
        label: What the row is about, for people.
        result: The verdict in a few words.
        supported: True / False, or None when it could not be told.
        evidence: What came back that the verdict rests on.
    """

    key: str
    label: str
    result: str
    supported: bool | None
    evidence: str

    def to_dict(self) -> dict[str, Any]:
        """The row as plain data."""
        return {
            "key": self.key,
            "label": self.label,
            "result": self.result,
            "supported": self.supported,
            "evidence": self.evidence,
        }


Facts = dict[str, Any]
Judged = tuple[list[Row], Facts]


@dataclass(frozen=True)
class ProfileMatch:
    """How well the measured facts agree with one profile.

    Attributes:
        name: The profile's name.
        agree: Measured facts that match the profile.
        compared: Facts measured (those that could not be told are left out).
        differences: Field name to ``(profile value, measured value)``.
    """

    name: str
    agree: int
    compared: int
    differences: dict[str, tuple[Any, Any]]

    @property
    def score(self) -> float:
        """Share of measured facts that agree (0 when nothing was measured)."""
        return self.agree / self.compared if self.compared else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The match as plain data."""
        return {
            "name": self.name,
            "agree": self.agree,
            "compared": self.compared,
            "score": round(self.score, 3),
            "differences": {
                k: {"profile": p, "measured": m} for k, (p, m) in self.differences.items()
            },
        }


@dataclass
class ProbeReport:
    """Everything one probe found.

    Attributes:
        base_url: The API root probed.
        model: The model name used.
        rows: The capability table.
        facts: Measured facts: `ServerProfile` field names plus extra ones.
        matches: Every profile's agreement, best first.
        server_hint: A profile name guessed from ``/models`` and headers (tie-breaker).
        api_key_env: The environment variable the key came from, if any (never the key).
        requests: Requests sent.
        duration_s: Wall time of the probe.
        chat_ok: Whether chat completions worked at all.
        notes: Caveats about this run.
    """

    base_url: str
    model: str
    rows: list[Row]
    facts: Facts
    matches: list[ProfileMatch]
    server_hint: str | None = None
    api_key_env: str | None = None
    requests: int = 0
    duration_s: float = 0.0
    chat_ok: bool = True
    notes: list[str] = field(default_factory=list)

    @property
    def best(self) -> ProfileMatch | None:
        """The best-matching profile, if any fact was measured."""
        return self.matches[0] if self.matches and self.matches[0].compared else None

    def overrides(self) -> dict[str, Any]:
        """Fields where the measured server differs from the best profile."""
        best = self.best
        if best is None:
            return {}
        return {k: measured for k, (_, measured) in best.differences.items()}

    def recommendation(self) -> str:
        """The ``ChatCustomLLM(...)`` line these facts call for."""
        return recommend(self.base_url, self.model, self.best, self.api_key_env)

    def to_dict(self) -> dict[str, Any]:
        """The report as one JSON-able object (``--json``)."""
        best = self.best
        return {
            "base_url": self.base_url,
            "model": self.model,
            "chat_ok": self.chat_ok,
            "requests": self.requests,
            "duration_s": round(self.duration_s, 2),
            "server_hint": self.server_hint,
            "rows": [row.to_dict() for row in self.rows],
            "facts": dict(self.facts),
            "profiles": [m.to_dict() for m in self.matches],
            "best_profile": best.name if best else None,
            "overrides": self.overrides(),
            "recommendation": self.recommendation(),
            "notes": list(self.notes),
        }


# --------------------------------------------------------------------------- helpers


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _clip(text: str, limit: int = _EVIDENCE_CHARS) -> str:
    text = _one_line(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _quote(text: str | None, limit: int = 60) -> str:
    if text is None:
        return "null"
    return json.dumps(_clip(text, limit), ensure_ascii=False)


def tiny_png(size: int = 32, rgb: tuple[int, int, int] = (255, 0, 0)) -> bytes:
    """A solid-colour RGB PNG, made here so the probe needs no image file.

    Args:
        size: Width and height in pixels.
        rgb: The colour.

    Returns:
        The PNG file's bytes.
    """

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    row = b"\x00" + bytes(rgb) * size  # filter byte 0, then the pixels
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * size))
        + chunk(b"IEND", b"")
    )


def image_data_url() -> str:
    """The probe's image: a 32x32 red PNG as a base64 data URL."""
    return "data:image/png;base64," + base64.b64encode(tiny_png()).decode()


@dataclass(frozen=True)
class Stream:
    """A parsed server-sent-event body.

    Attributes:
        events: The JSON payloads of the ``data:`` lines, in order.
        done: Whether ``data: [DONE]`` came.
        bad: ``data:`` lines that were not JSON.
    """

    events: list[dict[str, Any]]
    done: bool
    bad: int

    def deltas(self) -> list[dict[str, Any]]:
        """The first choice's ``delta`` of each event that has one."""
        out: list[dict[str, Any]] = []
        for event in self.events:
            choices = event.get("choices")
            if isinstance(choices, list) and choices and isinstance(choices[0], dict):
                delta = choices[0].get("delta")
                if isinstance(delta, dict):
                    out.append(delta)
        return out

    def text(self) -> str:
        """The streamed content, joined."""
        return "".join(d["content"] for d in self.deltas() if isinstance(d.get("content"), str))

    def usage(self) -> dict[str, Any] | None:
        """The last non-null ``usage`` in the stream."""
        found: dict[str, Any] | None = None
        for event in self.events:
            usage = event.get("usage")
            if isinstance(usage, dict):
                found = usage
        return found

    def finish_reason(self) -> str | None:
        """The last ``finish_reason`` sent."""
        reason: str | None = None
        for event in self.events:
            choices = event.get("choices")
            if isinstance(choices, list):
                for choice in choices:
                    if isinstance(choice, dict) and isinstance(choice.get("finish_reason"), str):
                        reason = choice["finish_reason"]
        return reason


def parse_sse(text: str) -> Stream:
    """Parse an SSE body as OpenAI-compatible servers send it (pure).

    Args:
        text: The whole response body.

    Returns:
        The events found.
    """
    events: list[dict[str, Any]] = []
    done = False
    bad = 0
    for line in text.splitlines():
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if payload == "[DONE]":
            done = True
            continue
        try:
            value = json.loads(payload)
        except ValueError:
            bad += 1
            continue
        if isinstance(value, dict):
            events.append(value)
        else:
            bad += 1
    return Stream(events, done, bad)


def _usage_text(usage: Mapping[str, Any] | None) -> str:
    if not usage:
        return "no usage"
    return f"usage {usage.get('prompt_tokens')}+{usage.get('completion_tokens')}"


def _parse_args(arguments: Any) -> tuple[Any, str]:
    """Decode tool-call arguments; returns (value, how): how is json, string or invalid."""
    if isinstance(arguments, dict):
        return arguments, "json"
    if not isinstance(arguments, str):
        return None, "invalid"
    try:
        value = json.loads(arguments)
    except ValueError:
        return None, "invalid"
    if isinstance(value, str):  # vLLM without strict: a JSON string holding JSON
        try:
            inner = json.loads(value)
        except ValueError:
            return value, "string"
        return inner, "string"
    return value, "json" if isinstance(value, dict) else "invalid"


def _tool_calls(ex: Exchange) -> list[tuple[str, Any, str]]:
    """``(name, arguments, how)`` for each tool call in a non-streamed answer."""
    calls = ex.message().get("tool_calls")
    out: list[tuple[str, Any, str]] = []
    if not isinstance(calls, list):
        return out
    for call in calls:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            args, how = _parse_args(function.get("arguments"))
            out.append((str(function.get("name")), args, how))
    return out


def _call_text(name: str, args: Any) -> str:
    return f"{name}({json.dumps(args, ensure_ascii=False) if args is not None else '?'})"


def _is_city_json(text: str | None) -> bool:
    if text is None:
        return False
    try:
        value = json.loads(text)
    except ValueError:
        return False
    return isinstance(value, dict) and isinstance(value.get("city"), str)


def _is_json(text: str | None) -> bool:
    if text is None:
        return False
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


# The order rows are shown in (requests go in another order, see `Prober.run`).
ROW_ORDER: tuple[str, ...] = (
    "chat",
    "completions",
    "streaming",
    "stream_usage",
    "stop",
    "max_tokens",
    "seed",
    "logprobs",
    "n",
    "json_mode",
    "json_schema",
    "json_object_schema",
    "tools_auto",
    "tools_named",
    "tools_required",
    "tools_stream_named",
    "tools_stream_auto",
    "tools_strict",
    "content_parts",
    "image",
    "error_unknown_model",
    "error_malformed_json",
    "error_wrong_key",
)


def _row_rank(row: Row) -> int:
    return ROW_ORDER.index(row.key) if row.key in ROW_ORDER else len(ROW_ORDER)


def _skipped(key: str, label: str, why: str) -> Row:
    return Row(key, label, "not tested", None, why)


def _lost(ex: Exchange, key: str, label: str, *facts: str) -> Judged:
    """A row for a request that got no answer: nothing can be told from it."""
    return [Row(key, label, "no answer", None, ex.summary())], dict.fromkeys(facts)


# --------------------------------------------------------------------------- judges
# Each turns recorded exchanges into table rows and facts. Pure: no I/O.


def judge_chat(ex: Exchange) -> Judged:
    """Judge the baseline chat completion."""
    if ex.status is None:
        return [Row("chat", "chat completions", "no answer", False, ex.summary())], {"chat": False}
    content = ex.content()
    if ex.ok and content is not None:
        evidence = (
            f"{ex.status}, {_quote(content)} (finish {ex.finish_reason()}, "
            f"{_usage_text(ex.usage())})"
        )
        return [Row("chat", "chat completions", "yes", True, evidence)], {"chat": True}
    evidence = ex.summary() if not ex.ok else f"{ex.status}, no message content"
    return [Row("chat", "chat completions", "no", False, evidence)], {"chat": False}


def judge_completions(ex: Exchange) -> Judged:
    """Judge ``/completions`` (legacy text completion)."""
    if ex.status is None:
        return _lost(ex, "completions", "completions (/completions)", "completions")
    choices = ex.choices()
    text = choices[0].get("text") if choices else None
    if ex.ok and isinstance(text, str):
        evidence = f"{ex.status}, {_quote(text)} (finish {choices[0].get('finish_reason')})"
        return [Row("completions", "completions (/completions)", "yes", True, evidence)], {
            "completions": True
        }
    return [Row("completions", "completions (/completions)", "no", False, ex.summary())], {
        "completions": False
    }


def judge_stream(ex: Exchange, baseline: Exchange) -> Judged:
    """Judge a streamed chat answer, and its usage (asked with ``include_usage``).

    Args:
        ex: The streamed request (the baseline's body plus ``stream`` and
            ``stream_options.include_usage``).
        baseline: The same request, not streamed: its usage tells whether streamed usage
            is the model's count or an estimate.
    """
    facts: Facts = {}
    if ex.status is None:
        rows, facts = _lost(ex, "streaming", "streaming", "streaming", "stream_usage")
        rows.append(_skipped("stream_usage", "stream usage (include_usage)", "no answer"))
        return rows, facts
    if not ex.ok:
        facts.update(streaming=False, stream_usage=None)
        return [
            Row("streaming", "streaming", "no", False, ex.summary()),
            _skipped("stream_usage", "stream usage (include_usage)", "streaming failed"),
        ], facts
    stream = parse_sse(ex.text)
    text = stream.text()
    kind = ex.content_type.split(";")[0].strip() or "no content type"
    streaming = bool(stream.events) and (bool(text) or stream.finish_reason() is not None)
    facts["streaming"] = streaming
    done = ", [DONE]" if stream.done else ", no [DONE]"
    bad = f", {stream.bad} bad lines" if stream.bad else ""
    evidence = f"{ex.status} {kind}, {len(stream.events)} events{done}{bad}, {_quote(text)}"
    same = text == (baseline.content() or "")
    if streaming and baseline.ok:
        evidence += " (same text as non-streamed)" if same else " (text differs from non-streamed)"
    rows = [Row("streaming", "streaming", "yes" if streaming else "no", streaming, evidence)]

    usage = stream.usage()
    base_usage = baseline.usage()
    if usage is None:
        facts["stream_usage"] = False
        facts["usage_estimated"] = None
        rows.append(
            Row(
                "stream_usage",
                "stream usage (include_usage)",
                "no",
                False,
                "include_usage accepted, no usage in any chunk",
            )
        )
        return rows, facts
    facts["stream_usage"] = True
    last = stream.events[-1] if stream.events else {}
    where = "a final chunk with choices []" if last.get("choices") == [] else "a chunk with choices"
    evidence = f"{_usage_text(usage)} in {where}"
    if base_usage is None:
        facts["usage_estimated"] = None
        result = "yes"
    else:
        keys = ("prompt_tokens", "completion_tokens")
        estimated = any(usage.get(k) != base_usage.get(k) for k in keys) and same
        facts["usage_estimated"] = estimated
        if estimated:
            result = "yes, but estimated"
            evidence += f"; non-streamed says {_usage_text(base_usage)} for the same text"
        else:
            result = "yes"
            evidence += " (matches non-streamed)"
    rows.append(Row("stream_usage", "stream usage (include_usage)", result, True, evidence))
    return rows, facts


def pick_stop(text: str) -> str | None:
    """Choose a stop string from a baseline answer: a word from its middle (pure).

    The word must not start the text (so something comes before it) and must occur there
    first, so the expected output, cut at the stop text, is known.

    Args:
        text: The baseline answer (temperature 0 and a fixed seed, so it repeats).

    Returns:
        The stop string, or None if the text has no usable word.
    """
    words = [
        m.group(0)
        for m in re.finditer(r"[A-Za-z]{3,}", text)
        if m.start() > 0 and text.find(m.group(0)) == m.start()
    ]
    return words[len(words) // 2] if words else None


def judge_stop(baseline: str, stop: str, ex: Exchange) -> Judged:
    """Judge ``stop``: honoured, and whether the stop text is kept in the output.

    Args:
        baseline: The answer to the same request without ``stop``.
        stop: The stop string sent (found in ``baseline``).
        ex: The request with ``stop``.
    """
    label = "stop sequences"
    if ex.status is None:
        return _lost(ex, "stop", label, "stop_honoured", "stop_included")
    if not ex.ok or ex.content() is None:
        return [Row("stop", label, "error", False, f"stop={[stop]}: {ex.summary()}")], {
            "stop_honoured": False,
            "stop_included": None,
        }
    got = ex.content() or ""
    finish = ex.finish_reason()
    cut = baseline.find(stop)
    before = baseline[:cut]
    evidence = f"stop={json.dumps([stop])} → {_quote(got)} (finish {finish})"
    if got.rstrip() == before.rstrip():
        return [Row("stop", label, "honoured, stop text excluded", True, evidence)], {
            "stop_honoured": True,
            "stop_included": False,
        }
    if got.rstrip() == (before + stop).rstrip():
        return [Row("stop", label, "honoured, stop text included", True, evidence)], {
            "stop_honoured": True,
            "stop_included": True,
        }
    if got == baseline or (stop in got and not got.rstrip().endswith(stop)):
        return [Row("stop", label, "ignored", False, evidence + "; output ran past it")], {
            "stop_honoured": False,
            "stop_included": None,
        }
    if finish == "stop" and len(got) < len(baseline):
        included = got.rstrip().endswith(stop)
        kept = "included" if included else "excluded"
        return [
            Row(
                "stop",
                label,
                f"honoured?, stop text {kept}",
                True,
                evidence + "; output differs from the unstopped answer (not deterministic?)",
            )
        ], {"stop_honoured": True, "stop_included": included}
    return [Row("stop", label, "unclear", None, evidence)], {
        "stop_honoured": None,
        "stop_included": None,
    }


def judge_max_tokens(ex: Exchange, limit: int) -> Judged:
    """Judge ``max_tokens``: output cut at the limit with ``finish_reason: length``."""
    label = "max_tokens"
    if ex.status is None:
        return _lost(ex, "max_tokens", label, "max_tokens_honoured")
    if not ex.ok:
        return [Row("max_tokens", label, "error", False, ex.summary())], {
            "max_tokens_honoured": False
        }
    usage = ex.usage() or {}
    used = usage.get("completion_tokens")
    finish = ex.finish_reason()
    evidence = (
        f"max_tokens={limit} → {used if used is not None else '?'} tokens, "
        f"{_quote(ex.content())}, finish {finish}"
    )
    within = used is None or (isinstance(used, int) and used <= limit)
    if within and finish == "length":
        return [Row("max_tokens", label, "honoured (finish length)", True, evidence)], {
            "max_tokens_honoured": True
        }
    if within:
        return [Row("max_tokens", label, f"honoured, finish {finish}", True, evidence)], {
            "max_tokens_honoured": True
        }
    return [Row("max_tokens", label, "ignored", False, evidence)], {"max_tokens_honoured": False}


def judge_seed(first: Exchange, again: Exchange, other: Exchange) -> Judged:
    """Judge ``seed``: same seed twice at temperature 1 → same text? Another seed → other?"""
    label = "seed (temperature 1)"
    lost = next((e for e in (first, again, other) if e.status is None), None)
    if lost is not None:
        return _lost(lost, "seed", label, "seed_deterministic")
    bad = next((e for e in (first, again, other) if not e.ok), None)
    if bad is not None:
        return [Row("seed", label, "error", False, bad.summary())], {"seed_deterministic": None}
    a, b, c = first.content(), again.content(), other.content()
    evidence = f"seed {SEED} twice → {_quote(a, 40)} / {_quote(b, 40)}; seed {SEED + 1} → "
    evidence += _quote(c, 40)
    if a != b:
        return [Row("seed", label, "not deterministic", False, evidence)], {
            "seed_deterministic": False
        }
    if a == c:
        return [
            Row(
                "seed",
                label,
                "repeatable, but another seed gave the same text",
                None,
                evidence + " (sampling may ignore temperature or seed)",
            )
        ], {"seed_deterministic": None}
    return [Row("seed", label, "deterministic", True, evidence)], {"seed_deterministic": True}


def judge_logprobs(ex: Exchange) -> Judged:
    """Judge ``logprobs`` + ``top_logprobs``."""
    label = "logprobs (top_logprobs 2)"
    if ex.status is None:
        return _lost(ex, "logprobs", label, "logprobs")
    if not ex.ok:
        return [Row("logprobs", label, "error", False, ex.summary())], {"logprobs": False}
    choices = ex.choices()
    logprobs = choices[0].get("logprobs") if choices else None
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    if isinstance(content, list) and content:
        first = content[0] if isinstance(content[0], dict) else {}
        top = first.get("top_logprobs")
        tops = len(top) if isinstance(top, list) else 0
        evidence = (
            f"{len(content)} tokens, first {json.dumps(first.get('token'), ensure_ascii=False)} "
            f"logprob {first.get('logprob')}, {tops} top_logprobs"
        )
        return [Row("logprobs", label, "yes", True, evidence)], {"logprobs": True}
    if isinstance(logprobs, dict) and logprobs.get("tokens"):
        return [
            Row("logprobs", label, "yes (legacy format)", True, "tokens/token_logprobs lists")
        ], {"logprobs": True}
    return [Row("logprobs", label, "no", False, f"{ex.status}, logprobs {json.dumps(logprobs)}")], {
        "logprobs": False
    }


def judge_n(ex: Exchange) -> Judged:
    """Judge ``n: 2``."""
    label = "n=2"
    if ex.status is None:
        return _lost(ex, "n", label, "n")
    if not ex.ok:
        return [Row("n", label, "error", False, ex.summary())], {"n": False}
    count = len(ex.choices())
    if count >= 2:
        return [Row("n", label, "yes", True, f"{count} choices")], {"n": True}
    return [Row("n", label, "ignored", False, f"{ex.status}, {count} choice")], {"n": False}


def judge_json_mode(ex: Exchange) -> Judged:
    """Judge ``response_format: {"type": "json_object"}``."""
    label = "JSON mode (json_object)"
    if ex.status is None:
        return _lost(ex, "json_mode", label, "json_mode")
    if not ex.ok:
        return [Row("json_mode", label, "error", False, ex.summary())], {"json_mode": False}
    text = ex.content()
    finish = ex.finish_reason()
    evidence = f"{_quote(text)} (finish {finish})"
    if _is_json(text):
        return [Row("json_mode", label, "yes", True, evidence)], {"json_mode": True}
    if text is not None and text.lstrip().startswith("{") and finish == "length":
        return [Row("json_mode", label, "probably (JSON cut by max_tokens)", True, evidence)], {
            "json_mode": True
        }
    return [Row("json_mode", label, "ignored (not JSON)", False, evidence)], {"json_mode": False}


def judge_json_schema(native: Exchange, object_schema: Exchange) -> Judged:
    """Judge OpenAI's ``json_schema`` and llama.cpp's ``json_object`` + ``schema``.

    Args:
        native: ``{"type": "json_schema", "json_schema": {"name", "schema", "strict"}}``.
        object_schema: ``{"type": "json_object", "schema": ...}``.
    """
    rows: list[Row] = []
    results: list[bool | None] = []
    for key, label, ex in (
        ("json_schema", "json_schema (OpenAI style)", native),
        ("json_object_schema", "json_object + schema (llama.cpp style)", object_schema),
    ):
        text = ex.content()
        if ex.status is None:
            rows.append(Row(key, label, "no answer", None, ex.summary()))
            results.append(None)
        elif not ex.ok:
            rows.append(Row(key, label, f"no ({ex.status or 'no answer'})", False, ex.summary()))
            results.append(False)
        elif _is_city_json(text):
            evidence = f"{_quote(text)} (finish {ex.finish_reason()})"
            rows.append(Row(key, label, "yes (schema followed)", True, evidence))
            results.append(True)
        else:
            evidence = f"{ex.status}, {_quote(text)} does not follow the schema"
            rows.append(Row(key, label, "ignored", False, evidence))
            results.append(False)
    support: str | None
    if results[0] or results[0] is None:
        support = "native" if results[0] else None
    elif results[1] is None:
        support = None
    else:
        support = "json_object_schema" if results[1] else "none"
    return rows, {
        "json_schema": support,
        "json_schema_native": results[0],
        "json_object_schema": results[1],
    }


def _stream_tool_calls(stream: Stream) -> tuple[list[dict[str, Any]], int, int, int]:
    """Tool-call deltas of a stream; counts of deltas, of ones with an id, with a name."""
    parts: list[dict[str, Any]] = []
    for delta in stream.deltas():
        calls = delta.get("tool_calls")
        if isinstance(calls, list):
            parts.extend(c for c in calls if isinstance(c, dict))
    with_id = sum(1 for p in parts if p.get("id"))
    with_name = sum(
        1 for p in parts if isinstance(p.get("function"), dict) and p["function"].get("name")
    )
    return parts, len(parts), with_id, with_name


def _assemble(parts: Sequence[Mapping[str, Any]]) -> tuple[str | None, Any, str]:
    name: str | None = None
    args = ""
    for part in parts:
        function = part.get("function")
        if isinstance(function, Mapping):
            if function.get("name") and name is None:
                name = str(function["name"])
            if isinstance(function.get("arguments"), str):
                args += function["arguments"]
    value, how = _parse_args(args)
    return name, value, how


def judge_stream_tools(ex: Exchange, key: str, label: str) -> tuple[Row, bool | None, str | None]:
    """Judge a streamed tool call; returns the row, success, and the repeat pattern.

    The pattern is ``repeated`` (``id``/``name`` in every chunk, llama.cpp), ``first``
    (only the first chunk, like OpenAI and vLLM) or None.
    """
    if ex.status is None:
        return Row(key, label, "no answer", None, ex.summary()), None, None
    if not ex.ok:
        return Row(key, label, "error", False, ex.summary()), False, None
    if not ex.text.strip():
        return Row(key, label, "empty body", False, f"{ex.status} with an empty body"), False, None
    stream = parse_sse(ex.text)
    parts, count, with_id, with_name = _stream_tool_calls(stream)
    if not parts:
        evidence = f"{len(stream.events)} events, no tool_calls, text {_quote(stream.text())}"
        return Row(key, label, "no tool call", False, evidence), False, None
    name, args, how = _assemble(parts)
    pattern = "repeated" if count > 1 and with_id == count and with_name == count else "first"
    note = (
        "id and name repeated in every chunk"
        if pattern == "repeated"
        else f"id in {with_id}, name in {with_name} of {count} chunks"
    )
    valid = how != "invalid"
    evidence = f"{count} tool_call chunks → {_call_text(name or '?', args)}; {note}"
    result = "yes, " + ("id/name in every chunk" if pattern == "repeated" else "id/name once")
    if not valid:
        result = "yes, but arguments are not JSON"
    return Row(key, label, result, True, evidence), True, pattern


def judge_tools(
    auto: Exchange,
    named: Exchange,
    required: Exchange,
    stream_named: Exchange,
    stream_auto: Exchange | None,
    strict: Exchange | None = None,
) -> Judged:
    """Judge tool calling: auto, forced by name, required, streamed forced and streamed auto.

    Args:
        auto: ``tool_choice: "auto"``.
        named: ``tool_choice`` naming the function.
        required: ``tool_choice: "required"``.
        stream_named: The named request, streamed.
        stream_auto: The auto request, streamed; None when auto picked no tool (then a
            streamed auto answer says nothing about streamed tool calls).
        strict: The named request with ``strict: true`` in the tool, sent when the plain
            one returned arguments as a JSON string; else None.
    """
    rows: list[Row] = []
    facts: Facts = {}

    def one(ex: Exchange, key: str, label: str) -> bool | None:
        if ex.status is None:
            rows.extend(_lost(ex, key, label)[0])
            return None
        if not ex.ok:
            rows.append(Row(key, label, f"error ({ex.status or 'no answer'})", False, ex.summary()))
            return False
        calls = _tool_calls(ex)
        if not calls:
            evidence = f"{ex.status}, text {_quote(ex.content())}, finish {ex.finish_reason()}"
            rows.append(Row(key, label, "no tool call", False, evidence))
            return False
        name, args, how = calls[0]
        evidence = f"{ex.status}, {_call_text(name, args)}, finish {ex.finish_reason()}"
        if how == "string":
            evidence += "; arguments are a JSON string holding JSON"
        rows.append(Row(key, label, "tool call", True, evidence))
        return name == "get_weather" and how != "invalid"

    auto_ok = one(auto, "tools_auto", "tools: auto")
    named_ok = one(named, "tools_named", "tools: forced by name")
    required_ok = one(required, "tools_required", 'tools: "required"')
    stream_row, stream_ok, pattern = judge_stream_tools(
        stream_named, "tools_stream_named", "tools: forced, streamed"
    )
    rows.append(stream_row)
    if stream_auto is None:
        rows.append(
            _skipped(
                "tools_stream_auto",
                "tools: auto, streamed",
                "not measured: auto picked no tool when not streamed",
            )
        )
        facts["tool_stream_auto"] = None
    else:
        auto_row, auto_stream_ok, _ = judge_stream_tools(
            stream_auto, "tools_stream_auto", "tools: auto, streamed"
        )
        rows.append(auto_row)
        facts["tool_stream_auto"] = auto_stream_ok

    string_args = any(how == "string" for _, _, how in _tool_calls(named))
    if strict is not None:
        strict_calls = _tool_calls(strict)
        strict_ok = bool(strict_calls) and strict_calls[0][2] == "json"
        evidence = (
            f"{strict.status}, {_call_text(strict_calls[0][0], strict_calls[0][1])}"
            if strict_calls
            else strict.summary()
        )
        rows.append(
            Row(
                "tools_strict",
                'tools: forced, "strict": true',
                "JSON arguments" if strict_ok else "no fix",
                strict_ok,
                evidence,
            )
        )
        facts["strict_tools"] = strict_ok
    elif named_ok or auto_ok or required_ok:
        facts["strict_tools"] = False
    else:
        facts["strict_tools"] = None
    if string_args and strict is None:
        facts["strict_tools"] = True

    outcomes = (auto_ok, named_ok, required_ok, stream_ok)
    facts["tool_calling"] = (
        True if any(outcomes) else None if any(o is None for o in outcomes) else False
    )
    facts["tool_choice_named"] = named_ok
    facts["tool_choice_required"] = required_ok
    facts["tool_choice_auto_called"] = auto_ok
    facts["tool_stream_repeats_id_name"] = None if pattern is None else pattern == "repeated"
    return rows, facts


def _prompt_tokens(ex: Exchange) -> int | None:
    tokens = (ex.usage() or {}).get("prompt_tokens") if ex.ok else None
    return tokens if isinstance(tokens, int) else None


def judge_image(
    as_string: Exchange, text_parts: Exchange, with_image: Exchange, data_url: str
) -> Judged:
    """Judge content parts and image input (a red PNG as a data URL), partly by heuristics.

    A server can refuse the image (an error), read it, or accept it and drop it or paste it
    into the prompt as text. Reading is told apart only by the answer naming the colour,
    and pasting by how many prompt tokens the image adds compared with the data URL's
    length, so a weak vision model can look like a server that drops images: the verdict
    says "heuristic".

    Args:
        as_string: The question with ``content`` as a plain string (control).
        text_parts: The question as a one-element list of text parts (control).
        with_image: The question as text part + ``image_url`` part.
        data_url: The image sent, for its size.
    """
    rows: list[Row] = []
    facts: Facts = {}
    parts_label = "content as a list of text parts"
    base_tokens, parts_tokens = _prompt_tokens(as_string), _prompt_tokens(text_parts)
    if text_parts.status is None:
        lost_rows, lost_facts = _lost(text_parts, "content_parts", parts_label, "content_parts")
        rows += lost_rows
        facts.update(lost_facts)
    elif not text_parts.ok:
        rows.append(Row("content_parts", parts_label, "refused", False, text_parts.summary()))
        facts["content_parts"] = False
    elif base_tokens is not None and parts_tokens is not None and parts_tokens > base_tokens + 4:
        evidence = (
            f"{text_parts.status}, prompt tokens {base_tokens} as a string → {parts_tokens} as "
            "parts: the list seems pasted into the prompt as text"
        )
        rows.append(Row("content_parts", parts_label, "garbled", False, evidence))
        facts["content_parts"] = False
    else:
        counts = f", prompt tokens {base_tokens} → {parts_tokens}" if parts_tokens else ""
        rows.append(Row("content_parts", parts_label, "yes", True, f"{text_parts.status}{counts}"))
        facts["content_parts"] = True

    label = "image input (base64 PNG)"
    if with_image.status is None:
        lost_rows, lost_facts = _lost(with_image, "image", label, "image_inputs")
        return rows + lost_rows, {**facts, **lost_facts, "image_verdict": None}
    if not with_image.ok:
        evidence = with_image.summary()
        if text_parts.status is not None and not text_parts.ok:
            evidence += "; text-only parts fail too: this server wants content as a string"
        facts.update(image_inputs=False, image_verdict="refused")
        rows.append(Row("image", label, f"refused ({with_image.status})", False, evidence))
        return rows, facts
    answer = with_image.content() or ""
    image_tokens = _prompt_tokens(with_image)
    growth = (
        image_tokens - parts_tokens
        if image_tokens is not None and parts_tokens is not None
        else None
    )
    evidence = f"{with_image.status}, {_quote(answer, 40)}"
    if growth is not None:
        evidence += f"; prompt tokens {parts_tokens} → {image_tokens} with the image"
    if re.search(r"\bred\b", answer, re.IGNORECASE):
        facts.update(image_inputs=True, image_verdict="read")
        rows.append(Row("image", label, "accepted, seems read (says red)", True, evidence))
        return rows, facts
    if growth is not None and len(data_url) / 4 <= growth <= len(data_url) * 1.5:
        # Base64 text costs roughly 1-4 characters a token: about what was added.
        facts.update(image_inputs=False, image_verdict="as_text")
        result = "accepted silently, pasted as text? (heuristic)"
        evidence += f", the data URL has {len(data_url)} characters"
    elif growth is not None and growth > len(data_url) * 1.5:
        facts.update(image_inputs=None, image_verdict="unclear")
        result = "accepted, image tokens added, colour not named (heuristic)"
    else:
        facts.update(image_inputs=False, image_verdict="ignored")
        result = "accepted silently, no sign it was seen (heuristic)"
    rows.append(Row("image", label, result, facts["image_inputs"], evidence))
    return rows, facts


def judge_errors(
    unknown_model: Exchange,
    malformed: Exchange,
    wrong_key: Exchange | None,
    no_key: Exchange | None,
) -> Judged:
    """Judge the error statuses: unknown model, malformed JSON, wrong and missing key."""
    rows: list[Row] = []
    facts: Facts = {
        "unknown_model_status": unknown_model.status,
        "malformed_json_status": malformed.status,
    }
    if unknown_model.ok:
        data = unknown_model.json()
        echoed = data.get("model") if isinstance(data, dict) else None
        evidence = f"{unknown_model.status}, answered anyway (response model {_quote(echoed)})"
        rows.append(
            Row("error_unknown_model", "error: unknown model", "ignored (200)", False, evidence)
        )
    else:
        fitting = None if unknown_model.status is None else unknown_model.status in (400, 404)
        rows.append(
            Row(
                "error_unknown_model",
                "error: unknown model",
                str(unknown_model.status or "no answer"),
                fitting,
                unknown_model.summary(),
            )
        )
    fitting = None if malformed.status is None else malformed.status in (400, 422)
    rows.append(
        Row(
            "error_malformed_json",
            "error: malformed JSON body",
            str(malformed.status or "no answer"),
            fitting,
            malformed.summary() if not malformed.ok else f"{malformed.status}, accepted",
        )
    )
    if wrong_key is None:
        rows.append(_skipped("error_wrong_key", "error: wrong API key", "no --api-key-env given"))
        facts["wrong_key_status"] = None
    else:
        facts["wrong_key_status"] = wrong_key.status
        facts["no_key_status"] = no_key.status if no_key is not None else None
        evidence = f"wrong key: {wrong_key.summary() if not wrong_key.ok else wrong_key.status}"
        if no_key is not None:
            evidence += f"; no key: {no_key.summary() if not no_key.ok else no_key.status}"
        result = str(wrong_key.status or "no answer")
        if wrong_key.ok:
            result = "accepted (200): the key is not checked"
        rows.append(
            Row(
                "error_wrong_key",
                "error: wrong API key",
                result,
                wrong_key.status in (401, 403),
                evidence,
            )
        )
    return rows, facts


# --------------------------------------------------------------------------- profiles


def guess_family(models: Exchange | None, headers: Mapping[str, str]) -> str | None:
    """Guess the server family from ``/models`` and response headers (a tie-breaker only).

    Args:
        models: The ``GET /models`` exchange, if any.
        headers: Headers of a chat answer (lower-cased names).

    Returns:
        A `PROFILES` name, or None.
    """
    if any(name.startswith("x-litellm") for name in headers):
        return "litellm"
    data = models.json() if models is not None else None
    owners: set[str] = set()
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        owners = {str(item.get("owned_by")) for item in data["data"] if isinstance(item, dict)}
    if "vllm" in owners:
        return "vllm"
    if "library" in owners:  # Ollama's /v1/models
        return "ollama"
    if "me" in owners:  # llama-cpp-python's server
        return "llamacpp"
    return None


def score_profiles(
    facts: Mapping[str, Any],
    profiles: Mapping[str, ServerProfile] | None = None,
    hint: str | None = None,
) -> list[ProfileMatch]:
    """Score every profile by agreement with the measured facts, best first (pure).

    Only facts that were measured (not None) count. Ties go to the family ``hint``, then
    to the order of ``profiles``.

    Args:
        facts: Measured facts keyed by `ServerProfile` field name (others are ignored).
        profiles: The profiles to compare; `PROFILES` by default.
        hint: A profile name guessed from the server's identity.

    Returns:
        One match per profile, best first.
    """
    profiles = PROFILES if profiles is None else profiles
    matches: list[tuple[float, int, int, ProfileMatch]] = []
    for order, (name, profile) in enumerate(profiles.items()):
        values = profile_dict(profile)
        agree = compared = 0
        differences: dict[str, tuple[Any, Any]] = {}
        for key in PROFILE_FIELDS:
            measured = facts.get(key)
            if measured is None:
                continue
            compared += 1
            if values[key] == measured:
                agree += 1
            else:
                differences[key] = (values[key], measured)
        match = ProfileMatch(name, agree, compared, differences)
        matches.append((-match.score, 0 if name == hint else 1, order, match))
    matches.sort(key=lambda item: item[:3])
    return [item[3] for item in matches]


def recommend(
    base_url: str, model: str, best: ProfileMatch | None, api_key_env: str | None = None
) -> str:
    """The ``ChatCustomLLM(...)`` line for a server (pure).

    Args:
        base_url: The API root.
        model: The model name.
        best: The best-matching profile, with the facts that differ from it.
        api_key_env: The environment variable holding the key, if any.

    Returns:
        Python source for the constructor call.
    """
    args = [f"base_url={json.dumps(base_url)}", f"model={json.dumps(model)}"]
    if best is not None:
        if best.differences:
            overrides = {"base": best.name}
            overrides.update({k: m for k, (_, m) in best.differences.items()})
            args.append(f"server_profile={_py(overrides)}")
        elif best.name != "generic":
            args.append(f"server_profile={json.dumps(best.name)}")
    if api_key_env and api_key_env != "CUSTOMLLM_API_KEY":
        args.append(f"api_key=os.environ[{json.dumps(api_key_env)}]")
    return f"ChatCustomLLM({', '.join(args)})"


def _py(value: Any) -> str:
    """Python source for a JSON-like value (True/False/None spelled the Python way)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {_py(v)}" for k, v in value.items()) + "}"
    if value is None or isinstance(value, bool):
        return repr(value)
    return json.dumps(value)


# --------------------------------------------------------------------------- rendering


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], width: int) -> list[str]:
    """Aligned columns; the last one is wrapped to ``width`` characters."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for row in [header, *rows]:
        lead = "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])) + "  "
        wrapped = textwrap.wrap(row[-1], width, break_on_hyphens=False, break_long_words=False)
        wrapped = wrapped or [""]
        lines.append(lead + wrapped[0])
        lines += [" " * len(lead) + more for more in wrapped[1:]]
    return [line.rstrip() for line in lines]


_MARKS = {True: "+", False: "-", None: "?"}


def render_text(report: ProbeReport, evidence_width: int = _TEXT_EVIDENCE_CHARS) -> str:
    """The report as the table people read (pure).

    Args:
        report: The probe's findings.
        evidence_width: The evidence column is wrapped at this many characters.

    Returns:
        The text, ending with a newline.
    """
    lines = [
        f"customllm probe: {report.base_url}  model {report.model}  "
        f"({report.requests} requests, {report.duration_s:.1f} s)",
        "",
    ]
    table_rows = [
        [f"{_MARKS[row.supported]} {row.label}", row.result, row.evidence] for row in report.rows
    ]
    lines += _table(["  capability", "result", "evidence"], table_rows, evidence_width)
    lines.append("")
    best = report.best
    if best is None:
        lines.append("Best matching profile: none (nothing could be measured)")
    else:
        hint = f"; server looks like {report.server_hint}" if report.server_hint else ""
        lines.append(
            f"Best matching profile: {best.name} "
            f"({best.agree}/{best.compared} measured facts agree{hint})"
        )
        others = ", ".join(f"{m.name} {m.agree}/{m.compared}" for m in report.matches[1:])
        if others:
            lines.append(f"  others: {others}")
        if best.differences:
            lines.append(f"  differences from {best.name} (profile → measured):")
            for key, (profile_value, measured) in best.differences.items():
                lines.append(f"    {key}: {_py(profile_value)} → {_py(measured)}")
        else:
            lines.append(f"  differences from {best.name}: none")
    lines += ["", "Recommended:", f"  {report.recommendation()}"]
    if report.notes:
        lines += ["", "Notes:"]
        lines += [f"  - {note}" for note in report.notes]
    return "\n".join(lines) + "\n"


def render_json(report: ProbeReport) -> str:
    """The report as one JSON object (``--json``), pure."""
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"


def render_profiles(markdown: bool = False) -> str:
    """The `PROFILES` as a table: one row per field, one column per profile (pure).

    Args:
        markdown: A Markdown table (for the docs) instead of aligned text.
    """
    names = list(PROFILES)
    header = ["field", *names]
    rows = [[k, *(_py(profile_dict(PROFILES[n])[k]) for n in names)] for k in PROFILE_FIELDS]
    if markdown:
        out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        out += [
            "| " + " | ".join(f"`{c}`" if i else c for i, c in enumerate(r)) + " |" for r in rows
        ]
        return "\n".join(out) + "\n"
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    out = ["  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip() for r in [header, *rows]]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- I/O


class Prober:
    """Sends the probe's requests through an ``httpx.Client`` and judges the answers.

    Args:
        base_url: The API root (``.../v1``).
        model: The model name; None takes the first one ``/models`` lists.
        api_key: The key, or None.
        api_key_env: The environment variable it came from (for the recommendation).
        timeout: Seconds per request.
        transport: An httpx transport (tests pass an ``httpx.MockTransport``).
        progress: Called with each step's name (e.g. to show progress on a terminal).
    """

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        *,
        api_key: str | None = None,
        api_key_env: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self._key = api_key or None
        self.api_key_env = api_key_env
        self.timeout = timeout
        self._transport = transport
        self._progress = progress or (lambda _step: None)
        self.exchanges: list[Exchange] = []
        self.skipped = 0
        self._failures = 0

    def _headers(self, key: str | None) -> dict[str, str]:
        headers = {
            "content-type": "application/json",
            "accept": "application/json, text/event-stream",
            "user-agent": "langchain-customllm-probe/0.1",
            # A fresh connection each time: llama.cpp closes the socket after some failures
            # (malformed JSON, an empty streamed body), which breaks a reused one.
            "connection": "close",
        }
        if key:
            headers["authorization"] = f"Bearer {key}"
        return headers

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, "**********") if self._key else text

    def send(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        key: str | bool | None = True,
    ) -> Exchange:
        """Send one request and record it (the only method that does network I/O).

        Args:
            method: HTTP method.
            path: Path below the base URL.
            body: JSON body.
            raw: Raw bytes to send instead of ``body`` (the malformed-JSON probe).
            key: True sends the configured key; False or None sends none; a string sends
                that key instead (the wrong-key probe).

        Returns:
            The exchange; transport failures are recorded in it, not raised.
        """
        secret = self._key if key is True else key or None
        ex = Exchange(method, path, body)
        if self._failures >= _MAX_CONSECUTIVE_FAILURES:
            ex.error = "skipped: the server stopped answering"
            ex.error_kind = "skipped"
            self.skipped += 1
            return ex
        content = (
            raw if raw is not None else json.dumps(body).encode() if body is not None else None
        )
        started = time.monotonic()
        try:
            with httpx.Client(timeout=self.timeout, transport=self._transport) as client:
                response = client.request(
                    method,
                    f"{self.base_url}{path}",
                    content=content,
                    headers=self._headers(secret if isinstance(secret, str) else None),
                )
            ex.status = response.status_code
            ex.content_type = response.headers.get("content-type", "")
            ex.text = self._scrub(response.text)
            ex.headers = {k.lower(): self._scrub(v) for k, v in response.headers.items()}
            self._failures = 0
        except httpx.HTTPError as exc:
            kind = (
                "connect"
                if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
                else "timeout"
                if isinstance(exc, httpx.TimeoutException)
                else "protocol"
            )
            ex.error = self._scrub(f"{type(exc).__name__}: {exc}")
            ex.error_kind = kind
            self._failures += 1
        ex.elapsed = time.monotonic() - started
        self.exchanges.append(ex)
        return ex

    def chat(self, **fields_: Any) -> Exchange:
        """POST ``/chat/completions`` with the probe's defaults, overridden by ``fields_``."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "user", "content": CHAT_PROMPT}],
            "max_tokens": CHAT_MAX_TOKENS,
            "temperature": 0,
            "seed": SEED,
        }
        body.update(fields_)
        return self.send("POST", "/chat/completions", body)

    def run(self) -> ProbeReport:
        """Probe the server.

        Returns:
            The report.

        Raises:
            ServerUnreachableError: If nothing answers at the base URL.
            ProbeUsageError: If no model was given and ``/models`` names none.
        """
        started = time.monotonic()
        step = self._progress
        step("models")
        models = self.send("GET", "/models")
        if models.error_kind == "connect":
            raise ServerUnreachableError(f"Cannot reach {self.base_url}: {models.error}")
        if self.model is None:
            self.model = _first_model(models)
            if self.model is None:
                raise ProbeUsageError(
                    f"{self.base_url}/models lists no model ({models.summary()}); pass --model"
                )
        rows: list[Row] = []
        facts: Facts = {}

        def take(judged: Judged) -> None:
            rows.extend(judged[0])
            facts.update(judged[1])

        step("chat")
        baseline = self.chat()
        if baseline.error_kind == "connect":
            raise ServerUnreachableError(f"Cannot reach {self.base_url}: {baseline.error}")
        take(judge_chat(baseline))
        notes: list[str] = []
        if not facts["chat"]:
            hint = {
                401: "the server wants a key: pass --api-key-env VAR",
                403: "the key is not allowed to use this model",
                404: "check --base-url (the /v1 root) and --model",
            }.get(baseline.status or 0)
            notes.append(
                "chat completions failed, nothing else was measured" + (f": {hint}" if hint else "")
            )
            return self._report(rows, facts, models, baseline, notes, started, chat_ok=False)

        # Grouped by prompt: llama.cpp-style servers reuse the last prompt's cache, so
        # requests that share the baseline's prompt come first, one after the other.
        unknown: list[Exchange] = []
        probes: list[tuple[str, Callable[[], Judged]]] = [
            ("streaming", lambda: judge_stream(self._stream_baseline(), baseline)),
            ("stop", lambda: self._probe_stop(baseline)),
            ("max_tokens", lambda: judge_max_tokens(self.chat(max_tokens=3), 3)),
            (
                "logprobs",
                lambda: judge_logprobs(self.chat(logprobs=True, top_logprobs=2, max_tokens=2)),
            ),
            ("n", lambda: judge_n(self.chat(n=2, max_tokens=2))),
            ("unknown model", lambda: self._probe_unknown_model(unknown)),
            ("completions", self._probe_completions),
            ("seed", self._probe_seed),
            ("json", self._probe_json),
            ("tools", self._probe_tools),
            ("image", self._probe_image),
            ("errors", lambda: self._probe_errors(unknown[0])),
        ]
        for name, probe in probes:
            step(name)
            take(probe())
        rows.sort(key=_row_rank)

        if facts.get("image_verdict") in ("ignored", "as_text"):
            notes.append(
                "image input: the server took the image without error; whether the model saw it "
                "is judged only from the answer (does it say red?), so a weak vision model "
                "looks like a server that drops images"
            )
        if facts.get("tool_stream_auto") is None and facts.get("tool_calling"):
            notes.append(
                "streamed tool calls under tool_choice auto were not measured (the model "
                "picked no tool); the profile's tool_stream_auto is kept"
            )
        if self.skipped:
            notes.append(f"{self.skipped} requests skipped: the server stopped answering")
        return self._report(rows, facts, models, baseline, notes, started, chat_ok=True)

    # Each probe sends its requests and hands the answers to the matching judge.

    def _probe_completions(self) -> Judged:
        body = {
            "model": self.model,
            "prompt": COMPLETION_PROMPT,
            "max_tokens": 4,
            "temperature": 0,
            "seed": SEED,
        }
        return judge_completions(self.send("POST", "/completions", body))

    def _stream_baseline(self) -> Exchange:
        # The baseline request, streamed: its usage is compared with the baseline's.
        return self.chat(stream=True, stream_options={"include_usage": True})

    def _probe_stop(self, baseline: Exchange) -> Judged:
        text = baseline.content() or ""
        stop = pick_stop(text)
        if stop is None:
            row = _skipped("stop", "stop sequences", f"no word to stop at in {_quote(text)}")
            return [row], {"stop_honoured": None, "stop_included": None}
        return judge_stop(text, stop, self.chat(stop=[stop]))

    def _probe_seed(self) -> Judged:
        seeded: dict[str, Any] = {
            "messages": [{"role": "user", "content": SEED_PROMPT}],
            "temperature": 1.0,
            "max_tokens": 8,
        }
        return judge_seed(
            self.chat(**seeded), self.chat(**seeded), self.chat(**seeded, seed=SEED + 1)
        )

    def _probe_json(self) -> Judged:
        ask: dict[str, Any] = {
            "messages": [{"role": "user", "content": JSON_PROMPT}],
            "max_tokens": 24,
        }
        rows, facts = judge_json_mode(self.chat(**ask, response_format={"type": "json_object"}))
        native = {
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": CITY_SCHEMA, "strict": True},
        }
        more_rows, more_facts = judge_json_schema(
            self.chat(**ask, response_format=native),
            self.chat(**ask, response_format={"type": "json_object", "schema": CITY_SCHEMA}),
        )
        return rows + more_rows, {**facts, **more_facts}

    def _probe_tools(self) -> Judged:
        ask: dict[str, Any] = {
            "messages": [{"role": "user", "content": TOOL_PROMPT}],
            "tools": [WEATHER_TOOL],
            "max_tokens": 24,
        }
        auto = self.chat(**ask, tool_choice="auto")
        named = self.chat(**ask, tool_choice=NAMED_CHOICE)
        required = self.chat(**ask, tool_choice="required")
        stream_named = self.chat(**ask, tool_choice=NAMED_CHOICE, stream=True)
        # A streamed auto answer only says something about tool calls if auto picks one.
        stream_auto = (
            self.chat(**ask, tool_choice="auto", stream=True) if _tool_calls(auto) else None
        )
        strict = None
        if any(how == "string" for _, _, how in _tool_calls(named)):
            tool = {"type": "function", "function": {**WEATHER_TOOL["function"], "strict": True}}
            strict = self.chat(**{**ask, "tools": [tool]}, tool_choice=NAMED_CHOICE)
        return judge_tools(auto, named, required, stream_named, stream_auto, strict)

    def _probe_image(self) -> Judged:
        data_url = image_data_url()
        text_part = {"type": "text", "text": IMAGE_PROMPT}
        image_part = {"type": "image_url", "image_url": {"url": data_url}}

        def ask(content: Any) -> Exchange:
            return self.chat(messages=[{"role": "user", "content": content}], max_tokens=8)

        return judge_image(
            ask(IMAGE_PROMPT), ask([text_part]), ask([text_part, image_part]), data_url
        )

    def _probe_unknown_model(self, keep: list[Exchange]) -> Judged:
        # Sent with the baseline's prompt (cheap on a prompt cache), judged with the errors.
        keep.append(self.chat(model=UNKNOWN_MODEL, max_tokens=1))
        return [], {}

    def _probe_errors(self, unknown: Exchange) -> Judged:
        malformed = self.send("POST", "/chat/completions", raw=MALFORMED_BODY)
        wrong_key = no_key = None
        if self._key:
            wrong_key = self._chat_with_key(WRONG_KEY)
            no_key = self._chat_with_key(None)
        return judge_errors(unknown, malformed, wrong_key, no_key)

    def _chat_with_key(self, key: str | None) -> Exchange:
        body = {
            "model": self.model,
            "messages": [{"role": "user", "content": CHAT_PROMPT}],
            "max_tokens": 1,
            "temperature": 0,
        }
        return self.send("POST", "/chat/completions", body, key=key)

    def _report(
        self,
        rows: list[Row],
        facts: Facts,
        models: Exchange,
        baseline: Exchange,
        notes: list[str],
        started: float,
        *,
        chat_ok: bool,
    ) -> ProbeReport:
        hint = guess_family(models, baseline.headers)
        matches = score_profiles(facts, hint=hint) if chat_ok else []
        return ProbeReport(
            base_url=self.base_url,
            model=self.model or "",
            rows=rows,
            facts=facts,
            matches=matches,
            server_hint=hint,
            api_key_env=self.api_key_env,
            requests=len(self.exchanges),
            duration_s=time.monotonic() - started,
            chat_ok=chat_ok,
            notes=notes,
        )


def _first_model(models: Exchange) -> str | None:
    data = models.json() if models.ok else None
    items = data.get("data") if isinstance(data, dict) else None
    if isinstance(items, list) and items and isinstance(items[0], dict):
        model_id = items[0].get("id")
        return str(model_id) if model_id else None
    return None


def run_probe(
    base_url: str,
    model: str | None = None,
    *,
    api_key: str | None = None,
    api_key_env: str | None = None,
    timeout: float = 30.0,
    transport: httpx.BaseTransport | None = None,
    progress: Callable[[str], None] | None = None,
) -> ProbeReport:
    """Probe a server and return what it can do (see `Prober` for the arguments).

    Raises:
        ServerUnreachableError: If nothing answers at ``base_url``.
        ProbeUsageError: If no model was given and the server lists none.
    """
    return Prober(
        base_url,
        model,
        api_key=api_key,
        api_key_env=api_key_env,
        timeout=timeout,
        transport=transport,
        progress=progress,
    ).run()


# --------------------------------------------------------------------------- command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="customllm", description="Tools for langchain-customllm.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    probe = commands.add_parser(
        "probe",
        help="measure what an OpenAI-compatible server can do",
        description="Send small real requests to an OpenAI-compatible server and print what "
        "it can do, the server profile that fits and the ChatCustomLLM(...) to use.",
    )
    probe.add_argument("--base-url", required=True, help="the API root, e.g. http://host:8000/v1")
    probe.add_argument("--model", help="model name (default: the first one /models lists)")
    probe.add_argument(
        "--api-key-env",
        metavar="VAR",
        help="name of the environment variable holding the API key (the key is never printed)",
    )
    probe.add_argument("--json", action="store_true", help="print one JSON object")
    probe.add_argument(
        "--timeout", type=float, default=30.0, metavar="S", help="seconds per request (30)"
    )
    profiles = commands.add_parser("profiles", help="list the built-in server profiles")
    profiles.add_argument("--markdown", action="store_true", help="as a Markdown table")
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
    transport: httpx.BaseTransport | None = None,
) -> int:
    """The ``customllm`` command.

    Args:
        argv: Arguments after the program name (default: ``sys.argv[1:]``).
        stdout: Where the report goes (default: ``sys.stdout``).
        stderr: Where errors and progress go (default: ``sys.stderr``).
        environ: Where ``--api-key-env`` is looked up (default: ``os.environ``).
        transport: An httpx transport (tests).

    Returns:
        The exit code: 0 ok, 1 chat completions failed, 2 usage error, 3 unreachable.
    """
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    env = os.environ if environ is None else environ
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help exits 0, bad usage 2
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    if args.command == "profiles":
        out.write(render_profiles(markdown=args.markdown))
        return EXIT_OK
    if args.command != "probe":
        parser.print_help(err)
        return EXIT_USAGE
    try:
        url = httpx.URL(args.base_url)
    except httpx.InvalidURL:
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        err.write(f"customllm probe: --base-url must be an http(s) URL, got {args.base_url!r}\n")
        return EXIT_USAGE
    if args.timeout <= 0:
        err.write("customllm probe: --timeout must be positive\n")
        return EXIT_USAGE
    key = None
    if args.api_key_env:
        key = env.get(args.api_key_env)
        if not key:
            err.write(
                f"customllm probe: environment variable {args.api_key_env} is not set or empty\n"
            )
            return EXIT_USAGE
    progress = None
    if not args.json and err.isatty():

        def progress(step: str) -> None:
            err.write(f"\rprobing {step}...{' ' * 12}")
            err.flush()

    try:
        report = run_probe(
            args.base_url,
            args.model,
            api_key=key,
            api_key_env=args.api_key_env,
            timeout=args.timeout,
            transport=transport,
            progress=progress,
        )
    except ServerUnreachableError as exc:
        err.write(f"customllm probe: {exc}\n")
        return EXIT_UNREACHABLE
    except ProbeUsageError as exc:
        err.write(f"customllm probe: {exc}\n")
        return EXIT_USAGE
    finally:
        if progress is not None:
            err.write("\r" + " " * 40 + "\r")
    out.write(render_json(report) if args.json else render_text(report))
    return EXIT_OK if report.chat_ok else EXIT_CHAT_FAILED
