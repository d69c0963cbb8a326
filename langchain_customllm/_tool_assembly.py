"""Tool calls, from the pieces a format parsed to what the caller sees. Pure.

`ToolCallAssembler` is the tool-call half of `langchain_customllm._assembly.Assembler`: it
evens out how servers stream calls and undoes one server quirk, so every server looks the
same to the caller:

- llama.cpp repeats each call's ``id`` and ``name`` in every chunk, vLLM sends them once:
  they are kept on a call's first fragment only, so merged chunks spell them once.
- Tool arguments sent as a JSON *string* that holds the JSON object (how vLLM can answer a
  tool without ``strict``; the ``vllm`` profile sends ``strict``, which avoids it) are
  unwrapped once, so ``tool_calls[i]["args"]`` is a dict; streamed, such a call's argument
  fragments are held back and sent, unwrapped, with the final piece. A string that holds
  no object (vLLM 0.32 here answers ``"Paris"`` for a non-strict ``get_weather(city)``) is
  left as it came.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Literal

from langchain_customllm.formats.base import ToolCallPiece

__all__ = ["ToolCallAssembler", "unwrap_string_args"]


def unwrap_string_args(args: str) -> str | None:
    """The inner JSON of tool arguments that arrived as a JSON string holding JSON.

    A JSON string literal whose content is ``{"city": "Paris"}`` becomes that object's JSON
    text. Only a string whose content parses as a JSON object is unwrapped; for anything
    else (an object already, a bare string such as ``"Paris"``) this returns None and the
    arguments are left to the usual parsing.
    """
    if not args.lstrip().startswith('"'):
        return None
    try:
        inner = json.loads(args)
    except ValueError:
        return None
    if not isinstance(inner, str):
        return None
    try:
        parsed = json.loads(inner)
    except ValueError:
        return None
    return inner if isinstance(parsed, dict) else None


def _unwrapped(call: ToolCallPiece) -> ToolCallPiece:
    inner = unwrap_string_args(call.args)
    if inner is None:
        return call
    return ToolCallPiece(index=call.index, id=call.id, name=call.name, args=inner)


# How a streamed call's arguments look so far: only whitespace, an object (passed on as it
# comes), or a JSON string (held back until the end, then unwrapped).
_ArgsShape = Literal["undecided", "object", "string"]


class ToolCallAssembler:
    """Collects one answer's tool calls (see the module docstring)."""

    def __init__(self) -> None:
        self._seen: dict[int, tuple[str | None, str | None]] = {}
        self._args_shape: dict[int, _ArgsShape] = {}
        self._args_held: dict[int, str] = {}

    @staticmethod
    def whole(calls: Sequence[ToolCallPiece]) -> list[ToolCallPiece]:
        """A whole answer's calls, string-wrapped arguments unwrapped."""
        return [_unwrapped(call) for call in calls]

    def feed(self, calls: Sequence[ToolCallPiece]) -> list[ToolCallPiece]:
        """One stream event's fragments, as they are to be emitted now.

        Each call's id and name stay on its first fragment only; a JSON string's argument
        fragments are held back for `finish`; fragments left with nothing are dropped.
        """
        return [
            call
            for call in (self._hold_string_args(self._first_mention(c)) for c in calls)
            if call.id or call.name or call.args
        ]

    def _first_mention(self, call: ToolCallPiece) -> ToolCallPiece:
        # llama.cpp repeats id and name in every chunk, vLLM sends them once: keep each
        # call's id and name on its first fragment only, so merged chunks spell them once.
        seen_id, seen_name = self._seen.get(call.index, (None, None))
        call_id = call.id if call.id and not seen_id else None
        name = call.name if call.name and not seen_name else None
        self._seen[call.index] = (seen_id or call.id, seen_name or call.name)
        if call_id == call.id and name == call.name:
            return call
        return ToolCallPiece(index=call.index, id=call_id, name=name, args=call.args)

    def _hold_string_args(self, call: ToolCallPiece) -> ToolCallPiece:
        """Pass object arguments on as they come; hold back a JSON string's fragments.

        Whether a call's arguments are a string is known from their first non-blank
        character; until then (blank fragments) they are held back too.
        """
        shape = self._args_shape.get(call.index, "undecided")
        if shape == "object" or not call.args:
            return call
        held = self._args_held.get(call.index, "") + call.args
        if shape == "undecided":
            stripped = held.lstrip()
            if not stripped:
                self._args_held[call.index] = held
                return ToolCallPiece(index=call.index, id=call.id, name=call.name)
            shape = "string" if stripped.startswith('"') else "object"
            self._args_shape[call.index] = shape
            if shape == "object":
                self._args_held.pop(call.index, None)
                return ToolCallPiece(index=call.index, id=call.id, name=call.name, args=held)
        self._args_held[call.index] = held
        return ToolCallPiece(index=call.index, id=call.id, name=call.name)

    def finish(self) -> list[ToolCallPiece]:
        """End of stream: the held-back arguments, unwrapped where they hold a JSON object."""
        released = []
        for index, held in sorted(self._args_held.items()):
            if self._args_shape.get(index) == "string":
                released.append(ToolCallPiece(index=index, args=unwrap_string_args(held) or held))
        self._args_held.clear()
        return released
