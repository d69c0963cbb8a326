"""An Ollama server emulator on loopback: Ollama's wire protocol, a real model's text.

Serves ``POST /api/chat``, ``POST /api/generate``, ``GET /api/tags``, ``GET /api/version`` and
``GET /`` the way Ollama's Go server writes them, and gets the text from the llama.cpp server
through `Backend`. What is reproduced, and where each fact comes from (ollama/ollama):

- Bodies are Go ``json.Marshal`` output: compact, fields in struct order, ``omitempty``
  fields dropped when zero, ``<``, ``>``, ``&``, U+2028/9 escaped as ``\\u003c`` ...
  (``api/types.go``: ``ChatResponse``, ``GenerateResponse``, ``Message``, ``Metrics``).
- Streams: ``Content-Type: application/x-ndjson``, chunked, one JSON object plus ``"\\n"`` per
  flushed chunk; the last object has ``"done":true``, ``done_reason`` and the metrics; an
  error after output began is one more line ``{"error":"..."}`` and the status stays 200
  (``server/routes.go`` ``streamResponse``; docs.ollama.com/api/errors).
- Whole answers: gin's ``c.JSON``: ``application/json; charset=utf-8``, no trailing newline,
  ``Content-Length`` up to net/http's 2048-byte buffer, chunked beyond it.
- ``created_at``: ``time.Now().UTC()`` marshalled as RFC 3339 with nanoseconds, trailing zeros
  trimmed (Go's ``time.RFC3339Nano``).
- Errors: 400 ``{"error":"missing request body"}`` / the JSON decoder's message for a bad body,
  400 ``model is required``, 404 ``model '<name>' not found`` (the current ``ChatHandler`` /
  ``GenerateHandler`` wording; servers before 2025 said ``model "<name>" not found, try
  pulling it first`` from ``handleScheduleError``), 400 ``"<name>" does not support
  thinking`` for ``think`` on a model without it, ``load`` / ``unload`` answers for an empty
  request, ``404 page not found`` for unknown routes.

Test hooks: model ``missing-model`` (any name but the backend's) is not installed;
``crash-midstream`` streams up to two real lines, then an error line (500 for ``stream:
false``). Token counts: whole answers use the backend's usage; for streams
``prompt_eval_count`` comes from a one-token probe request -- the same count the backend itself
reports -- and ``eval_count`` from the backend's stream usage (llama-server sends it when
asked; else the streamed chunks, or ``num_predict`` exactly when the answer hit it). The
backend's timings are not used: stream durations are measured,
whole-answer prompt/eval durations split the measured backend time by token share (estimates).
Images are accepted and not forwarded: the backend model reads text only.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx

from tests.servers._ollama_wire import (
    _FIELD_TYPES,
    _GO_BUFFER,
    _METRICS,
    _OPTIONS,
    _backend_detail,
    _decode_error,
    _done_reason,
    _json_type,
    _openai_message,
    go_json,
    rfc3339nano,
)
from tests.servers.base import Backend, Handler, LoopbackServer

__all__ = ["CRASH_MESSAGE", "CRASH_MODEL", "MISSING_MODEL", "OllamaHandler", "serve"]

MISSING_MODEL = "missing-model"
CRASH_MODEL = "crash-midstream"
# The message Ollama's runner errors carry (server/routes.go wraps runner failures; the
# text is the one on docs.ollama.com/api/errors).
CRASH_MESSAGE = "an error was encountered while running the model"


class OllamaHandler(Handler):
    """Ollama's HTTP API over a llama.cpp `Backend` (see the module docstring)."""

    def send_response(self, code: int, message: str | None = None) -> None:
        # Status line only: Go sends no Server header, and writes Date after Content-Type.
        self.send_response_only(code, message)

    # ------------------------------------------------------------------ writing

    def _head(self, status: int, content_type: str, length: int | None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if length is None:
            self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Date", self.date_time_string())
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.end_headers()

    def _send(self, status: int, body: bytes, content_type: str, *, head: bool = False) -> None:
        if len(body) <= _GO_BUFFER:
            self._head(status, content_type, len(body))
            if not head:
                self.wfile.write(body)
            return
        self._head(status, content_type, None)
        self.write_chunk(body)
        self.end_chunked()

    def _json(self, status: int, obj: Any) -> None:
        self._send(status, go_json(obj), "application/json; charset=utf-8")

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": message})

    def _line(self, obj: Any) -> None:
        self.write_chunk(go_json(obj) + b"\n")

    # ------------------------------------------------------------------ routes

    def do_HEAD(self) -> None:
        if self.path == "/":
            self._send(200, b"Ollama is running", "text/plain; charset=utf-8", head=True)
        else:
            self._send(404, b"404 page not found", "text/plain", head=True)

    def do_GET(self) -> None:
        if self.path == "/":
            self._send(200, b"Ollama is running", "text/plain; charset=utf-8")
        elif self.path == "/api/version":
            self._json(200, {"version": "0.0.0"})  # what a build without ldflags reports
        elif self.path == "/api/tags":
            self._json(200, {"models": [self._tag()]})
        elif self.path in ("/api/chat", "/api/generate"):
            self._send(405, b"405 method not allowed", "text/plain")
        else:
            self._send(404, b"404 page not found", "text/plain")

    def do_POST(self) -> None:
        start = time.monotonic_ns()
        if self.path == "/api/show":
            self._show()
            return
        if self.path not in ("/api/chat", "/api/generate"):
            self._send(404, b"404 page not found", "text/plain")
            return
        chat = self.path == "/api/chat"
        req = self._read(chat)
        if req is None:
            return
        # A client that hung up mid-answer has nothing left to be told.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._answer(req, chat, start)

    def _tag(self) -> dict[str, Any]:
        name = f"{self.backend.model}:latest"
        details = {
            "parent_model": "",
            "format": "gguf",
            "family": "",
            "families": None,
            "parameter_size": "",
            "quantization_level": "",
        }
        # Size and digest are unknown behind the OpenAI API: zero values, not made-up ones.
        return {
            "name": name,
            "model": name,
            "modified_at": rfc3339nano(time.time_ns()),
            "size": 0,
            "digest": "",
            "details": details,
        }

    def _show(self) -> None:
        """``POST /api/show`` as server/routes.go ShowHandler answers it (abridged).

        The Modelfile a user would write for the backend: ``PARAMETER num_ctx`` set to the
        llama.cpp server's per-request context, the GGUF's trained length in model_info.
        """
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length)
        self.server.requests.append({"path": self.path, "headers": dict(self.headers), "raw": raw})
        try:
            req = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            self._error(400, "invalid character in request body")
            return
        name = str(req.get("model") or req.get("name") or "") if isinstance(req, dict) else ""
        if not name:
            self._error(400, "model is required")
            return
        if name.removesuffix(":latest") != self.backend.model:
            self._error(404, f"model '{name}' not found")
            return
        n_ctx = self.backend.context()
        parameters = f"num_ctx                        {n_ctx}" if n_ctx else ""
        self._json(
            200,
            {
                "modelfile": f"FROM {self.backend.model}\n",
                "parameters": parameters,
                "template": "{{ .Prompt }}",
                "details": self._tag()["details"],
                # SmolLM2-135M's GGUF metadata (llama architecture, 8192 trained).
                "model_info": {"general.architecture": "llama", "llama.context_length": 8192},
                "capabilities": ["completion"],
                "modified_at": rfc3339nano(time.time_ns()),
            },
        )

    # ------------------------------------------------------------------ requests

    def _read(self, chat: bool) -> dict[str, Any] | None:
        length = int(self.headers.get("content-length") or 0)
        raw_bytes = self.rfile.read(length)
        self.server.requests.append(
            {"path": self.path, "headers": dict(self.headers), "raw": raw_bytes}
        )
        raw = raw_bytes.decode("utf-8", errors="replace")
        if not raw.strip():
            self._error(400, "missing request body")
            return None
        try:
            # gin's ShouldBindJSON decodes one value and ignores whatever follows it.
            value, _ = json.JSONDecoder().raw_decode(raw.lstrip())
        except json.JSONDecodeError as exc:
            self._error(400, _decode_error(raw.lstrip(), exc))
            return None
        struct = "ChatRequest" if chat else "GenerateRequest"
        if value is None:
            value = {}
        if not isinstance(value, dict):
            self._error(
                400,
                f"json: cannot unmarshal {_json_type(value)} into Go value of type api.{struct}",
            )
            return None
        for key, field in value.items():
            expected = _FIELD_TYPES.get(key)
            if expected and field is not None and not isinstance(field, expected[0]):
                self._error(
                    400,
                    f"json: cannot unmarshal {_json_type(field)} into Go struct field "
                    f"{struct}.{key} of type {expected[1]}",
                )
                return None
        return value

    def _answer(self, req: dict[str, Any], chat: bool, start: int) -> None:
        model = str(req.get("model") or "")
        if chat and not model:
            self._error(400, "model is required")
            return
        if model not in (self.backend.model, f"{self.backend.model}:latest", CRASH_MODEL):
            self._error(404, f"model '{model}' not found")
            return
        think = req.get("think")
        if think is True or isinstance(think, str):
            self._error(400, f'"{model}" does not support thinking')
            return
        unload = req.get("keep_alive") in (0, "0", "0s")
        if (chat and not req.get("messages")) or (not chat and not req.get("prompt")):
            reason = "unload" if unload else "load"
            self._json(200, self._obj(chat, model, "", done=True, reason=reason))
            return
        body = self._backend_body(req, chat)
        crash = model == CRASH_MODEL
        if crash:
            body["max_tokens"] = 4  # enough for two lines; the rest would be thrown away
        if req.get("stream") is False:
            self._whole(req, chat, model, body, start, crash)
        else:
            self._stream(req, chat, model, body, start, crash)

    def _backend_body(self, req: dict[str, Any], chat: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.backend.model}
        if chat or not req.get("raw"):
            # Ollama templates a /api/generate prompt as one user turn (plus `system`)
            # unless `raw` is set (routes.go GenerateHandler), so it is a chat request.
            messages = req["messages"] if chat else [{"role": "user", "content": req["prompt"]}]
            if not chat and req.get("system"):
                messages = [{"role": "system", "content": req["system"]}, *messages]
            body["messages"] = [_openai_message(m, i) for i, m in enumerate(messages)]
        else:
            body["prompt"] = req["prompt"]
        for name, param in _OPTIONS.items():
            value = (req.get("options") or {}).get(name)
            if value is not None:
                body[param] = value
        # num_predict -1 (infinite) and -2 (fill the context) mean "no cap".
        if body.get("max_tokens") is not None and body["max_tokens"] <= 0:
            del body["max_tokens"]
        fmt = req.get("format")
        if fmt == "json":
            body["response_format"] = {"type": "json_object"}
        elif isinstance(fmt, dict):
            body["response_format"] = {"type": "json_object", "schema": fmt}
        return body

    def _obj(
        self,
        chat: bool,
        model: str,
        text: str,
        *,
        done: bool,
        reason: str | None = None,
        metrics: dict[str, int] | None = None,
    ) -> dict[str, Any]:
        """An api.ChatResponse / api.GenerateResponse in Go field order, zeros omitted."""
        obj: dict[str, Any] = {"model": model, "created_at": rfc3339nano(time.time_ns())}
        if chat:
            obj["message"] = {"role": "assistant", "content": text}
        else:
            obj["response"] = text
        obj["done"] = done
        if reason:
            obj["done_reason"] = reason
        for key in _METRICS:
            if (metrics or {}).get(key):
                obj[key] = (metrics or {})[key]
        return obj

    # ------------------------------------------------------------------ answers

    def _whole(
        self,
        req: dict[str, Any],
        chat: bool,
        model: str,
        body: dict[str, Any],
        start: int,
        crash: bool,
    ) -> None:
        if crash:
            # A runner failure in a non-streamed request: routes.go answers c.JSON(500, ...).
            self._error(500, CRASH_MESSAGE)
            return
        loaded = time.monotonic_ns()
        try:
            answer = self.backend.complete(body)
        except httpx.HTTPError as exc:
            self._error(500, _backend_detail(exc))
            return
        end = time.monotonic_ns()
        choice = answer["choices"][0]
        text = (choice.get("message") or {}).get("content") if "messages" in body else None
        text = text if text is not None else choice.get("text") or ""
        usage = answer.get("usage") or {}
        prompt = int(usage.get("prompt_tokens") or 0)
        output = int(usage.get("completion_tokens") or 0)
        prompt_ns = max(1, (end - loaded) * prompt // max(1, prompt + output))
        metrics = {
            "total_duration": end - start,
            "load_duration": max(1, loaded - start),
            "prompt_eval_count": prompt,
            "prompt_eval_duration": prompt_ns,
            "eval_count": output,
            "eval_duration": max(1, end - loaded - prompt_ns),
        }
        reason = _done_reason(choice.get("finish_reason"))
        self._json(200, self._obj(chat, model, text, done=True, reason=reason, metrics=metrics))

    def _prompt_count(self, body: dict[str, Any]) -> int:
        # Only the backend knows how it counts a prompt (its chat template, a BOS or not): a
        # one-token probe reports the prompt count (and warms its prefix cache for the real
        # request).
        probe = self.backend.complete({**body, "max_tokens": 1})
        return int((probe.get("usage") or {}).get("prompt_tokens") or 0)

    def _stream(
        self,
        req: dict[str, Any],
        chat: bool,
        model: str,
        body: dict[str, Any],
        start: int,
        crash: bool,
    ) -> None:
        started = False
        lines = tokens = 0
        finish: str | None = None
        first: int | None = None
        loaded = start
        events: Iterator[dict[str, Any]] | None = None
        usage: dict[str, Any] = {}
        try:
            prompt = self._prompt_count(body)
            loaded = time.monotonic_ns()
            events = self.backend.stream(body, usage)
            for chunk in events:
                choice = (chunk.get("choices") or [{}])[0]
                finish = choice.get("finish_reason") or finish
                as_chat = "messages" in body  # non-raw generate is a chat request too
                piece = (choice.get("delta") or {}).get("content") if as_chat else None
                piece = piece if piece is not None else choice.get("text")
                if piece is None or (finish and not piece):
                    continue  # the role chunk, or the closing chunk
                tokens += 1
                first = first or time.monotonic_ns()
                if not piece:
                    continue  # the runner sends only non-empty content (llm/server.go)
                if not started:
                    self._head(200, "application/x-ndjson", None)
                    started = True
                self._line(self._obj(chat, model, piece, done=False))
                lines += 1
                if crash and lines == 2:
                    break
        except httpx.HTTPError as exc:
            self._fail(started, _backend_detail(exc))
            return
        finally:
            if events is not None:
                events.close()  # also closes the backend's HTTP response
        if crash:
            self._fail(started, CRASH_MESSAGE)
            return
        end = time.monotonic_ns()
        first = first or end
        max_tokens = body.get("max_tokens")
        metrics = {
            "total_duration": end - start,
            "load_duration": max(1, loaded - start),
            "prompt_eval_count": prompt,
            "prompt_eval_duration": max(1, first - loaded),
            "eval_count": usage.get("completion_tokens")
            or (max_tokens if finish == "length" and max_tokens else tokens),
            "eval_duration": max(1, end - first),
        }
        if not started:
            self._head(200, "application/x-ndjson", None)
        reason = _done_reason(finish)
        self._line(self._obj(chat, model, "", done=True, reason=reason, metrics=metrics))
        self.end_chunked()

    def _fail(self, started: bool, message: str) -> None:
        # streamResponse: before any output the error is a plain JSON answer (500); after
        # it, one more NDJSON line and the stream ends, still 200.
        if not started:
            self._error(500, message)
            return
        self._line({"error": message})
        self.end_chunked()


def serve(backend: Backend) -> LoopbackServer:
    """An Ollama emulator over ``backend`` on 127.0.0.1:<free port> (not started).

    Use it as a context manager; ``server.url`` is the root to pass as ``base_url``::

        with serve(Backend("http://127.0.0.1:8791/v1")) as server:
            llm = ChatCustomLLM(model="smollm2", base_url=server.url, wire_format="ollama")
    """
    return LoopbackServer(OllamaHandler, backend)
