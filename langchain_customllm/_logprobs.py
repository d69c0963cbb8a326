"""Token logprobs gathered over one answer and given back in one shape per model kind. Pure.

Servers send logprobs in two shapes, streamed a few tokens per event or whole:

- the chat shape, ``{"content": [{"token", "logprob", "bytes", "top_logprobs": [...]}]}``:
  OpenAI chat completions, and llama.cpp's ``llama-server`` on ``/v1/completions`` too;
- OpenAI's legacy completions shape, parallel lists ``{"tokens", "token_logprobs",
  "top_logprobs" (token -> logprob mappings), "text_offset"}``: vLLM, llama-cpp-python.

`Logprobs` concatenates what each event carries (keeping only the last event's would drop
every earlier token of a stream). A chat model gives the chat shape back; a text model gives
the legacy shape, which is what LangChain's OpenAI text model returns, whatever the server
sent: code reading ``generation_info["logprobs"]["tokens"]`` works on every server.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["LEGACY_KEYS", "Logprobs"]

LEGACY_KEYS = ("tokens", "token_logprobs", "top_logprobs", "text_offset")
"""The parallel lists of OpenAI's legacy completions logprobs."""


class Logprobs:
    """Logprobs of one answer, as its events bring them in."""

    def __init__(self) -> None:
        self._content: list[Any] = []
        self._legacy: dict[str, list[Any]] = {key: [] for key in LEGACY_KEYS}
        self._legacy_seen = False

    def add(self, value: Any) -> bool:
        """Take one event's ``logprobs``; False when it is neither known shape (kept as is)."""
        if not isinstance(value, Mapping):
            return False
        content = value.get("content")
        if isinstance(content, list):
            self._content.extend(content)
            return True
        if isinstance(value.get("tokens"), list):
            self._legacy_seen = True
            for key in LEGACY_KEYS:
                items = value.get(key)
                if isinstance(items, list):
                    self._legacy[key].extend(items)
            return True
        return False

    def chat(self) -> dict[str, Any] | None:
        """The chat shape, or the legacy one if that is all the server sent; None if none."""
        if self._content:
            return {"content": self._content}
        return self._legacy_dict()

    def legacy(self, prompt_chars: int) -> dict[str, Any] | None:
        """OpenAI's legacy completions shape; None if the answer had no logprobs.

        Args:
            prompt_chars: Length of the prompt: where the first generated token starts in
                ``text_offset`` when it is computed here (OpenAI counts from the prompt's
                start, as llama-cpp-python does).
        """
        if self._legacy_seen or not self._content:
            return self._legacy_dict()
        tokens: list[str] = []
        offsets: list[int] = []
        position = prompt_chars
        for entry in self._content:
            token = str(entry.get("token", "")) if isinstance(entry, Mapping) else ""
            tokens.append(token)
            offsets.append(position)
            position += len(token)
        return {
            "tokens": tokens,
            "token_logprobs": [_field(entry, "logprob") for entry in self._content],
            "top_logprobs": [_alternatives(entry) for entry in self._content],
            "text_offset": offsets,
        }

    def _legacy_dict(self) -> dict[str, Any] | None:
        if not self._legacy_seen:
            return None
        return {key: items for key, items in self._legacy.items() if items or key == "tokens"}


def _field(entry: Any, key: str) -> Any:
    return entry.get(key) if isinstance(entry, Mapping) else None


def _alternatives(entry: Any) -> dict[str, Any]:
    """One token's alternatives as the legacy shape's token -> logprob mapping."""
    alternatives = _field(entry, "top_logprobs")
    if not isinstance(alternatives, list):
        return {}
    return {
        str(alt.get("token", "")): alt.get("logprob")
        for alt in alternatives
        if isinstance(alt, Mapping)
    }
