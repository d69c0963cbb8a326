r"""Hugging Face text-generation-inference (TGI), native API: ``/generate`` and streaming.

``ChatCustomLLM(base_url="http://host:8080", wire_format="tgi")``: ``base_url`` is the server
root. (TGI also speaks the OpenAI API under ``/v1``; use ``wire_format="openai"`` with
``base_url=".../v1"`` for that. This format is for TGI's own API, and for the servers that copy
it: TGI-Gaudi, LoRAX, Hugging Face Inference Endpoints running TGI.)

Every fact about the protocol below comes from TGI's source, cited as
``router/src/<file>`` of huggingface/text-generation-inference (v2.x/v3.x):

Request (``lib.rs``: ``GenerateRequest``, ``GenerateParameters``)
    ``{"inputs": "<prompt>", "parameters": {...}}``. The top level knows only ``inputs`` and
    ``parameters`` (``stream`` exists only on the compat route ``/``, and ``add_special_tokens``
    is ``#[serde(skip)]``), so every knob, ours and ``extra_body``'s, goes into
    ``parameters``: ``repetition_penalty``, ``frequency_penalty``, ``top_k``, ``typical_p``,
    ``truncate``, ``watermark``, ``grammar``, ``adapter_id`` (LoRA), ``top_n_tokens``,
    ``best_of``. Unknown keys are ignored by serde without an error, so a misspelt knob is
    silently dropped by the server. Chat messages become the single ``inputs`` string through a
    `ChatTemplate` (ChatML by default): ``/generate`` applies no template of its own.

Greedy decoding (``validation.rs``, ``server/.../utils/tokens.py``)
    TGI rejects ``temperature <= 0`` with 422 "`temperature` must be strictly positive",
    whatever ``do_sample`` says, and samples whenever ``do_sample`` is true *or* a warper is
    set (``sampling = do_sample or has_warpers``; ``top_p < 1`` is a warper). So temperature 0
    is sent as ``do_sample: false`` with neither ``temperature`` nor ``top_p``. ``top_p: 1.0``
    (no nucleus filtering) is rejected too ("`top_p` must be > 0.0 and < 1.0") although it is
    the value an omitted ``top_p`` resolves to, so 1.0 is sent by omission.

Answers (``lib.rs``: ``GenerateResponse``, ``Details``, ``StreamResponse``, ``StreamDetails``)
    ``generated_text`` has no special tokens and, with a stop sequence, *ends with* the stop
    text (TGI's ``StopSequenceCriteria`` matches ``<stop>$`` against the output so far); the
    client-side stop matcher cuts it, identically for ``invoke`` and streams. Streams are axum
    SSE (``data:{json}\n\n``, no space after the colon, ``:\n\n`` keep-alives) with one event
    per token and no ``[DONE]``: the event whose ``generated_text`` is non-null (it also holds
    ``details`` when asked for) is the last one, and we mark it ``done``.

Usage
    Streams: ``details.input_length`` (newer TGI; older ``StreamDetails`` had no input count,
    then there is no usage) or ``details.prompt_tokens`` (LoRAX), and
    ``details.generated_tokens``. Whole answers: TGI's ``Details`` has no input count; the
    exact one is in the ``x-prompt-tokens`` response header, which formats do not see. As TGI's
    own ``/v1/completions`` and ``/v1/chat/completions`` do (``decoder_input_details: !stream``,
    ``prompt_tokens = details.prefill.len()``), we ask for ``decoder_input_details`` and count
    the prefill tokens (TGI 2.x: one per prompt token, BOS included). TGI 3.x returns an empty
    ``prefill`` (issue #2973; integration-tests snapshot ``test_flash_llama_simple.json``):
    then usage is left out rather than reported with a made-up input count.

Errors (``server.rs``, ``infer/mod.rs``)
    ``{"error": "...", "error_type": "validation"|"generation"|"overloaded"|
    "incomplete_generation"|...}`` with HTTP 422 / 424 / 429 / 500 on ``/generate``. On
    ``/generate_stream`` the status is always 200: validation, overload and generation errors
    all arrive as an SSE event with that body (``impl From<InferError> for Event``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import BaseMessage

from langchain_customllm._exceptions import ResponseError, StreamError
from langchain_customllm._framing import StreamEvent
from langchain_customllm._json import loads
from langchain_customllm._text import excerpt
from langchain_customllm.formats.base import (
    GenerationParams,
    ParsedChunk,
    TokenUsage,
    WireFormat,
    WireRequest,
    register_builtin_format,
)
from langchain_customllm.formats.prompt import ChatTemplate, get_chat_template

__all__ = ["TGIFormat", "tgi_parameters"]

# lib.rs `FinishReason` serializes as these three strings.
_FINISH_REASONS = {"eos_token": "stop", "stop_sequence": "stop", "length": "length"}


def tgi_parameters(params: GenerationParams, *, stream: bool) -> dict[str, Any]:
    """Build TGI's ``parameters`` object from generation params (pure).

    Args:
        params: The merged generation parameters; ``params.model`` is not sent (a TGI
            server serves one model; LoRA adapters are chosen with ``adapter_id`` in
            ``extra_body``).
        stream: Whether the request goes to ``/generate_stream``, which rejects
            ``decoder_input_details`` (validation.rs ``PrefillDetailsStream``).

    Returns:
        The ``parameters`` dict, ``extra_body`` merged last (it wins).

    """
    parameters: dict[str, Any] = {}
    if params.max_tokens is not None:
        parameters["max_new_tokens"] = params.max_tokens
    # An omitted top_p resolves to 1.0 inside TGI, but an explicit 1.0 is a 422.
    top_p = None if params.top_p == 1.0 else params.top_p
    temperature = params.temperature
    if temperature == 0:
        # Greedy: a zero temperature is a 422, and top_p < 1 would switch sampling back on.
        parameters["do_sample"] = False
    elif temperature is None:
        # TGI's own default is greedy; a top_p makes it sample anyway, so say so.
        parameters["do_sample"] = top_p is not None
        if top_p is not None:
            parameters["top_p"] = top_p
    else:
        # Negative values are sent as given: TGI answers 422, which beats a silent fix.
        parameters["do_sample"] = True
        parameters["temperature"] = temperature
        if top_p is not None:
            parameters["top_p"] = top_p
    if params.seed is not None:
        parameters["seed"] = params.seed
    if params.stop:
        # TGI's name for stop sequences; at most --max-stop-sequences (default 4) of them.
        parameters["stop"] = list(params.stop)
    # finish_reason and token counts only come with details; the prompt never comes back.
    parameters["details"] = True
    parameters["return_full_text"] = False
    if not stream:
        parameters["decoder_input_details"] = True
    parameters.update(params.extra_body)
    return parameters


def _error_message(obj: Mapping[str, Any]) -> str:
    error = obj.get("error")
    message = error if isinstance(error, str) else json.dumps(error, default=str)
    kind = obj.get("error_type")
    return f"{message} (error_type {kind})" if isinstance(kind, str) and kind else message


def _finish_reason(raw: Any) -> str | None:
    if not isinstance(raw, str) or not raw:
        return None
    return _FINISH_REASONS.get(raw, raw)


def _count(value: Any) -> int | None:
    # bool is an int in Python; a count must be a real non-negative integer.
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def _usage(input_tokens: int | None, output_tokens: int | None) -> TokenUsage | None:
    if input_tokens is None or output_tokens is None:
        return None
    return TokenUsage(input_tokens, output_tokens, input_tokens + output_tokens)


def _whole_input_tokens(details: Mapping[str, Any]) -> int | None:
    # LoRAX (a TGI fork) reports the count directly in Details.prompt_tokens.
    direct = _count(details.get("prompt_tokens"))
    if direct is not None:
        return direct
    # TGI: one prefill entry per prompt token when decoder_input_details is on; an empty
    # list (TGI 3.x, issue #2973, or decoder_input_details turned off) means "unknown".
    prefill = details.get("prefill")
    if isinstance(prefill, list) and prefill:
        return len(prefill)
    return None


def _apply_details(
    parsed: ParsedChunk, details: Mapping[str, Any], input_tokens: int | None
) -> None:
    parsed.finish_reason = _finish_reason(details.get("finish_reason"))
    parsed.usage = _usage(input_tokens, _count(details.get("generated_tokens")))
    if details.get("seed") is not None:
        # The seed TGI sampled with (null when greedy): what reproduces a sampled answer.
        parsed.metadata["seed"] = details["seed"]


class TGIFormat(WireFormat):
    """TGI's native ``/generate`` and ``/generate_stream`` API (see the module docstring).

    Args:
        chat_template: How chat messages become TGI's single ``inputs`` string: a built-in
            name (``"chatml"``, ``"llama3"``, ``"plain"``), a `ChatTemplate`, or a mapping with
            its fields. It must match the served model; ``wire_format="tgi"`` uses ChatML.

    Example:
        .. code-block:: python

            from langchain_customllm import ChatCustomLLM
            from langchain_customllm.formats.tgi import TGIFormat

            llm = ChatCustomLLM(
                base_url="http://gpu-box:8080",
                model="tgi",
                wire_format=TGIFormat(chat_template="llama3"),
                extra_body={"repetition_penalty": 1.1, "top_k": 50},
            )

    """

    name = "tgi"
    framing = "sse"
    # TGI returns the stop text inside generated_text, so it can be sent even when the
    # caller wants to keep it (include_stop_sequence).
    keeps_stop_text = True

    def __init__(self, chat_template: str | ChatTemplate | Mapping[str, object] = "chatml") -> None:
        self.chat_template = get_chat_template(chat_template)

    def __repr__(self) -> str:
        return f"TGIFormat(chat_template={self.chat_template!r})"

    def error_message(self, body: Any) -> str | None:
        """The message of TGI's ``ErrorResponse`` (``{"error": ..., "error_type": ...}``)."""
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            return _error_message(body)
        return None  # e.g. axum's plain-text JSON rejections: the generic reader copes

    def chat_request(
        self, messages: Sequence[BaseMessage], params: GenerationParams, *, stream: bool
    ) -> WireRequest:
        """Render the messages with the chat template and build a generate request."""
        return self.completion_request(self.chat_template.render(messages), params, stream=stream)

    def completion_request(
        self, prompt: str, params: GenerationParams, *, stream: bool
    ) -> WireRequest:
        """Build ``POST /generate`` or ``POST /generate_stream`` for a prompt string."""
        body = {"inputs": prompt, "parameters": tgi_parameters(params, stream=stream)}
        return WireRequest(path="/generate_stream" if stream else "/generate", body=body)

    def parse_response(self, body: Any, *, chat: bool) -> ParsedChunk:
        """Parse a ``GenerateResponse`` (or the one-element list the ``/`` route returns).

        Raises:
            ResponseError: If the body is not a TGI answer or has no ``generated_text``.

        """
        obj = body
        if isinstance(obj, list) and len(obj) == 1:
            # compat_generate (`POST /`) wraps the answer in a list to match api-inference.
            obj = obj[0]
        if not isinstance(obj, dict):
            raise ResponseError(
                f"tgi: expected a JSON object with `generated_text`, got: {excerpt(body)}",
                body=body,
            )
        if "error" in obj and "generated_text" not in obj:
            raise ResponseError(
                f"tgi: the server returned an error: {_error_message(obj)}", body=obj
            )
        text = obj.get("generated_text")
        if not isinstance(text, str):
            raise ResponseError(
                "tgi: the answer has no `generated_text` string -- is base_url the TGI server "
                f"root and wire_format right? Got: {excerpt(obj)}",
                body=obj,
            )
        # The raw text, stop sequence included: the client-side matcher cuts it.
        parsed = ParsedChunk(text=text)
        details = obj.get("details")
        if isinstance(details, dict):
            _apply_details(parsed, details, _whole_input_tokens(details))
        return parsed

    def parse_event(self, event: StreamEvent, *, chat: bool) -> ParsedChunk | None:
        """Parse one ``StreamResponse`` event; the last one (``generated_text`` set) is done.

        Raises:
            StreamError: For an ``{"error": ..., "error_type": ...}`` event.
            ResponseError: For an event that is not a TGI stream event.

        """
        data = event.data
        if not data.strip():
            return None
        try:
            obj = loads(data)
        except ValueError as exc:
            raise ResponseError(
                f"tgi: the server sent a stream event that is not JSON: {excerpt(data)!r}"
            ) from exc
        if not isinstance(obj, dict):
            raise ResponseError(f"tgi: unexpected stream event: {excerpt(data)!r}")
        if "error" in obj and "token" not in obj:
            raise StreamError(
                f"TGI reported an error in the stream: {_error_message(obj)}",
                body=obj,
            )
        token = obj.get("token")
        if not isinstance(token, dict) or not isinstance(token.get("text"), str):
            raise ResponseError(
                f"tgi: stream event without a `token.text`: {excerpt(data)!r}", body=obj
            )
        # Special tokens (</s>, <|im_end|>, <|eot_id|>) are markers, not answer text; TGI
        # leaves them out of generated_text too.
        parsed = ParsedChunk(text="" if token.get("special") is True else token["text"])
        details = obj.get("details")
        if obj.get("generated_text") is not None or details is not None:
            # TGI sends no [DONE]: this last event carries the last token and the totals.
            parsed.done = True
            if isinstance(details, dict):
                input_tokens = _count(details.get("input_length"))
                if input_tokens is None:
                    input_tokens = _count(details.get("prompt_tokens"))  # LoRAX
                _apply_details(parsed, details, input_tokens)
        return parsed


register_builtin_format("tgi", TGIFormat)
