"""A loopback emulator of Hugging Face text-generation-inference (TGI)'s native API.

TGI needs a GPU; this handler speaks its wire protocol on 127.0.0.1 and gets the text from the
real llama.cpp server (`tests.servers.base.Backend`), so answers are a real model's. Usage::

    from tests.servers.base import Backend
    from tests.servers.tgi import serve

    with serve(Backend("http://127.0.0.1:8765/v1")) as tgi:
        llm = ChatCustomLLM(model="smollm2", base_url=tgi.url, wire_format="tgi")
        llm.invoke("Hi")
        tgi.requests  # what the client sent: path, headers, raw body

Routes: ``POST /generate``, ``POST /generate_stream``, ``GET /info``, ``GET /health``.

What is reproduced, from huggingface/text-generation-inference ``router/src`` (v2.x/v3.x):

- Bodies: ``GenerateResponse`` / ``Details`` / ``StreamResponse`` / ``StreamDetails`` /
  ``Token`` / ``PrefillToken`` / ``ErrorResponse`` / ``Info`` (``lib.rs``) with serde's field
  order and compact output: no spaces, non-ASCII as is, ``Option`` as ``null``,
  ``skip_serializing_if`` fields left out, f32 logprobs in ryu's shortest form, NaN as null.
- SSE as axum writes it (``axum/src/response/sse.rs``): ``data:{json}\\n\\n`` (no space), one
  event per HTTP chunk, no ``[DONE]``; ``content-type: text/event-stream``,
  ``cache-control: no-cache``. Status 200 even for errors, which arrive as
  ``data:{"error":...,"error_type":...}`` events (``server.rs`` ``generate_stream``).
- Headers (``server.rs``): ``x-compute-type``, ``x-compute-time``, ``x-compute-characters``,
  ``x-total-time``, ``x-validation-time``, ``x-queue-time``, ``x-inference-time``,
  ``x-time-per-token``, ``x-prompt-tokens``, ``x-generated-tokens`` on ``/generate``;
  ``x-compute-type``, ``x-compute-characters``, ``x-accel-buffering: no`` on streams. Lowercase
  names and no ``server`` header, as hyper sends them.
- Validation (``validation.rs``, same order and messages): ``temperature <= 0``,
  ``top_p`` outside (0, 1), ``top_k <= 0``, ``max_new_tokens == 0``, more than 4 ``stop``
  sequences, empty ``inputs``, input + ``max_new_tokens`` over the context,
  ``decoder_input_details`` or ``best_of`` on a stream. ``/generate`` answers 422
  ``{"error":"Input validation error: ...","error_type":"validation"}``;
  ``/generate_stream`` sends the same body as an event.
  Malformed JSON gets axum's plain-text 400/415/422.
- Decoding (``server/text_generation_server/utils/tokens.py``): greedy unless ``do_sample`` or a
  warper (``temperature != 1``, ``top_k``, ``top_p < 1``, ``typical_p < 1``) is set; the seed
  is reported only when sampling. Stop sequences are *not* cut away: TGI's
  ``StopSequenceCriteria`` ends generation at the token after which the output matches
  ``<stop>$``, and ``generated_text`` includes the stop text; checks run in TGI's order
  (length, end-of-sequence, stop sequences). An end-of-sequence finish is sent as the special
  token ``<|im_end|>`` (SmolLM2's EOS), counted in ``generated_tokens`` and left out of
  ``generated_text``.
- Usage: input counts come from llama-server's ``POST /tokenize`` on ``inputs`` (no BOS: what
  TGI's router counts), output counts are the generated tokens.
  ``x-prompt-tokens``, ``details.input_length`` and ``len(details.prefill)`` agree.

Emulator choices, where llama.cpp cannot tell what TGI would:

- Generation streams from llama.cpp (stopping early at a stop sequence, as TGI does), but
  events are sent once it is over, so the token ids (``/tokenize``) of the whole text are
  known. llama.cpp holds back a
  token that ends mid-character and sends it with the next; the emulator splits such a piece
  back into tokens with text ``""`` and the completing one, as TGI sends them, so
  ``generated_tokens`` counts real tokens. Ids are re-tokenizations of the streamed text.
- Logprobs are not known (llama-cpp-python's are ~4x slower to compute) and are sent as
  ``null``, which is how serde writes TGI's NaN logprobs (TGI itself does that for the first
  prefill token).
- ``truncate``, ``watermark`` and ``adapter_id`` are accepted and not applied; ``grammar``,
  ``best_of > 1`` and ``top_n_tokens > 0`` are refused as a TGI started with
  ``--disable-grammar-support --max-best-of 1 --max-top-n-tokens 0`` refuses them.
- Magic input: ``inputs`` containing ``crash-midstream`` -> two tokens, then a ``generation``
  error event (``/generate``: 424).
- Knobs (subclass `TGIHandler`): ``max_concurrent_requests`` (0 makes every request
  ``overloaded``: 429, or an error event on streams), ``empty_prefill`` (reproduce TGI 3.0.x,
  issue #2973: ``prefill: []`` despite ``decoder_input_details``).
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

import httpx

from tests.servers._tgi_generate import _TGIGeneration
from tests.servers._tgi_wire import CRASH_TRIGGER as CRASH_TRIGGER
from tests.servers._tgi_wire import DEFAULT_MAX_NEW_TOKENS as DEFAULT_MAX_NEW_TOKENS
from tests.servers._tgi_wire import (
    EOS_TEXT,
    F32,
    MODEL_ID,
    SPECIAL_TEXTS,
    _BadBodyError,
    _crash_message,
    _f64_display,
    _RequestError,
    _stream_response,
    _ValidationError,
    _visible_text,
    serde_json,
)
from tests.servers._tgi_wire import events as events
from tests.servers.base import Backend, LoopbackServer

__all__ = ["TGIHandler", "serde_json", "serve"]


class TGIHandler(_TGIGeneration):
    """TGI's native routes over loopback (see the module docstring)."""

    max_concurrent_requests = 128
    max_stop_sequences = 4
    max_input_tokens = 2047
    max_total_tokens = 2048  # the llama.cpp server's n_ctx
    compute_type = "gpu+optimized"  # TGI's default when COMPUTE_TYPE is unset
    empty_prefill = False

    _lock = threading.Lock()
    _piece_cache: dict[int, str] = {}
    _special_ids: dict[int, str] | None = None

    # ------------------------------------------------------------------ HTTP plumbing

    def send_response(self, code: int, message: str | None = None) -> None:
        # hyper sends `date` and no `server` header.
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("date", self.date_time_string())

    def _send(
        self, status: int, body: bytes, content_type: str | None, headers: dict[str, str]
    ) -> None:
        self.send_response(status)
        if content_type is not None:
            self.send_header("content-type", content_type)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, serde_json(obj).encode(), "application/json", headers or {})

    def _send_error(self, status: int, message: str, error_type: str) -> None:
        self._send_json(status, {"error": message, "error_type": error_type})

    def do_GET(self) -> None:
        if self.path == "/health":
            self._send(200, b"", None, {})
        elif self.path == "/info":
            self._send_json(200, self._info())
        else:
            self._send(404, b"", None, {})

    def do_POST(self) -> None:
        if self.path not in ("/generate", "/generate_stream"):
            self._send(404, b"", None, {})
            return
        try:
            request = self._read_request()
        except _BadBodyError as bad:
            self._send(bad.status, bad.text.encode(), "text/plain; charset=utf-8", {})
            return
        if self.path == "/generate":
            self._generate(request)
        else:
            self._generate_stream(request)

    # ------------------------------------------------------------------ routes

    def _info(self) -> dict[str, Any]:
        # lib.rs `Info`, field order as declared.
        return {
            "model_id": MODEL_ID,
            "model_sha": None,
            "model_pipeline_tag": "text-generation",
            "max_concurrent_requests": self.max_concurrent_requests,
            "max_best_of": 1,
            "max_stop_sequences": self.max_stop_sequences,
            "max_input_tokens": self.max_input_tokens,
            "max_total_tokens": self.max_total_tokens,
            "validation_workers": 2,
            "max_client_batch_size": 4,
            "router": "text-generation-router",
            "version": "3.0.0",
            "sha": None,
            "docker_label": None,
        }

    def _generate(self, request: dict[str, Any]) -> None:
        start = time.monotonic()
        inputs = request["inputs"]
        try:
            with self._permit():
                parameters = request["parameters"]
                best_of = parameters.get("best_of")
                if isinstance(best_of, int) and best_of > 1:
                    raise _ValidationError("`best_of` != 1 is not allowed for this endpoint")
                params, prompt_ids = self._validate(inputs, parameters)
                queued = time.monotonic()
                generation = self._run(params)
        except _ValidationError as err:
            self._send_error(422, f"Input validation error: {err}", "validation")
            return
        except _RequestError as err:
            self._send_error(err.status, err.message, err.error_type)
            return
        if generation.crash_after is not None:
            self._send_error(424, _crash_message(), "generation")
            return
        done = time.monotonic()
        text = _visible_text(generation.tokens)
        if params.return_full_text:
            text = inputs + text
        response: dict[str, Any] = {"generated_text": text}
        generated = len(generation.tokens)
        if params.details or params.decoder_input_details:
            prefill = (
                self._prefill(prompt_ids)
                if params.decoder_input_details and not self.empty_prefill
                else []
            )
            # lib.rs `Details` (best_of_sequences: None and top_tokens: [] are skipped).
            response["details"] = {
                "finish_reason": generation.finish_reason,
                "generated_tokens": generated,
                "seed": generation.seed,
                "prefill": prefill,
                "tokens": [token.wire() for token in generation.tokens],
            }
        total = done - start
        inference = done - queued
        headers = {
            "x-compute-type": self.compute_type,
            "x-compute-time": _f64_display(total),
            "x-compute-characters": str(len(inputs)),
            "x-total-time": str(int(total * 1000)),
            "x-validation-time": str(int((queued - start) * 1000)),
            "x-queue-time": "0",
            "x-inference-time": str(int(inference * 1000)),
            "x-time-per-token": str(int(inference * 1000 / max(generated, 1))),
            "x-prompt-tokens": str(len(prompt_ids)),
            "x-generated-tokens": str(generated),
        }
        self._send_json(200, response, headers)

    def _generate_stream(self, request: dict[str, Any]) -> None:
        inputs = request["inputs"]
        # axum's Sse: content-type and cache-control, then the handler's headers.
        self.start_chunked(
            200,
            "text/event-stream",
            {
                "cache-control": "no-cache",
                "x-compute-type": self.compute_type,
                "x-compute-characters": str(len(inputs)),
                "x-accel-buffering": "no",
            },
        )
        try:
            parameters = request["parameters"]
            best_of = parameters.get("best_of")
            if (best_of if isinstance(best_of, int) else 1) != 1:
                raise _ValidationError("`best_of` != 1 is not supported when streaming tokens")
            if parameters.get("decoder_input_details") is True:
                raise _ValidationError(
                    "`decoder_input_details` == true is not supported when streaming tokens"
                )
            with self._permit():
                params, prompt_ids = self._validate(inputs, parameters)
                generation = self._run(params)
        except _ValidationError as err:
            self._event({"error": f"Input validation error: {err}", "error_type": "validation"})
            self.end_chunked()
            return
        except _RequestError as err:
            self._event({"error": err.message, "error_type": err.error_type})
            self.end_chunked()
            return
        tokens = generation.tokens
        if generation.crash_after is not None:
            for index, token in enumerate(tokens[: generation.crash_after], start=1):
                self._event(_stream_response(index, token, None, None))
            self._event({"error": _crash_message(), "error_type": "generation"})
            self.end_chunked()
            return
        for index, token in enumerate(tokens[:-1], start=1):
            self._event(_stream_response(index, token, None, None))
        text = _visible_text(tokens)
        if params.return_full_text:
            text = inputs + text
        details = None
        if params.details:
            # lib.rs `StreamDetails`.
            details = {
                "finish_reason": generation.finish_reason,
                "generated_tokens": len(tokens),
                "seed": generation.seed,
                "input_length": len(prompt_ids),
            }
        self._event(_stream_response(len(tokens), tokens[-1], text, details))
        self.end_chunked()

    def _event(self, obj: dict[str, Any]) -> None:
        # axum `Event::json_data`: "data:" + compact JSON + "\n", finalize adds "\n".
        self.write_chunk(b"data:" + serde_json(obj).encode() + b"\n\n")

    class _Permit:
        def __init__(self, semaphore: threading.BoundedSemaphore | None) -> None:
            self.semaphore = semaphore

        def __enter__(self) -> None:
            if self.semaphore is None or not self.semaphore.acquire(blocking=False):
                # infer/mod.rs: TryAcquireError -> Overloaded, "Model is overloaded", 429.
                raise _RequestError("Model is overloaded", "overloaded", 429)

        def __exit__(self, *exc: object) -> None:
            assert self.semaphore is not None
            self.semaphore.release()

    def _permit(self) -> TGIHandler._Permit:
        if self.max_concurrent_requests <= 0:
            return TGIHandler._Permit(None)
        # One semaphore per emulator instance, like TGI's `limit_concurrent_requests`.
        with TGIHandler._lock:
            semaphore = getattr(self.server, "tgi_permits", None)
            if not isinstance(semaphore, threading.BoundedSemaphore):
                semaphore = threading.BoundedSemaphore(self.max_concurrent_requests)
                setattr(self.server, "tgi_permits", semaphore)  # noqa: B010
        return TGIHandler._Permit(semaphore)

    # ------------------------------------------------------------------ tokenizer

    def _specials(self) -> dict[int, str]:
        cls = TGIHandler
        if cls._special_ids is None:
            found: dict[int, str] = {}
            for special in SPECIAL_TEXTS:
                ids = self._tokenize(special)
                if len(ids) == 1:
                    found[ids[0]] = special
            cls._special_ids = found
        return cls._special_ids

    def _eos_id(self) -> int:
        for token_id, text in self._specials().items():
            if text == EOS_TEXT:
                return token_id
        return 0

    def _piece(self, token_id: int) -> str:
        specials = self._specials()
        if token_id in specials:
            return specials[token_id]
        cache = TGIHandler._piece_cache
        if token_id not in cache:
            try:
                cache[token_id] = self.backend.detokenize([token_id])
            except httpx.HTTPError:
                cache[token_id] = ""  # half of a UTF-8 character: not decodable alone
        return cache[token_id]

    def _prefill(self, prompt_ids: list[int]) -> list[dict[str, Any]]:
        # lib.rs `PrefillToken`: id, text, logprob (unknown here: NaN -> null).
        return [
            {"id": token_id, "text": self._piece(token_id), "logprob": F32(math.nan)}
            for token_id in prompt_ids
        ]


def serve(backend: Backend) -> LoopbackServer:
    """A TGI emulator on 127.0.0.1:<free port>, not started: use it as a context manager."""
    return LoopbackServer(TGIHandler, backend)
