"""``customllm serve``: any configured model, served to any OpenAI client.

::

    customllm serve models.yaml [--host 127.0.0.1] [--port 4000] [--workers N]

A thin ASGI layer (Starlette on uvicorn) over the same model objects `load_models` builds:
no second client and no second error map. Needs the ``serve`` extra
(``pip install "langchain-customllm[serve]"``); its names are imported on first use, so the
command line can list ``serve`` without it.

Layout:

- `wire_in`: OpenAI request JSON to LangChain messages and per-call arguments (validated).
- `wire_out`: LangChain answers to OpenAI JSON and stream chunks, usage and cost.
- `calls`: the model calls behind streamed answers (``n`` choices side by side).
- `streaming`: `EventStream`, an SSE response that cancels the backend call when the
  client leaves and ends a failed stream with an error event.
- `errors`: `GatewayError` and `gateway_error`, the one mapping from our error tree to
  OpenAI's error JSON and HTTP status.
- `metrics`: Prometheus' text format for ``/metrics``.
- `options`: `GatewayOptions` and `ClientKeys`.
- `routes`: the endpoints; `app`: `create_app` and the guard (ids, keys, body cap).
- `cli`: the ``serve`` subcommand, uvicorn, workers and graceful shutdown.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from langchain_customllm._lazy import lazy_exports

if TYPE_CHECKING:
    from langchain_customllm.serve.app import create_app
    from langchain_customllm.serve.errors import GatewayError, gateway_error
    from langchain_customllm.serve.options import ClientKeys, GatewayOptions

_LAZY = {
    "create_app": "app",
    "GatewayError": "errors",
    "gateway_error": "errors",
    "ClientKeys": "options",
    "GatewayOptions": "options",
}

__all__ = ["ClientKeys", "GatewayError", "GatewayOptions", "create_app", "gateway_error"]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals(), __all__)
