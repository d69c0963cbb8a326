"""The endpoints: each reads an OpenAI request, calls a configured model, answers OpenAI JSON.

Models are the objects `load_models` builds (or any mapping of names to the package's
models): a chat entry serves ``/v1/chat/completions``, a text entry (``type: llm``)
``/v1/completions``, an embeddings entry ``/v1/embeddings``. The request's ``model`` picks
the entry by its name in the file; the backend gets the entry's own ``model``.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import sys
import time
from array import array
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response

from langchain_customllm._json import dumps
from langchain_customllm._text import did_you_mean
from langchain_customllm.chat_models import ChatCustomLLM
from langchain_customllm.embeddings import CustomLLMEmbeddings
from langchain_customllm.images import CustomImageGenerator
from langchain_customllm.llms import CustomLLM
from langchain_customllm.serve.calls import chat_events, text_events
from langchain_customllm.serve.errors import GatewayError, gateway_error
from langchain_customllm.serve.metrics import Metrics, WorkerFiles
from langchain_customllm.serve.options import GatewayOptions
from langchain_customllm.serve.streaming import ClientGoneError, EventStream, unless_client_leaves
from langchain_customllm.serve.wire_in import (
    MAX_CHOICES,
    ChatBody,
    CompletionBody,
    EmbeddingsBody,
    ImagesBody,
    call_kwargs,
    parse_body,
    to_messages,
)
from langchain_customllm.serve.wire_out import ChunkWriter, Tally, chat_answer, completion_answer
from langchain_customllm.usage import ModelUsage, track_usage

__all__ = ["Exchange", "Gateway", "Model"]

logger = logging.getLogger("langchain_customllm.serve")

Model = ChatCustomLLM | CustomLLM | CustomLLMEmbeddings | CustomImageGenerator
_T = TypeVar("_T")
# The endpoint each kind of model serves, and what the kind is called in models.yaml.
_KINDS: dict[type, tuple[str, str]] = {
    ChatCustomLLM: ("/v1/chat/completions", "chat"),
    CustomLLM: ("/v1/completions", "llm"),
    CustomLLMEmbeddings: ("/v1/embeddings", "embeddings"),
    CustomImageGenerator: ("/v1/images/generations", "image"),
}
_JSON = "application/json"
# How long before the end of the shutdown grace period open streams are ended, so their
# error events are out before the server stops waiting for them.
_STOP_MARGIN = 0.5


@dataclass
class Exchange:
    """One request as the gateway sees it (in the ASGI scope, for the log and metrics).

    Attributes:
        request_id: The ``x-request-id`` passed to the backend and back.
        model: The model's name, once the request named a known one.
        tally: Tokens and cost used so far.
        error: The error answered (also one that ended a stream part-way).
    """

    request_id: str
    model: str = ""
    tally: Tally = field(default_factory=Tally)
    error: GatewayError | None = None


@dataclass(frozen=True)
class _Entry:
    name: str
    model: Model
    path: str
    # The model speaks OpenAI's wire format: vendor parameters can be sent on.
    passthrough: bool


def _entry(name: str, model: Model) -> _Entry:
    path = next(path for cls, (path, _) in _KINDS.items() if isinstance(model, cls))
    wire = model._runtime().wire  # built with the model: no I/O
    return _Entry(name, model, path, wire.name == "openai")


class Gateway:
    """The endpoints over a set of named models.

    Args:
        models: The models by the name clients use; those of a kind no endpoint serves
            are left out, and named in a warning.
        options: Caps, keys and the rest (see `GatewayOptions`).
    """

    def __init__(self, models: Mapping[str, Any], options: GatewayOptions) -> None:
        self.entries: dict[str, _Entry] = {}
        left_out = []
        for name, model in models.items():
            if isinstance(
                model, ChatCustomLLM | CustomLLM | CustomLLMEmbeddings | CustomImageGenerator
            ):
                self.entries[name] = _entry(name, model)
            else:
                left_out.append(f"{name} ({type(model).__name__})")
        if left_out:
            logger.warning("not served, no endpoint takes their kind: %s", ", ".join(left_out))
        self.options = options
        self.metrics = Metrics()
        self.worker_files = (
            WorkerFiles(options.metrics_dir, self.metrics) if options.metrics_dir else None
        )
        self.created = int(time.time())
        self.streams: set[EventStream] = set()

    # ------------------------------------------------------------------ helpers

    def _find(self, request: Request, name: str, path: str) -> _Entry:
        exchange: Exchange = request.scope["customllm"]
        entry = self.entries.get(name)
        if entry is None:
            known = sorted(self.entries)
            raise GatewayError(
                404,
                f"The model {name!r} does not exist on this gateway{did_you_mean(name, known)}; "
                f"it serves: {', '.join(known)}",
                param="model",
                code="model_not_found",
            )
        exchange.model = name
        if entry.path != path:
            kind = next(kind for p, kind in _KINDS.values() if p == entry.path)
            raise GatewayError(
                400,
                f"model {name!r} is a {kind} model (type: {kind}): call it at {entry.path}",
                param="model",
            )
        return entry

    async def _body(self, request: Request) -> bytes:
        return await request.body()

    @staticmethod
    def _json(payload: Any, tally: Tally) -> Response:
        headers = {"x-customllm-cost": repr(tally.cost)} if tally.cost is not None else None
        return Response(dumps(payload), media_type=_JSON, headers=headers)

    @staticmethod
    async def _call(request: Request, work: Awaitable[_T], name: str) -> _T:
        """A whole answer's model call: cancelled if the client leaves, errors mapped."""
        try:
            return await unless_client_leaves(request.receive, work)
        except ClientGoneError:
            raise
        except Exception as exc:
            raise gateway_error(exc, name) from None

    @staticmethod
    def _failing(exchange: Exchange, name: str) -> Any:
        def fail(exc: BaseException) -> GatewayError:
            exchange.error = gateway_error(exc, name)
            return exchange.error

        return fail

    # ------------------------------------------------------------------ endpoints

    async def chat(self, request: Request) -> Response:
        """``POST /v1/chat/completions``."""
        body = parse_body(await self._body(request), ChatBody)
        entry = self._find(request, body.model, "/v1/chat/completions")
        model: ChatCustomLLM = entry.model  # type: ignore[assignment]
        messages = to_messages(body)
        plan = call_kwargs(
            body,
            passthrough=entry.passthrough,
            entry_max_tokens=model.max_tokens,
            limits=self.options.limits,
            extra={
                "logprobs": body.logprobs,
                "top_logprobs": body.top_logprobs,
                "response_format": body.response_format,
            },
        )
        runnable: Any = model
        try:
            if body.tools:
                runnable = model.bind_tools(
                    body.tools,
                    tool_choice=body.tool_choice,
                    parallel_tool_calls=body.parallel_tool_calls,
                )
            elif body.tool_choice not in (None, "none", "auto"):
                raise GatewayError(
                    400, "tool_choice forces a tool call, but the request has no tools",
                    param="tool_choice",
                )  # fmt: skip
        except Exception as exc:
            raise gateway_error(exc, entry.name) from None
        exchange: Exchange = request.scope["customllm"]
        if body.stream:
            writer = ChunkWriter(entry.name, "chat", include_usage=body.include_usage)
            exchange.tally = writer.tally
            events = chat_events(runnable, messages, plan, writer, body.n)
            return EventStream(events, self._failing(exchange, entry.name), self.streams)

        async def answer() -> list[Any]:
            calls = [
                runnable.ainvoke(messages, stop=plan.stop, **plan.kwargs) for _ in range(body.n)
            ]
            return [await calls[0]] if len(calls) == 1 else list(await asyncio.gather(*calls))

        answers = await self._call(request, answer(), entry.name)
        return self._json(chat_answer(entry.name, answers, exchange.tally), exchange.tally)

    async def completions(self, request: Request) -> Response:
        """``POST /v1/completions``."""
        body = parse_body(await self._body(request), CompletionBody)
        entry = self._find(request, body.model, "/v1/completions")
        model: CustomLLM = entry.model  # type: ignore[assignment]
        plan = call_kwargs(
            body,
            passthrough=entry.passthrough,
            entry_max_tokens=model.max_tokens,
            limits=self.options.limits,
            extra={"logprobs": body.logprobs},
        )
        prompts = [prompt for prompt in body.prompts for _ in range(body.n)]
        if len(prompts) > MAX_CHOICES:
            raise GatewayError(
                400,
                f"{len(body.prompts)} prompts x n={body.n} is {len(prompts)} answers; the "
                f"gateway gives at most {MAX_CHOICES} per request",
                param="n",
            )
        exchange: Exchange = request.scope["customllm"]
        if body.stream:
            writer = ChunkWriter(entry.name, "text", include_usage=body.include_usage)
            exchange.tally = writer.tally
            events = text_events(model, prompts, plan, writer)
            return EventStream(events, self._failing(exchange, entry.name), self.streams)
        work = model.agenerate(prompts, stop=plan.stop, **plan.kwargs)
        result = await self._call(request, work, entry.name)
        generations = [choices[0] for choices in result.generations]
        payload = completion_answer(entry.name, generations, exchange.tally)
        return self._json(payload, exchange.tally)

    async def embeddings(self, request: Request) -> Response:
        """``POST /v1/embeddings``."""
        body = parse_body(await self._body(request), EmbeddingsBody)
        entry = self._find(request, body.model, "/v1/embeddings")
        model: CustomLLMEmbeddings = entry.model  # type: ignore[assignment]
        if body.dimensions is not None and body.dimensions != model.dimensions:
            width = model.dimensions or "its own"
            raise GatewayError(
                400,
                f"model {entry.name!r} gives {width}-wide vectors; set `dimensions` in its "
                "entry of the gateway's configuration to change that",
                param="dimensions",
            )
        if body.extras:
            raise GatewayError(
                400,
                f"the embeddings endpoint takes no {', '.join(sorted(body.extras))}",
                param=sorted(body.extras)[0],
            )
        exchange: Exchange = request.scope["customllm"]

        async def embed() -> tuple[list[list[float]], ModelUsage]:
            async with track_usage() as usage:
                vectors = await model.aembed_documents(body.texts)
            return vectors, usage.total

        vectors, used = await self._call(request, embed(), entry.name)
        tally = exchange.tally
        tally.add_usage({"input_tokens": used.input_tokens, "output_tokens": 0})
        tally.cost = used.cost
        base64_out = body.encoding_format == "base64"
        data = [
            {
                "object": "embedding",
                "index": index,
                "embedding": _base64(vector) if base64_out else vector,
            }
            for index, vector in enumerate(vectors)
        ]
        usage_block = tally.block()
        usage_block.pop("completion_tokens")
        payload = {"object": "list", "data": data, "model": entry.name, "usage": usage_block}
        return self._json(payload, tally)

    async def images(self, request: Request) -> Response:
        """``POST /v1/images/generations``: OpenAI's images answer, ``b64_json`` or ``url``."""
        body = parse_body(await self._body(request), ImagesBody)
        entry = self._find(request, body.model, "/v1/images/generations")
        model: CustomImageGenerator = entry.model  # type: ignore[assignment]
        if body.stream:
            raise GatewayError(
                400, "streamed image generation (partial images) is not served; leave out "
                "`stream`", param="stream",
            )  # fmt: skip
        if body.extras and not entry.passthrough:
            raise GatewayError(
                400,
                f"model {entry.name!r} takes no {', '.join(sorted(body.extras))} (its API is "
                "not OpenAI's, so fields it does not name cannot be sent on)",
                param=sorted(body.extras)[0],
            )
        options = body.model_dump(exclude={"model", "prompt", "stream"}, exclude_none=True)
        try:
            result = await model.agenerate_images(body.prompt, **options)
        except Exception as exc:
            raise gateway_error(exc, entry.name) from None
        tally: Tally = request.scope["customllm"].tally
        payload = result.to_openai()
        if result.usage is not None:
            tally.add_usage(
                {"input_tokens": result.usage.input_tokens,
                 "output_tokens": result.usage.output_tokens}
            )  # fmt: skip
        if result.cost is not None:
            tally.add_cost(result.cost.as_dict())
            # OpenAI's images usage block has no cost: it goes where the chat answers put it.
            payload.setdefault("usage", {})["cost"] = tally.cost
        return self._json(payload, tally)

    async def models(self, request: Request) -> Response:
        """``GET /v1/models``: every model's name, as clients call it."""
        data = [
            {
                "id": name,
                "object": "model",
                "created": self.created,
                "owned_by": entry.model.provider,
            }
            for name, entry in self.entries.items()
        ]
        return Response(dumps({"object": "list", "data": data}), media_type=_JSON)

    async def health(self, request: Request) -> Response:
        """``GET /health``: the gateway is up (it does not call the backends)."""
        return Response(dumps({"status": "ok", "models": len(self.entries)}), media_type=_JSON)

    async def prometheus(self, request: Request) -> Response:
        """``GET /metrics``: Prometheus' text format (see `Metrics`)."""
        files = self.worker_files
        metrics = self.metrics if files is None else files.combined()
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    def drain(self, grace: float) -> None:
        """A shutdown began: end the streams still open shortly before ``grace`` runs out.

        They end with a "shutting down" error event while their clients are still there
        (the server cancels whatever is left after its grace period, and a process exiting
        on SIGTERM would cut them without a word).
        """
        asyncio.get_running_loop().call_later(max(0.0, grace - _STOP_MARGIN), self._stop_streams)

    def _stop_streams(self) -> None:
        for stream in list(self.streams):
            stream.stop()

    async def aclose(self) -> None:
        """Close every model's connections (at shutdown)."""
        for entry in self.entries.values():
            await entry.model.aclose()


def _base64(vector: list[float]) -> str:
    """A vector as OpenAI's ``encoding_format="base64"``: little-endian float32 bytes."""
    packed = array("f", vector)
    if sys.byteorder == "big":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode()
