"""A tiny, safe path language to pick values out of JSON answers.

Grammar (compiled once, at configuration time, so a typo fails before any request)::

    path     := step ( "." name | "[" index "]" )*
    step     := name | "[" index "]"
    name     := [A-Za-z0-9_$-]+  |  '"' any characters but '"' '"'
    index    := an integer (negative counts from the end)  |  '"' key '"'

Examples: ``outputs[0].text``, ``choices[-1].delta.content``, ``meta."x.y"``, ``[0].text``.
Nothing is evaluated: a path only walks dict keys and list indices.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from langchain_customllm._exceptions import ConfigurationError, ResponseError
from langchain_customllm._text import excerpt

__all__ = ["MISSING", "Selector", "SelectorMiss", "compile_paths", "compile_selector", "select"]

_NAME = re.compile(r"[A-Za-z0-9_$\-]+")
_INDEX = re.compile(r"-?\d+")


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
"""Returned by `Selector.find` when the path does not exist."""


@dataclass(frozen=True)
class SelectorMiss:
    """Where and why a path did not resolve (for error messages)."""

    path: str
    at: str
    reason: str

    def __str__(self) -> str:
        where = f" at `{self.at}`" if self.at else ""
        return f"`{self.path}` not found{where}: {self.reason}"


@dataclass(frozen=True)
class Selector:
    """A compiled path. Use `find` (value or `MISSING`) or `explain` (why it missed)."""

    path: str
    steps: tuple[str | int, ...]

    def find(self, data: Any) -> Any:
        """Return the value at the path, or `MISSING`."""
        current = data
        for step in self.steps:
            if isinstance(step, int):
                if not isinstance(current, list) or not -len(current) <= step < len(current):
                    return MISSING
                current = current[step]
            else:
                if not isinstance(current, dict) or step not in current:
                    return MISSING
                current = current[step]
        return current

    def explain(self, data: Any) -> SelectorMiss:
        """Describe the first step that failed (call after `find` returned `MISSING`)."""
        current = data
        walked = ""
        for step in self.steps:
            label = f"[{step}]" if isinstance(step, int) else (f".{step}" if walked else step)
            if isinstance(step, int):
                if not isinstance(current, list):
                    return SelectorMiss(self.path, walked, f"expected a list, got {_kind(current)}")
                if not -len(current) <= step < len(current):
                    return SelectorMiss(
                        self.path, walked, f"index {step} out of range (list of {len(current)})"
                    )
                current = current[step]
            else:
                if not isinstance(current, dict):
                    return SelectorMiss(
                        self.path, walked, f"expected an object, got {_kind(current)}"
                    )
                if step not in current:
                    keys = ", ".join(sorted(map(str, current))[:8]) or "none"
                    return SelectorMiss(self.path, walked, f"no key {step!r} (keys: {keys})")
                current = current[step]
            walked += label
        return SelectorMiss(self.path, "", "resolved")  # pragma: no cover - not a miss


def select(selector: Selector, data: Any, format_name: str, *, required: bool) -> Any:
    """What ``selector`` finds in an answer: the value, None when absent and optional.

    Raises:
        ResponseError: When a required value is absent, saying where the path stopped.
    """
    value = selector.find(data)
    if value is not MISSING:
        return value
    if required:
        raise ResponseError(
            f"custom wire format {format_name!r}: {selector.explain(data)}; got: {excerpt(data)}",
            body=data,
        )
    return None


def compile_paths(paths: Mapping[str, str | None], where: str) -> dict[str, Selector]:
    """Compile the declared paths of one section of a custom format (None: not declared).

    Args:
        paths: Field name to path, as the section holds them.
        where: The section's name, for messages (``"embed"``, ``"image"``).

    Raises:
        ConfigurationError: Naming ``where.field`` and what is wrong with its path.
    """
    compiled = {}
    for key, path in paths.items():
        if path is None:
            continue
        try:
            compiled[key] = compile_selector(path)
        except ConfigurationError as exc:
            raise ConfigurationError(f"custom wire format, {where}.{key}: {exc}") from None
    return compiled


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return f"a string ({json.dumps(value[:40])})"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    return type(value).__name__


def compile_selector(path: str) -> Selector:
    """Parse a path into a `Selector`.

    Raises:
        ConfigurationError: With the position and the reason, for a malformed path.
    """
    if not isinstance(path, str) or not path.strip():
        raise ConfigurationError(f"A response path must be a non-empty string, got {path!r}")
    steps: list[str | int] = []
    i, n = 0, len(path)
    expect_name = True  # at the start, or right after a "."
    while i < n:
        ch = path[i]
        if ch == "[":
            end = path.find("]", i)
            if end < 0:
                raise _syntax(path, i, "unclosed '['")
            inner = path[i + 1 : end]
            if _INDEX.fullmatch(inner):
                steps.append(int(inner))
            elif len(inner) >= 2 and inner[0] == inner[-1] == '"':
                steps.append(inner[1:-1])
            else:
                raise _syntax(path, i, f"'[{inner}]' is neither an integer nor a quoted key")
            i = end + 1
            expect_name = False
        elif ch == ".":
            if expect_name:
                raise _syntax(path, i, "empty name before '.'")
            i += 1
            expect_name = True
            if i >= n:
                raise _syntax(path, i, "path ends with '.'")
        elif expect_name:
            if ch == '"':
                end = path.find('"', i + 1)
                if end < 0:
                    raise _syntax(path, i, "unclosed quote")
                steps.append(path[i + 1 : end])
                i = end + 1
            else:
                match = _NAME.match(path, i)
                if not match:
                    raise _syntax(path, i, f"unexpected character {ch!r}")
                steps.append(match.group())
                i = match.end()
            expect_name = False
        else:
            raise _syntax(path, i, f"expected '.' or '[' before {ch!r}")
    return Selector(path=path, steps=tuple(steps))


def _syntax(path: str, pos: int, reason: str) -> ConfigurationError:
    return ConfigurationError(f"Invalid response path {path!r} at position {pos}: {reason}")
