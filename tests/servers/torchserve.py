"""An in-house, torch-serve-style inference API for the `custom` wire format's tests.

It is the kind of endpoint the custom format exists for: its own JSON, nothing OpenAI-like.
``POST /predictions/<model>`` takes ``{"inputs": str, "parameters": {...}, "stream": bool}``
and answers ``{"outputs": [{"text", "finish_reason"}], "usage": {"in", "out"}}``, or, when
streaming, NDJSON lines ``{"token": {"text"}, "done": false}`` ending with
``{"done": true, "outputs": [{"finish_reason"}], "usage": {...}}``. Errors are
``{"error": {"message", "code"}}``. Text comes from the real llama.cpp server (`Backend`).

`TORCHSERVE_FORMAT` is the matching description, as a user would write it in YAML.
"""

from __future__ import annotations

import json
from typing import Any

from tests.servers.base import Backend, Handler, LoopbackServer

MODEL_PATH = "/predictions/my-model"

TORCHSERVE_FORMAT: dict[str, Any] = {
    "kind": "custom",
    "name": "torchserve",
    "chat_path": MODEL_PATH,
    "request": {
        "inputs": "{prompt}",
        "parameters": {
            "max_new_tokens": "{max_tokens}",
            "temperature": "{temperature}",
            "seed": "{seed}",
            "stop": "{stop}",
        },
        "stream": "{stream}",
    },
    "response": {
        "text": "outputs[0].text",
        "finish_reason": "outputs[0].finish_reason",
        "input_tokens": "usage.in",
        "output_tokens": "usage.out",
    },
    "stream": {"framing": "ndjson", "text": "token.text", "done": "done"},
    "error": {"message": "error.message"},
}


class TorchServeHandler(Handler):
    """The in-house API described in the module docstring."""

    def do_POST(self) -> None:
        if self.path != MODEL_PATH:
            self.send_json(
                404, {"error": {"message": f"Model not found: {self.path}", "code": 404}}
            )
            return
        try:
            body = self.read_json()
        except ValueError:
            self.send_json(400, {"error": {"message": "body is not JSON", "code": 400}})
            return
        inputs = body.get("inputs")
        if not isinstance(inputs, str):
            self.send_json(400, {"error": {"message": "`inputs` must be a string", "code": 400}})
            return
        parameters = body.get("parameters") or {}
        request: dict[str, Any] = {"prompt": inputs, "model": self.backend.model}
        for ours, theirs in (
            ("max_new_tokens", "max_tokens"),
            ("temperature", "temperature"),
            ("seed", "seed"),
            ("stop", "stop"),
        ):
            if ours in parameters:
                request[theirs] = parameters[ours]
        if body.get("stream"):
            self._stream(request, crash="crash-midstream" in inputs)
        else:
            result = self.backend.complete(request)
            choice = result["choices"][0]
            usage = result["usage"]
            self.send_json(
                200,
                {
                    "outputs": [{"text": choice["text"], "finish_reason": choice["finish_reason"]}],
                    "usage": {"in": usage["prompt_tokens"], "out": usage["completion_tokens"]},
                },
            )

    def _stream(self, request: dict[str, Any], *, crash: bool) -> None:
        self.start_chunked(200, "application/x-ndjson")
        prompt_tokens = self.backend.count_tokens(request["prompt"])
        generated = 0
        finish = None
        usage: dict[str, Any] = {}
        for chunk in self.backend.stream(request, usage):
            choice = chunk["choices"][0]
            if choice.get("text"):
                generated += 1
                self.write_chunk(
                    json.dumps({"token": {"text": choice["text"]}, "done": False}).encode() + b"\n"
                )
                if crash and generated == 2:
                    line = {"error": {"message": "CUDA out of memory (simulated)", "code": 500}}
                    self.write_chunk(json.dumps(line).encode() + b"\n")
                    self.end_chunked()
                    return
            finish = choice.get("finish_reason") or finish
        final = {
            "done": True,
            "outputs": [{"finish_reason": finish}],
            "usage": {"in": prompt_tokens, "out": usage.get("completion_tokens", generated)},
        }
        self.write_chunk(json.dumps(final).encode() + b"\n")
        self.end_chunked()


def serve(backend: Backend) -> LoopbackServer:
    """The in-house API on loopback (not started: use it as a context manager)."""
    return LoopbackServer(TorchServeHandler, backend)
