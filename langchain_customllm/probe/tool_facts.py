"""Judging tool calling: auto, forced by name, required, streamed and ``strict`` (pure)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_customllm.probe.facts import lost_verdict, skipped_row
from langchain_customllm.probe.records import (
    Exchange,
    Facts,
    Judged,
    Row,
    Stream,
    parse_json,
    parse_sse,
    quote,
)


def _parse_args(arguments: Any) -> tuple[Any, str]:
    """Decode tool-call arguments; returns (value, how): how is json, string or invalid."""
    if isinstance(arguments, dict):
        return arguments, "json"
    if not isinstance(arguments, str):
        return None, "invalid"
    parsed, value = parse_json(arguments)
    if not parsed:
        return None, "invalid"
    if isinstance(value, str):  # vLLM without strict: a JSON string (of JSON, or a bare value)
        parsed, inner = parse_json(value)
        return (inner if parsed else value), "string"
    return value, "json" if isinstance(value, dict) else "invalid"


def tool_calls(ex: Exchange) -> list[tuple[str, Any, str]]:
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


def string_args(ex: Exchange) -> bool:
    """Whether a tool call's arguments came as a JSON string, not an object (vLLM)."""
    return any(how == "string" for _, _, how in tool_calls(ex))


def _call_text(name: str, args: Any) -> str:
    return f"{name}({json.dumps(args, ensure_ascii=False) if args is not None else '?'})"


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
        evidence = f"{len(stream.events)} events, no tool_calls, text {quote(stream.text())}"
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
            rows.extend(lost_verdict(ex, key, label)[0])
            return None
        if not ex.ok:
            rows.append(Row(key, label, f"error ({ex.status or 'no answer'})", False, ex.summary()))
            return False
        calls = tool_calls(ex)
        if not calls:
            evidence = f"{ex.status}, text {quote(ex.content())}, finish {ex.finish_reason()}"
            rows.append(Row(key, label, "no tool call", False, evidence))
            return False
        name, args, how = calls[0]
        evidence = f"{ex.status}, {_call_text(name, args)}, finish {ex.finish_reason()}"
        if how == "string":
            inner = "holding a JSON object" if isinstance(args, dict) else "not an object"
            evidence += f"; arguments are a JSON string, {inner}"
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
            skipped_row(
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

    named_string_args = string_args(named)
    if strict is not None:
        strict_calls = tool_calls(strict)
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
    if named_string_args and strict is None:
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
