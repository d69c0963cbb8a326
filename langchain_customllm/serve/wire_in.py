"""OpenAI request JSON in: validated, then turned into LangChain messages and call kwargs.

Each endpoint's body is checked against a small pydantic schema (unknown fields allowed: they
are vendor parameters), and a failure names every field at fault (``messages.1.role: Input
should be 'system', 'developer', 'user', 'assistant' or 'tool' (got 'wizard')``). Values the
models themselves validate (``temperature=-1``) are left to them: the per-call check
raises `ConfigurationError`, answered as a 400 too, with the model's own wording.

Messages become LangChain messages through langchain-core's `convert_to_messages`: tool
results, assistant tool calls and content parts (images included) keep their meaning.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, TypeVar

from langchain_core.messages import BaseMessage, convert_to_messages
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from langchain_customllm._json import loads
from langchain_customllm._text import excerpt, validation_problems
from langchain_customllm.serve.errors import GatewayError

__all__ = [
    "ChatBody",
    "CompletionBody",
    "EmbeddingsBody",
    "ImagesBody",
    "call_kwargs",
    "parse_body",
    "to_messages",
]

# Answers asked for at once (``n``, prompts): each is a call to the backend.
MAX_CHOICES = 16

_Object = dict[str, Any]


class _Function(BaseModel):
    name: str
    arguments: str = "{}"


class _ToolCall(BaseModel):
    id: str
    type: Literal["function"] = "function"
    function: _Function


class _Message(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[_Object] | None = None
    name: str | None = None
    tool_calls: list[_ToolCall] | None = None
    tool_call_id: str | None = None

    @model_validator(mode="after")
    def _check(self) -> _Message:
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool message needs `tool_call_id` (the id of the call it answers)")
        if self.content is None and not (self.role == "assistant" and self.tool_calls):
            raise ValueError(f"a {self.role} message needs `content`")
        for call in self.tool_calls or ():
            try:
                json.loads(call.function.arguments)
            except ValueError:
                raise ValueError(
                    f"tool call {call.id!r}: `function.arguments` is not JSON: "
                    f"{excerpt(call.function.arguments)!r}"
                ) from None
        return self


class _StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class _OpenBody(BaseModel):
    """A request body that keeps the fields its schema does not name (vendor parameters)."""

    model_config = ConfigDict(extra="allow")

    @property
    def extras(self) -> dict[str, Any]:
        """The vendor parameters: fields this endpoint's schema does not name."""
        return dict(self.__pydantic_extra__ or {})


class _Sampling(_OpenBody):
    """What chat and text completions share."""

    model: str
    stream: bool = False
    stream_options: _StreamOptions | None = None
    n: Annotated[int, Field(ge=1, le=MAX_CHOICES)] = 1
    stop: str | list[str] | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    user: str | None = None

    @property
    def include_usage(self) -> bool:
        """Whether a stream ends with a usage chunk (``stream_options.include_usage``)."""
        return bool(self.stream_options and self.stream_options.include_usage)

    @property
    def stops(self) -> list[str] | None:
        """The stop sequences as a list."""
        return [self.stop] if isinstance(self.stop, str) else self.stop


class ChatBody(_Sampling):
    """A ``POST /v1/chat/completions`` body (fields as OpenAI's API reference names them)."""

    messages: Annotated[list[_Message], Field(min_length=1)]
    max_completion_tokens: int | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    tools: list[_Object] | None = None
    tool_choice: str | _Object | None = None
    parallel_tool_calls: bool | None = None
    response_format: _Object | None = None


class CompletionBody(_Sampling):
    """A ``POST /v1/completions`` body."""

    prompt: str | Annotated[list[str], Field(min_length=1, max_length=MAX_CHOICES)]
    logprobs: int | None = None

    @property
    def prompts(self) -> list[str]:
        """The prompts as a list (OpenAI takes one or several)."""
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)


class EmbeddingsBody(_OpenBody):
    """A ``POST /v1/embeddings`` body."""

    model: str
    input: str | Annotated[list[str], Field(min_length=1)]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = None
    user: str | None = None

    @property
    def texts(self) -> list[str]:
        """The inputs as a list."""
        return [self.input] if isinstance(self.input, str) else list(self.input)


class ImagesBody(_OpenBody):
    """A ``POST /v1/images/generations`` body (openai-python's ``ImageGenerateParams``)."""

    model: str
    prompt: Annotated[str, Field(min_length=1)]
    n: Annotated[int, Field(ge=1, le=10)] | None = None
    size: str | None = None
    quality: str | None = None
    style: str | None = None
    response_format: Literal["url", "b64_json"] | None = None
    output_format: str | None = None
    background: str | None = None
    user: str | None = None
    stream: bool = False


_B = TypeVar("_B", bound=BaseModel)


def parse_body(content: bytes, schema: type[_B]) -> _B:
    """Decode and validate a request body.

    Raises:
        GatewayError: 400, saying what is wrong: not JSON, not an object, or each field
            at fault.
    """
    try:
        data = loads(content)
    except ValueError as exc:
        raise GatewayError(400, f"The request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise GatewayError(
            400, f"The request body must be a JSON object, got {type(data).__name__}"
        )
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]["loc"]
        raise GatewayError(
            400,
            f"Invalid request: {validation_problems(exc, 'body', schema.model_fields)}",
            param=".".join(str(part) for part in first) or None,
        ) from None


def to_messages(body: ChatBody) -> list[BaseMessage]:
    """The request's messages as LangChain messages.

    Raises:
        GatewayError: 400 if langchain-core cannot read one (the schema let it through).
    """
    raw: list[_Object] = []
    for message in body.messages:
        item = message.model_dump(exclude_none=True)
        item.setdefault("content", "")
        raw.append(item)
    try:
        return convert_to_messages(raw)
    except (ValueError, KeyError, TypeError, NotImplementedError) as exc:
        text = f"Invalid messages: {excerpt(str(exc))}"
        raise GatewayError(400, text, param="messages") from None


@dataclass(frozen=True)
class CallLimits:
    """The gateway's caps on what a call may ask for.

    Attributes:
        max_tokens: The most output tokens a request may ask for; also sent when neither
            the request nor the model's entry sets ``max_tokens``. None: no cap.
    """

    max_tokens: int | None = None


@dataclass
class CallPlan:
    """How to call a model for one request.

    Attributes:
        kwargs: Per-call keyword arguments for ``ainvoke``/``astream``/``agenerate``.
        stop: Stop sequences (their own argument in LangChain's API).
    """

    kwargs: dict[str, Any] = field(default_factory=dict)
    stop: list[str] | None = None


def call_kwargs(
    body: _Sampling,
    *,
    passthrough: bool,
    entry_max_tokens: int | None,
    limits: CallLimits,
    extra: Mapping[str, Any] = {},
) -> CallPlan:
    """The per-call keyword arguments of a chat or text completion request.

    Args:
        body: The validated request.
        passthrough: The model speaks OpenAI's wire format, so vendor parameters (fields
            the endpoint's schema does not name) are sent on verbatim; otherwise they are
            refused, never dropped.
        entry_max_tokens: The model entry's own ``max_tokens``.
        limits: The gateway's caps.
        extra: The endpoint's own per-call arguments (logprobs, tools, ...), where set.

    Raises:
        GatewayError: 400 for ``max_tokens`` over the cap, or vendor parameters the model's
            format cannot send.
    """
    kwargs: dict[str, Any] = {}
    asked = getattr(body, "max_completion_tokens", None) or body.max_tokens
    cap = limits.max_tokens
    if asked is not None:
        if cap is not None and asked > cap:
            raise GatewayError(
                400,
                f"max_tokens {asked} is over this gateway's cap of {cap}; ask for {cap} or fewer",
                param="max_tokens",
            )
        kwargs["max_tokens"] = asked
    elif cap is not None and (entry_max_tokens is None or entry_max_tokens > cap):
        kwargs["max_tokens"] = cap
    for name in ("temperature", "top_p", "seed"):
        value = getattr(body, name)
        if value is not None:
            kwargs[name] = value
    kwargs.update({k: v for k, v in extra.items() if v is not None})
    vendor = body.extras
    # An end-user id (abuse tracking) changes no answer: sent where the format has room.
    if body.user is not None and passthrough:
        vendor["user"] = body.user
    if vendor and not passthrough:
        raise GatewayError(
            400,
            f"model {body.model!r} is not served over OpenAI's wire format, so it cannot "
            f"take {', '.join(sorted(vendor))}; leave them out",
            param=sorted(vendor)[0],
        )
    kwargs.update(vendor)
    return CallPlan(kwargs, body.stops)
