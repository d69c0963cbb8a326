"""What the probe records, and the text helpers its evidence is written with.

`Exchange` is one request and its answer, `Row` one line of the capability table and
`Stream` a parsed server-sent-event body.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from langchain_customllm._exceptions import decode_body, error_detail

_EVIDENCE_CHARS = 240
_DETAIL_CHARS = 120  # of a server's error message (some include a traceback)


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
        return parse_json(self.text)[1]

    def first_model(self) -> str | None:
        """The first model id a ``/models`` answer lists, if any."""
        data = self.json() if self.ok else None
        items = data.get("data") if isinstance(data, dict) else None
        if isinstance(items, list) and items and isinstance(items[0], dict):
            model_id = items[0].get("id")
            return str(model_id) if model_id else None
        return None

    def choices(self) -> list[dict[str, Any]]:
        """The ``choices`` of a non-streamed answer (empty when there are none)."""
        data = self.json()
        if not isinstance(data, dict):
            return []
        choices = data.get("choices")
        return [c for c in choices if isinstance(c, dict)] if isinstance(choices, list) else []

    def first_choice(self) -> dict[str, Any]:
        """The first of `choices` (empty when there is none)."""
        choices = self.choices()
        return choices[0] if choices else {}

    def message(self) -> dict[str, Any]:
        """The first choice's ``message`` (empty when there is none)."""
        message = self.first_choice().get("message")
        return message if isinstance(message, dict) else {}

    def content(self) -> str | None:
        """The first choice's message content, if it is a string."""
        content = self.message().get("content")
        return content if isinstance(content, str) else None

    def finish_reason(self) -> str | None:
        """The first choice's ``finish_reason``."""
        reason = self.first_choice().get("finish_reason")
        return reason if isinstance(reason, str) else None

    def usage(self) -> dict[str, Any] | None:
        """The ``usage`` object of a non-streamed answer."""
        data = self.json()
        usage = data.get("usage") if isinstance(data, dict) else None
        return usage if isinstance(usage, dict) else None

    def media_type(self) -> str:
        """The content type without its parameters, e.g. ``text/event-stream``."""
        return self.content_type.split(";")[0].strip()

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
        kind = self.media_type()
        suffix = f" {kind}" if kind and kind != "application/json" else ""
        return f"{self.status}{suffix}: {clip(detail, _DETAIL_CHARS)}"


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


def _one_line(text: str) -> str:
    return " ".join(text.split())


def clip(text: str, limit: int = _EVIDENCE_CHARS) -> str:
    """``text`` on one line, cut to ``limit`` characters (an ellipsis marks the cut)."""
    text = _one_line(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_json(text: str | None) -> tuple[bool, Any]:
    """Whether ``text`` is JSON, and its value (None when it is not)."""
    if text is None:
        return False, None
    try:
        return True, json.loads(text)
    except ValueError:
        return False, None


def quote(text: str | None, limit: int = 60) -> str:
    """``text`` clipped and JSON-quoted for evidence (``null`` for None)."""
    if text is None:
        return "null"
    return json.dumps(clip(text, limit), ensure_ascii=False)


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
