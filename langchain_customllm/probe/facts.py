"""Judging recorded exchanges into table rows and capability facts (pure: no I/O).

Each ``judge_*`` takes the `Exchange` objects one probe recorded and returns a `Judged`:
the rows to show and the facts measured (`ServerProfile` field names plus extra ones).
Tool calling is judged in `langchain_customllm.probe.tool_facts`.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec

from langchain_customllm.probe.payloads import SEED
from langchain_customllm.probe.records import (
    Exchange,
    Judged,
    Row,
    parse_json,
    parse_sse,
    quote,
)

P = ParamSpec("P")


def _usage_text(usage: Mapping[str, Any] | None) -> str:
    if not usage:
        return "no usage"
    return f"usage {usage.get('prompt_tokens')}+{usage.get('completion_tokens')}"


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


def row_rank(row: Row) -> int:
    """Where ``row`` goes in the table: its place in `ROW_ORDER` (unknown keys last)."""
    return ROW_ORDER.index(row.key) if row.key in ROW_ORDER else len(ROW_ORDER)


def skipped_row(key: str, label: str, why: str) -> Row:
    """A row for a check that was not run, saying ``why``."""
    return Row(key, label, "not tested", None, why)


def lost_verdict(ex: Exchange, key: str, label: str, *facts: str) -> Judged:
    """A row for a request that got no answer: nothing can be told from it."""
    return [Row(key, label, "no answer", None, ex.summary())], dict.fromkeys(facts)


def _verdict(
    key: str, label: str, result: str, supported: bool | None, evidence: str, **facts: Any
) -> Judged:
    """One row and the facts it shows."""
    return [Row(key, label, result, supported, evidence)], facts


@dataclass(frozen=True)
class _Check:
    """One row that decides one fact: its key, label and fact name, spelled once."""

    key: str
    label: str
    fact: str

    def verdict(self, result: str, supported: bool | None, evidence: str, value: Any) -> Judged:
        """The row, and the fact set to ``value``."""
        return [Row(self.key, self.label, result, supported, evidence)], {self.fact: value}

    def answered(
        self, judge: Callable[Concatenate[Exchange, P], Judged]
    ) -> Callable[Concatenate[Exchange, P], Judged]:
        """Decorate a judge of one exchange so that it sees 2xx answers only.

        A request that got no answer tells nothing (the fact stays unknown); one answered
        with an error status is a "no".
        """

        @functools.wraps(judge)
        def run(ex: Exchange, /, *args: P.args, **kwargs: P.kwargs) -> Judged:
            if ex.status is None:
                return lost_verdict(ex, self.key, self.label, self.fact)
            if not ex.ok:
                return self.verdict("error", False, ex.summary(), False)
            return judge(ex, *args, **kwargs)

        return run


def judge_chat(ex: Exchange) -> Judged:
    """Judge the baseline chat completion."""
    label = "chat completions"
    if ex.status is None:
        return _verdict("chat", label, "no answer", False, ex.summary(), chat=False)
    content = ex.content()
    if ex.ok and content is not None:
        evidence = (
            f"{ex.status}, {quote(content)} (finish {ex.finish_reason()}, "
            f"{_usage_text(ex.usage())})"
        )
        return _verdict("chat", label, "yes", True, evidence, chat=True)
    evidence = ex.summary() if not ex.ok else f"{ex.status}, no message content"
    return _verdict("chat", label, "no", False, evidence, chat=False)


def judge_completions(ex: Exchange) -> Judged:
    """Judge ``/completions`` (legacy text completion)."""
    label = "completions (/completions)"
    if ex.status is None:
        return lost_verdict(ex, "completions", label, "completions")
    choice = ex.first_choice()
    text = choice.get("text")
    if ex.ok and isinstance(text, str):
        evidence = f"{ex.status}, {quote(text)} (finish {choice.get('finish_reason')})"
        return _verdict("completions", label, "yes", True, evidence, completions=True)
    return _verdict("completions", label, "no", False, ex.summary(), completions=False)


def judge_stream(ex: Exchange, baseline: Exchange) -> Judged:
    """Judge a streamed chat answer, and its usage (asked with ``include_usage``).

    Args:
        ex: The streamed request (the baseline's body plus ``stream`` and
            ``stream_options.include_usage``).
        baseline: The same request, not streamed: its usage tells whether streamed usage
            is the model's count or an estimate.
    """
    usage_label = "stream usage (include_usage)"
    if ex.status is None:
        rows, facts = lost_verdict(ex, "streaming", "streaming", "streaming", "stream_usage")
        rows.append(skipped_row("stream_usage", usage_label, "no answer"))
        return rows, facts
    if not ex.ok:
        rows, facts = _verdict(
            "streaming", "streaming", "no", False, ex.summary(), streaming=False, stream_usage=None
        )
        rows.append(skipped_row("stream_usage", usage_label, "streaming failed"))
        return rows, facts
    stream = parse_sse(ex.text)
    text = stream.text()
    kind = ex.media_type() or "no content type"
    streaming = bool(stream.events) and (bool(text) or stream.finish_reason() is not None)
    done = ", [DONE]" if stream.done else ", no [DONE]"
    bad = f", {stream.bad} bad lines" if stream.bad else ""
    evidence = f"{ex.status} {kind}, {len(stream.events)} events{done}{bad}, {quote(text)}"
    same = text == (baseline.content() or "")
    if streaming and baseline.ok:
        evidence += " (same text as non-streamed)" if same else " (text differs from non-streamed)"
    rows = [Row("streaming", "streaming", "yes" if streaming else "no", streaming, evidence)]
    facts = {"streaming": streaming}

    usage = stream.usage()
    base_usage = baseline.usage()
    if usage is None:
        facts.update(stream_usage=False, usage_estimated=None)
        evidence = "include_usage accepted, no usage in any chunk"
        rows.append(Row("stream_usage", usage_label, "no", False, evidence))
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
    rows.append(Row("stream_usage", usage_label, result, True, evidence))
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
    if ex.status is None:
        return lost_verdict(ex, "stop", "stop sequences", "stop_honoured", "stop_included")

    def verdict(
        result: str,
        supported: bool | None,
        evidence: str,
        honoured: bool | None,
        included: bool | None,
    ) -> Judged:
        return _verdict(
            "stop",
            "stop sequences",
            result,
            supported,
            evidence,
            stop_honoured=honoured,
            stop_included=included,
        )

    got = ex.content()
    if not ex.ok or got is None:
        return verdict("error", False, f"stop={[stop]}: {ex.summary()}", False, None)
    finish = ex.finish_reason()
    before = baseline[: baseline.find(stop)]
    evidence = f"stop={json.dumps([stop])} → {quote(got)} (finish {finish})"
    if got.rstrip() == before.rstrip():
        return verdict("honoured, stop text excluded", True, evidence, True, False)
    if got.rstrip() == (before + stop).rstrip():
        return verdict("honoured, stop text included", True, evidence, True, True)
    if got == baseline or (stop in got and not got.rstrip().endswith(stop)):
        return verdict("ignored", False, evidence + "; output ran past it", False, None)
    if finish == "stop" and len(got) < len(baseline):
        included = got.rstrip().endswith(stop)
        kept = "included" if included else "excluded"
        evidence += "; output differs from the unstopped answer (not deterministic?)"
        return verdict(f"honoured?, stop text {kept}", True, evidence, True, included)
    return verdict("unclear", None, evidence, None, None)


_MAX_TOKENS = _Check("max_tokens", "max_tokens", "max_tokens_honoured")


@_MAX_TOKENS.answered
def judge_max_tokens(ex: Exchange, limit: int) -> Judged:
    """Judge ``max_tokens``: output cut at the limit with ``finish_reason: length``."""
    used = (ex.usage() or {}).get("completion_tokens")
    finish = ex.finish_reason()
    evidence = (
        f"max_tokens={limit} → {used if used is not None else '?'} tokens, "
        f"{quote(ex.content())}, finish {finish}"
    )
    if not (used is None or (isinstance(used, int) and used <= limit)):
        return _MAX_TOKENS.verdict("ignored", False, evidence, False)
    result = "honoured (finish length)" if finish == "length" else f"honoured, finish {finish}"
    return _MAX_TOKENS.verdict(result, True, evidence, True)


def judge_seed(first: Exchange, again: Exchange, other: Exchange) -> Judged:
    """Judge ``seed``: same seed twice at temperature 1 → same text? Another seed → other?"""
    label = "seed (temperature 1)"
    lost = next((e for e in (first, again, other) if e.status is None), None)
    if lost is not None:
        return lost_verdict(lost, "seed", label, "seed_deterministic")
    bad = next((e for e in (first, again, other) if not e.ok), None)
    if bad is not None:
        return _verdict("seed", label, "error", False, bad.summary(), seed_deterministic=None)
    a, b, c = first.content(), again.content(), other.content()
    evidence = f"seed {SEED} twice → {quote(a, 40)} / {quote(b, 40)}; seed {SEED + 1} → "
    evidence += quote(c, 40)
    if a != b:
        return _verdict(
            "seed", label, "not deterministic", False, evidence, seed_deterministic=False
        )
    if a == c:
        result = "repeatable, but another seed gave the same text"
        evidence += " (sampling may ignore temperature or seed)"
        return _verdict("seed", label, result, None, evidence, seed_deterministic=None)
    return _verdict("seed", label, "deterministic", True, evidence, seed_deterministic=True)


_LOGPROBS = _Check("logprobs", "logprobs (top_logprobs 2)", "logprobs")


@_LOGPROBS.answered
def judge_logprobs(ex: Exchange) -> Judged:
    """Judge ``logprobs`` + ``top_logprobs``."""
    logprobs = ex.first_choice().get("logprobs")
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    if isinstance(content, list) and content:
        first = content[0] if isinstance(content[0], dict) else {}
        top = first.get("top_logprobs")
        tops = len(top) if isinstance(top, list) else 0
        evidence = (
            f"{len(content)} tokens, first {json.dumps(first.get('token'), ensure_ascii=False)} "
            f"logprob {first.get('logprob')}, {tops} top_logprobs"
        )
        return _LOGPROBS.verdict("yes", True, evidence, True)
    if isinstance(logprobs, dict) and logprobs.get("tokens"):
        evidence = "tokens/token_logprobs lists"
        return _LOGPROBS.verdict("yes (legacy format)", True, evidence, True)
    evidence = f"{ex.status}, logprobs {json.dumps(logprobs)}"
    return _LOGPROBS.verdict("no", False, evidence, False)


_N = _Check("n", "n=2", "n")


@_N.answered
def judge_n(ex: Exchange) -> Judged:
    """Judge ``n: 2``."""
    count = len(ex.choices())
    if count >= 2:
        return _N.verdict("yes", True, f"{count} choices", True)
    return _N.verdict("ignored", False, f"{ex.status}, {count} choice", False)


_JSON_MODE = _Check("json_mode", "JSON mode (json_object)", "json_mode")


@_JSON_MODE.answered
def judge_json_mode(ex: Exchange) -> Judged:
    """Judge ``response_format: {"type": "json_object"}``."""
    text = ex.content()
    finish = ex.finish_reason()
    evidence = f"{quote(text)} (finish {finish})"
    if parse_json(text)[0]:
        return _JSON_MODE.verdict("yes", True, evidence, True)
    if text is not None and text.lstrip().startswith("{") and finish == "length":
        result = "probably (JSON cut by max_tokens)"
        return _JSON_MODE.verdict(result, True, evidence, True)
    return _JSON_MODE.verdict("ignored (not JSON)", False, evidence, False)


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
        elif _is_city(parse_json(text)[1]):
            evidence = f"{quote(text)} (finish {ex.finish_reason()})"
            rows.append(Row(key, label, "yes (schema followed)", True, evidence))
            results.append(True)
        else:
            evidence = f"{ex.status}, {quote(text)} does not follow the schema"
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


def _is_city(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("city"), str)
