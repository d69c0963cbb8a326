"""KServe's v1 "predict" protocol on loopback, for the Python adapter of examples/.

``POST /v1/models/<name>:predict`` takes ``{"instances": [{"prompt", "max_tokens",
"stop"}]}`` and answers ``{"predictions": [{"generated", "finish_reason", "tokens":
{"prompt", "completion"}}]}``: what `examples/kserve_adapter.py` speaks. Text comes from the
real llama.cpp server (`Backend`).
"""

from __future__ import annotations

from typing import Any

from tests.servers.base import Backend, Handler, LoopbackServer

MODEL = "my-model"


class KServeHandler(Handler):
    """The predict endpoint of the module docstring."""

    def do_POST(self) -> None:
        if self.path != f"/v1/models/{MODEL}:predict":
            self.send_json(404, {"error": f"model not found: {self.path}"})
            return
        body = self.read_json()
        instances = body.get("instances")
        if not isinstance(instances, list) or not instances:
            self.send_json(400, {"error": "`instances` must be a non-empty list"})
            return
        predictions: list[dict[str, Any]] = []
        for instance in instances:
            request = {"prompt": instance["prompt"], "model": self.backend.model}
            for key in ("max_tokens", "stop"):
                if instance.get(key) is not None:
                    request[key] = instance[key]
            result = self.backend.complete(request)
            choice, usage = result["choices"][0], result["usage"]
            predictions.append(
                {
                    "generated": choice["text"],
                    "finish_reason": choice["finish_reason"],
                    "tokens": {
                        "prompt": usage["prompt_tokens"],
                        "completion": usage["completion_tokens"],
                    },
                }
            )
        self.send_json(200, {"predictions": predictions})


def serve(backend: Backend) -> LoopbackServer:
    """The KServe API on loopback (not started: use it as a context manager)."""
    return LoopbackServer(KServeHandler, backend)
