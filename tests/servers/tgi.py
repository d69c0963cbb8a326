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
- Usage: input counts come from llama-cpp-python's ``POST /extras/tokenize`` on ``inputs``
  (what TGI's router counts; llama-cpp-python's own ``usage.prompt_tokens`` is one higher
  because its completion path prepends a BOS token), output counts are the generated tokens.
  ``x-prompt-tokens``, ``details.input_length`` and ``len(details.prefill)`` agree.

Emulator choices, where llama.cpp cannot tell what TGI would:

- Generation streams from llama.cpp (stopping early at a stop sequence, as TGI does), but
  events are sent once it is over: llama-cpp-python serialises requests, so the token ids
  (``/extras/tokenize``) cannot be looked up while its stream runs. llama.cpp holds back a
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

import json
import math
import random
import re
import struct
import threading
import time
from collections.abc import Generator, Iterator
from contextlib import closing
from dataclasses import dataclass
from typing import Any, cast

import httpx

from tests.servers.base import Backend, Handler, LoopbackServer

__all__ = ["TGIHandler", "serde_json", "serve"]

MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
EOS_TEXT = "<|im_end|>"
SPECIAL_TEXTS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
CRASH_TRIGGER = "crash-midstream"
# One pooled client for the tokenizer routes (a new client per call costs ~90 ms).
_EXTRAS = httpx.Client(timeout=60)
# TGI's default for an omitted max_new_tokens (lib.rs `default_max_new_tokens`).
DEFAULT_MAX_NEW_TOKENS = 100


# ----------------------------------------------------------------------------- serde_json


def _f32(value: float) -> str:
    """An f32 as serde_json writes it (ryu's shortest round-trip form; NaN/inf -> null)."""
    if not math.isfinite(value):
        return "null"
    single = struct.unpack("<f", struct.pack("<f", value))[0]
    if single == 0:
        return "-0.0" if math.copysign(1.0, single) < 0 else "0.0"
    packed = struct.pack("<f", single)
    for precision in range(9):
        text = f"{abs(single):.{precision}e}"
        if struct.pack("<f", math.copysign(float(text), single)) == packed:
            break
    mantissa, exp_text = text.split("e")
    digits = mantissa.replace(".", "").rstrip("0") or "0"
    kk = int(exp_text) + 1  # 10^(kk-1) <= |v| < 10^kk
    length = len(digits)
    sign = "-" if single < 0 else ""
    # ryu `pretty::format32` layout.
    if kk - length >= 0 and kk <= 13:
        out = digits + "0" * (kk - length) + ".0"
    elif 0 < kk <= 13:
        out = digits[:kk] + "." + digits[kk:]
    elif -6 < kk <= 0:
        out = "0." + "0" * (-kk) + digits
    elif length == 1:
        out = f"{digits}e{kk - 1}"
    else:
        out = f"{digits[0]}.{digits[1:]}e{kk - 1}"
    return sign + out


class F32(float):
    """A float serialized as Rust's f32 (TGI's logprobs)."""


def serde_json(value: Any) -> str:
    """Compact JSON as serde_json writes it: no spaces, UTF-8 as is, dict order kept."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, F32):
        return _f32(float(value))
    if isinstance(value, float):
        return "null" if not math.isfinite(value) else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(serde_json(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{" + ",".join(f"{serde_json(str(k))}:{serde_json(v)}" for k, v in value.items()) + "}"
        )
    raise TypeError(f"cannot serialize {type(value).__name__}")


def _f64_display(value: float) -> str:
    """Rust's `f64::to_string`: shortest round trip, never in exponent form."""
    text = repr(value)
    if "e" in text:
        text = f"{value:.20f}".rstrip("0")
    return text


# ----------------------------------------------------------------------------- errors


class _ValidationError(Exception):
    """A TGI `ValidationError` (the message is TGI's, verbatim)."""


class _RequestError(Exception):
    """An `InferError` other than validation: message, error_type, HTTP status."""

    def __init__(self, message: str, error_type: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.error_type = error_type
        self.status = status


class _BadBodyError(Exception):
    """Axum's `Json` extractor rejection: plain text body with its own status."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


# ----------------------------------------------------------------------------- model state


@dataclass
class _Token:
    id: int
    text: str
    logprob: float | None
    special: bool = False

    def wire(self) -> dict[str, Any]:
        # lib.rs `Token`: id, text, logprob (f32; NaN -> null), special.
        return {
            "id": self.id,
            "text": self.text,
            "logprob": F32(math.nan if self.logprob is None else self.logprob),
            "special": self.special,
        }


@dataclass
class _Params:
    inputs: str
    max_new_tokens: int
    stop: list[str]
    sampling: bool
    temperature: float
    top_p: float
    top_k: int
    typical_p: float
    repetition_penalty: float
    frequency_penalty: float
    seed: int | None
    details: bool
    decoder_input_details: bool
    return_full_text: bool


@dataclass
class _Generation:
    tokens: list[_Token]
    finish_reason: str  # "length" | "eos_token" | "stop_sequence"
    seed: int | None
    crash_after: int | None = None  # emit this many tokens, then a generation error


_TYPES: dict[str, tuple[type, ...]] = {
    "best_of": (int,),
    "temperature": (int, float),
    "repetition_penalty": (int, float),
    "frequency_penalty": (int, float),
    "top_k": (int,),
    "top_p": (int, float),
    "typical_p": (int, float),
    "do_sample": (bool,),
    "max_new_tokens": (int,),
    "return_full_text": (bool,),
    "stop": (list,),
    "truncate": (int,),
    "watermark": (bool,),
    "details": (bool,),
    "decoder_input_details": (bool,),
    "seed": (int,),
    "top_n_tokens": (int,),
    "adapter_id": (str,),
}
_RUST_TYPES = {
    "best_of": "usize",
    "temperature": "f32",
    "repetition_penalty": "f32",
    "frequency_penalty": "f32",
    "top_k": "i32",
    "top_p": "f32",
    "typical_p": "f32",
    "do_sample": "a boolean",
    "max_new_tokens": "u32",
    "return_full_text": "a boolean",
    "stop": "a sequence",
    "truncate": "usize",
    "watermark": "a boolean",
    "details": "a boolean",
    "decoder_input_details": "a boolean",
    "seed": "u64",
    "top_n_tokens": "u32",
    "adapter_id": "a string",
}
# Fields whose `Option` lets an explicit null through (the rest are plain bools / Vec).
_NULLABLE = {
    "best_of",
    "temperature",
    "repetition_penalty",
    "frequency_penalty",
    "top_k",
    "top_p",
    "typical_p",
    "max_new_tokens",
    "return_full_text",
    "truncate",
    "seed",
    "top_n_tokens",
    "adapter_id",
    "grammar",
}


class TGIHandler(Handler):
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

    # ------------------------------------------------------------------ request handling

    def _read_request(self) -> dict[str, Any]:
        content_type = (self.headers.get("content-type") or "").split(";")[0].strip().lower()
        if content_type != "application/json" and not content_type.endswith("+json"):
            self.read_json_bytes()
            raise _BadBodyError(415, "Expected request with `Content-Type: application/json`")
        raw = self.read_json_bytes()
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise _BadBodyError(400, f"Failed to parse the request body as JSON: {exc}") from exc
        where = f"at line 1 column {len(raw)}"
        if not isinstance(body, dict):
            raise _BadBodyError(
                422,
                "Failed to deserialize the JSON body into the target type: invalid type: "
                f"expected struct GenerateRequest {where}",
            )
        if "inputs" not in body:
            raise _BadBodyError(
                422,
                "Failed to deserialize the JSON body into the target type: missing field "
                f"`inputs` {where}",
            )
        if not isinstance(body["inputs"], str):
            raise _BadBodyError(
                422,
                "Failed to deserialize the JSON body into the target type: inputs: invalid "
                f"type: expected a string {where}",
            )
        parameters = body.get("parameters")
        if parameters is None:
            # serde default_parameters(): sampling on, max_new_tokens 100, nothing else.
            parameters = {"do_sample": True}
        if not isinstance(parameters, dict):
            raise _BadBodyError(
                422,
                "Failed to deserialize the JSON body into the target type: parameters: "
                f"invalid type: expected struct GenerateParameters {where}",
            )
        for key, value in parameters.items():
            expected = _TYPES.get(key)
            if expected is None or (value is None and key in _NULLABLE):
                continue  # unknown keys are ignored by serde
            ok = isinstance(value, expected) and not (
                isinstance(value, bool) and bool not in expected
            )
            if key == "stop" and ok:
                ok = all(isinstance(item, str) for item in value)
            if key in {"max_new_tokens", "seed", "best_of", "truncate", "top_n_tokens"} and ok:
                ok = value >= 0
            if not ok:
                raise _BadBodyError(
                    422,
                    "Failed to deserialize the JSON body into the target type: "
                    f"parameters.{key}: invalid type: expected {_RUST_TYPES[key]} {where}",
                )
        return {"inputs": body["inputs"], "parameters": parameters}

    def read_json_bytes(self) -> str:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length)
        self.server.requests.append({"path": self.path, "headers": dict(self.headers), "raw": raw})
        return raw.decode("utf-8", errors="replace")

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

    def _validate(self, inputs: str, p: dict[str, Any]) -> tuple[_Params, list[int]]:
        """`Validation::validate`: same checks, same order, same messages."""
        do_sample = bool(p.get("do_sample", False))
        temperature = p.get("temperature")
        top_k = p.get("top_k")
        top_p = p.get("top_p")
        typical_p = p.get("typical_p")
        if (temperature if temperature is not None else 1.0) <= 0.0:
            raise _ValidationError("`temperature` must be strictly positive")
        repetition_penalty = p.get("repetition_penalty")
        if repetition_penalty is not None and repetition_penalty <= 0.0:
            raise _ValidationError("`repetition_penalty` must be strictly positive")
        frequency_penalty = p.get("frequency_penalty")
        if frequency_penalty is not None and not -2.0 <= frequency_penalty <= 2.0:
            raise _ValidationError("`frequency_penalty` must be >= -2.0 and <= 2.0")
        if top_p is not None and not 0.0 < top_p < 1.0:
            raise _ValidationError("`top_p` must be > 0.0 and < 1.0")
        if typical_p is not None and not 0.0 < typical_p < 1.0:
            raise _ValidationError("`typical_p` must be > 0.0 and < 1.0")
        if top_k is not None and top_k <= 0:
            raise _ValidationError("`top_k` must be strictly positive")
        max_new_tokens = p.get("max_new_tokens", DEFAULT_MAX_NEW_TOKENS)
        if max_new_tokens == 0:
            raise _ValidationError("`max_new_tokens` must be strictly positive")
        stop = list(p.get("stop") or [])
        if len(stop) > self.max_stop_sequences:
            raise _ValidationError(
                f"`stop` supports up to {self.max_stop_sequences} stop sequences. "
                f"Given: {len(stop)}"
            )
        top_n_tokens = p.get("top_n_tokens")
        if top_n_tokens:
            raise _ValidationError(f"`top_n_tokens` must be >= 0 and <= 0. Given: {top_n_tokens}")
        if not inputs:
            raise _ValidationError("`inputs` cannot be empty")
        truncate = p.get("truncate")
        if truncate is not None and (truncate == 0 or truncate > self.max_input_tokens):
            raise _ValidationError(
                f"`truncate` must be strictly positive and less than {self.max_input_tokens}. "
                f"Given: {truncate}"
            )
        prompt_ids = self._tokenize(inputs)
        input_length = len(prompt_ids)
        if max_new_tokens is None:
            max_new_tokens = max(self.max_total_tokens - input_length, 0)
        if input_length + max_new_tokens > self.max_total_tokens:
            raise _ValidationError(
                f"`inputs` tokens + `max_new_tokens` must be <= {self.max_total_tokens}. "
                f"Given: {input_length} `inputs` tokens and {max_new_tokens} `max_new_tokens`"
            )
        if input_length > self.max_input_tokens:
            raise _ValidationError(
                f"`inputs` must have less than {self.max_input_tokens} tokens. "
                f"Given: {input_length}"
            )
        if p.get("grammar") is not None:
            raise _ValidationError("grammar is not supported")
        # tokens.py: sampling = do_sample or has_warpers.
        has_warpers = (
            (temperature is not None and temperature != 1.0)
            or (top_k is not None and top_k != 0)
            or (top_p is not None and top_p < 1.0)
            or (typical_p is not None and typical_p < 1.0)
        )
        seed = p.get("seed")
        params = _Params(
            inputs=inputs,
            max_new_tokens=max_new_tokens,
            stop=stop,
            sampling=do_sample or has_warpers,
            temperature=1.0 if temperature is None else float(temperature),
            top_p=1.0 if top_p is None else float(top_p),
            top_k=0 if top_k is None else int(top_k),
            typical_p=1.0 if typical_p is None else float(typical_p),
            repetition_penalty=1.0 if repetition_penalty is None else float(repetition_penalty),
            frequency_penalty=0.0 if frequency_penalty is None else float(frequency_penalty),
            seed=seed if seed is not None else random.getrandbits(64),
            details=bool(p.get("details", False)),
            decoder_input_details=bool(p.get("decoder_input_details", False)),
            return_full_text=bool(p.get("return_full_text") or False),
        )
        return params, prompt_ids

    # ------------------------------------------------------------------ generation

    def _run(self, params: _Params) -> _Generation:
        """Generate with llama.cpp, applying TGI's stopping criteria as text arrives."""
        body: dict[str, Any] = {
            "model": self.backend.model,
            "prompt": params.inputs,
            "max_tokens": params.max_new_tokens,
            # llama-cpp-python's own defaults (top_k 40, repeat_penalty 1.1, min_p 0.05) are
            # not TGI's: pin every sampler to TGI's value.
            "temperature": params.temperature if params.sampling else 0.0,
            "top_p": params.top_p,
            "top_k": params.top_k,
            "min_p": 0.0,
            "repeat_penalty": params.repetition_penalty,
            "frequency_penalty": params.frequency_penalty,
        }
        if params.sampling and params.seed is not None:
            body["seed"] = params.seed % 2**32  # llama.cpp seeds are 32-bit
        stops = [re.compile(re.escape(stop) + "$") for stop in params.stop if stop]
        chunks: list[str] = []
        output = ""
        finish: str | None = None
        try:
            stream = self.backend.stream(body)
            with closing(cast(Generator[dict[str, Any], None, None], stream)):
                for event in stream:
                    choice = event["choices"][0]
                    text = choice.get("text") or ""
                    reason = choice.get("finish_reason")
                    if finish == "stop_sequence":
                        # One look past the stop: TGI checks length before stop sequences,
                        # so a stop on the very last allowed token is a "length" finish.
                        if reason == "length" and not text:
                            finish = "length"
                        break
                    if text:
                        chunks.append(text)
                        output += text
                        # StopSequenceCriteria: `<stop>$` on the last 300 characters.
                        if any(regex.search(output[-300:]) for regex in stops):
                            finish = "stop_sequence"
                            continue
                    if reason is not None:
                        # llama.cpp "stop" without our stops = the model's end-of-sequence.
                        finish = "eos_token" if reason == "stop" else "length"
                        break
        except httpx.HTTPError as exc:
            raise _RequestError(
                f"Request failed during generation: Server error: {exc}", "generation", 424
            ) from exc
        if finish is None:
            raise _RequestError("Incomplete generation", "incomplete_generation", 500)
        tokens: list[_Token] = []
        for text, ids in zip(chunks, self._chunk_ids(chunks), strict=True):
            # llama.cpp holds back a token that ends mid-character and sends it with the
            # next one; TGI sends it on its own with text "", as the tokenizer cuts it.
            tokens.extend(_Token(token_id, "", None) for token_id in ids[:-1])
            tokens.append(_Token(ids[-1] if ids else 0, text, None))
        # Re-tokenizing can split a character into more pieces than the model did; never
        # report more tokens than llama.cpp generated (empty pieces carry no text).
        while len(tokens) > params.max_new_tokens and any(not t.text for t in tokens):
            tokens.remove(next(t for t in tokens if not t.text))
        if finish == "eos_token":
            # TGI streams the end-of-sequence token as a special token and counts it; its
            # length check comes first, also for that token.
            tokens.append(_Token(self._eos_id(), EOS_TEXT, None, special=True))
            if len(tokens) >= params.max_new_tokens:
                finish = "length"
        if not tokens:
            raise _RequestError("Incomplete generation", "incomplete_generation", 500)
        crash_after = 2 if CRASH_TRIGGER in params.inputs else None
        seed = params.seed if params.sampling else None
        return _Generation(tokens, finish, seed, crash_after)

    # ------------------------------------------------------------------ tokenizer

    def _extras(self, route: str, body: dict[str, Any]) -> Any:
        root = self.backend.base_url.removesuffix("/v1")
        response = _EXTRAS.post(f"{root}/extras/{route}", json=body)
        response.raise_for_status()
        return response.json()

    def _tokenize(self, text: str) -> list[int]:
        ids: list[int] = self._extras("tokenize", {"input": text})["tokens"]
        return ids

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
                cache[token_id] = self._extras("detokenize", {"tokens": [token_id]})["text"]
            except httpx.HTTPError:
                cache[token_id] = ""  # half of a UTF-8 character: not decodable alone
        return cache[token_id]

    def _prefill(self, prompt_ids: list[int]) -> list[dict[str, Any]]:
        # lib.rs `PrefillToken`: id, text, logprob (unknown here: NaN -> null).
        return [
            {"id": token_id, "text": self._piece(token_id), "logprob": F32(math.nan)}
            for token_id in prompt_ids
        ]

    def _chunk_ids(self, chunks: list[str]) -> list[list[int]]:
        """Token ids of each streamed piece (after the stream: llama.cpp serialises requests)."""
        if not chunks:
            return []
        whole = self._tokenize("".join(chunks))
        if len(whole) == len(chunks):
            return [[token_id] for token_id in whole]
        return [self._tokenize(chunk) for chunk in chunks]


# ----------------------------------------------------------------------------- helpers


def _visible_text(tokens: list[_Token]) -> str:
    # TGI decodes generated_text with skip_special_tokens.
    return "".join(token.text for token in tokens if not token.special)


def _stream_response(
    index: int, token: _Token, generated_text: str | None, details: dict[str, Any] | None
) -> dict[str, Any]:
    # lib.rs `StreamResponse`: index, token, top_tokens (skipped when empty), generated_text,
    # details.
    return {
        "index": index,
        "token": token.wire(),
        "generated_text": generated_text,
        "details": details,
    }


def _crash_message() -> str:
    # InferError::GenerationError wraps the shard's message.
    return (
        "Request failed during generation: Server error: emulated crash "
        f"(inputs contain {CRASH_TRIGGER!r})"
    )


def events(body: bytes) -> Iterator[dict[str, Any]]:
    """Decode a captured TGI SSE body (for tests that read the raw stream)."""
    for block in body.decode().split("\n\n"):
        if block.startswith("data:"):
            yield json.loads(block[5:])


def serve(backend: Backend) -> LoopbackServer:
    """A TGI emulator on 127.0.0.1:<free port>, not started: use it as a context manager."""
    return LoopbackServer(TGIHandler, backend)
