"""TGI emulator request parsing, validation and generation (a mixin of `TGIHandler`)."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Generator
from contextlib import closing
from typing import Any, cast

import httpx

from tests.servers._tgi_wire import (
    _NULLABLE,
    _RUST_TYPES,
    _TYPES,
    CRASH_TRIGGER,
    DEFAULT_MAX_NEW_TOKENS,
    EOS_TEXT,
    _BadBodyError,
    _Generation,
    _Params,
    _RequestError,
    _Token,
    _ValidationError,
)
from tests.servers.base import Handler


class _TGIGeneration(Handler):
    """TGIHandler's request reading, validation, generation and tokenizer calls."""

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

    def _tokenize(self, text: str) -> list[int]:
        return self.backend.tokenize(text)

    def _chunk_ids(self, chunks: list[str]) -> list[list[int]]:
        """Token ids of each streamed piece (after the stream: llama.cpp serialises requests)."""
        if not chunks:
            return []
        whole = self._tokenize("".join(chunks))
        if len(whole) == len(chunks):
            return [[token_id] for token_id in whole]
        return [self._tokenize(chunk) for chunk in chunks]
