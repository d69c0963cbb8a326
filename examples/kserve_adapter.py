"""A Python wire-format adapter: KServe's v1 "predict" protocol in about 40 lines.

KServe (and Seldon, and many in-house services) answer ``POST /v1/models/<name>:predict``
with ``{"instances": [...]}`` in and ``{"predictions": [...]}`` out. Subclass `WireFormat`,
implement four methods, register it by name: `ChatCustomLLM` then streams (here: one whole
chunk, as this protocol cannot stream), enforces stop sequences, reports usage, retries and
raises typed errors exactly as for any built-in format.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.messages import BaseMessage

from langchain_customllm import ChatCustomLLM, ResponseError
from langchain_customllm.formats import (
    GenerationParams,
    ParsedChunk,
    TokenUsage,
    WireFormat,
    WireRequest,
    register_format,
)
from langchain_customllm.formats.prompt import get_chat_template


class KServeV1Format(WireFormat):
    """KServe v1 predict: one prompt in, one prediction out, no streaming."""

    name = "kserve-v1"
    supports_streaming = False  # the whole answer arrives as one final chunk

    def __init__(self, model_name: str = "my-model", chat_template: str = "chatml") -> None:
        self.path = f"/v1/models/{model_name}:predict"
        self.template = get_chat_template(chat_template)

    def chat_request(
        self, messages: Sequence[BaseMessage], params: GenerationParams, *, stream: bool
    ) -> WireRequest:
        return self.completion_request(self.template.render(messages), params, stream=stream)

    def completion_request(
        self, prompt: str, params: GenerationParams, *, stream: bool
    ) -> WireRequest:
        instance: dict[str, Any] = {"prompt": prompt, "max_tokens": params.max_tokens}
        if params.stop:
            instance["stop"] = list(params.stop)
        return WireRequest(path=self.path, body={"instances": [instance], **params.extra_body})

    def parse_response(self, body: Any, *, chat: bool) -> ParsedChunk:
        predictions = body.get("predictions") if isinstance(body, dict) else None
        if not predictions:
            raise ResponseError(f"kserve-v1: no predictions in {str(body)[:200]}", body=body)
        prediction = predictions[0]
        tokens = prediction.get("tokens", {})
        return ParsedChunk(
            text=prediction["generated"],  # a KeyError here still surfaces as ResponseError
            finish_reason=prediction.get("finish_reason", "stop"),
            usage=TokenUsage(
                tokens.get("prompt", 0),
                tokens.get("completion", 0),
                tokens.get("prompt", 0) + tokens.get("completion", 0),
            )
            if tokens
            else None,
        )

    def parse_event(self, event: Any, *, chat: bool) -> ParsedChunk | None:
        raise NotImplementedError("kserve-v1 does not stream")


register_format("kserve-v1", KServeV1Format)


if __name__ == "__main__":
    llm = ChatCustomLLM(
        base_url="http://127.0.0.1:8080",
        model="my-model",
        wire_format={"kind": "kserve-v1", "model_name": "my-model"},
    )
    print(llm.invoke("What is the capital of France?").content)
