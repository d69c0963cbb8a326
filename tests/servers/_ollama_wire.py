"""Ollama emulator wire helpers: Go JSON and time formats, option and field tables, errors."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

_GO_BUFFER = 2048  # net/http bufferBeforeChunkingSize
_METRICS = (
    "total_duration",
    "load_duration",
    "prompt_eval_count",
    "prompt_eval_duration",
    "eval_count",
    "eval_duration",
)
# Ollama option -> llama-cpp-python (OpenAI) parameter.
_OPTIONS = {
    "num_predict": "max_tokens",
    "stop": "stop",
    "temperature": "temperature",
    "seed": "seed",
    "top_p": "top_p",
    "top_k": "top_k",
    "min_p": "min_p",
    "repeat_penalty": "repeat_penalty",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
}
# Go type names in encoding/json's UnmarshalTypeError for the fields we check.
_FIELD_TYPES = {
    "model": (str, "string"),
    "messages": (list, "[]api.Message"),
    "prompt": (str, "string"),
    "system": (str, "string"),
    "stream": (bool, "bool"),
    "raw": (bool, "bool"),
    "options": (dict, "map[string]interface {}"),
}


def go_json(obj: Any) -> bytes:
    """Serialize like Go's ``json.Marshal`` (key order is the caller's: build in struct order)."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    # Go's HTML-safe escaping; these characters only ever occur inside JSON strings.
    for char, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escaped)
    return text.encode()


def rfc3339nano(ns: int) -> str:
    """``time.Time`` in UTC as Go marshals it: nanoseconds, trailing zeros trimmed."""
    seconds, frac = divmod(ns, 1_000_000_000)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    fraction = f"{frac:09d}".rstrip("0")
    return f"{stamp}.{fraction}Z" if fraction else f"{stamp}Z"


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), "null")


def _decode_error(raw: str, exc: json.JSONDecodeError) -> str:
    """The message Go's ``json.Decoder`` gives for the same malformed body (common cases)."""
    if exc.pos >= len(raw.rstrip()) or exc.msg.startswith("Unterminated"):
        return "unexpected EOF"
    char = raw[exc.pos]
    quoted = "'\\''" if char == "'" else f"'{char}'"
    if exc.msg.startswith("Expecting ':'"):
        return f"invalid character {quoted} after object key"
    if exc.msg.startswith("Expecting ','"):
        return f"invalid character {quoted} after object key:value pair"
    if exc.msg.startswith("Expecting property name"):
        return f"invalid character {quoted} looking for beginning of object key string"
    return f"invalid character {quoted} looking for beginning of value"


def _openai_message(message: Any, index: int) -> dict[str, Any]:
    """An Ollama api.Message as the backend's OpenAI message (images dropped: text model)."""
    role = str(message.get("role") or "").lower()  # Message.UnmarshalJSON lowercases it
    out: dict[str, Any] = {"role": role, "content": str(message.get("content") or "")}
    if role == "assistant" and message.get("tool_calls"):
        out["tool_calls"] = [
            {
                "id": call.get("id") or f"call_{index}_{n}",
                "type": "function",
                "function": {
                    "name": call["function"]["name"],
                    "arguments": json.dumps(call["function"].get("arguments") or {}),
                },
            }
            for n, call in enumerate(message["tool_calls"])
        ]
    if role == "tool":
        out["tool_call_id"] = str(message.get("tool_call_id") or f"call_{index}")
    return out


def _done_reason(finish: Any) -> str:
    # The runner knows only "stop" and "length" (llm/server.go DoneReason.String).
    return "length" if finish == "length" else "stop"


def _backend_detail(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        try:
            return str(exc.response.json())[:300]
        except (ValueError, httpx.ResponseNotRead):
            return f"backend answered HTTP {exc.response.status_code}"
    return f"backend unreachable: {exc}"
