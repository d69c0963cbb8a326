"""TGI emulator wire formats: serde_json output, request types, error kinds, responses."""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
EOS_TEXT = "<|im_end|>"
SPECIAL_TEXTS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
CRASH_TRIGGER = "crash-midstream"
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
