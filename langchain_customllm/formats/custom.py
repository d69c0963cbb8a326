"""A wire format declared in data: describe your API in YAML, JSON or a dict.

For torch-serve / KServe handlers and in-house gateways with their own JSON. Nothing in the
configuration is ever evaluated as code: request templates are JSON with ``{placeholders}``,
and response fields are paths in a tiny selector language (`selectors`). Example::

    kind: custom
    name: my-model
    chat_path: /predictions/my-model        # chat prompts are rendered with chat_template
    request: {inputs: "{prompt}", parameters: {max_new_tokens: "{max_tokens}", stop: "{stop}"}}
    response: {text: "outputs[0].text", finish_reason: "outputs[0].finish_reason",
               input_tokens: "usage.in", output_tokens: "usage.out"}
    stream: {framing: ndjson, text: "token.text", done: "done"}
    error: {message: "error.message"}

Placeholders: ``{prompt}``, ``{messages}`` (OpenAI-style list), ``{model}``, ``{max_tokens}``,
``{temperature}``, ``{top_p}``, ``{seed}``, ``{stop}``, ``{stream}``. A string that is exactly one
placeholder is replaced by the typed value (a list stays a list, a number a number); if that
value is unset, the key is dropped, so the server applies its own default. Placeholders inside
longer strings are replaced by their text; ``{{`` and ``}}`` are literal braces.

An ``embed`` section describes an embeddings endpoint (`embedding.EmbedSpec`), an ``image``
section an image-generation endpoint (`image.ImageSpec`); a format may have only those,
without paths, request or response for text generation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from langchain_core.messages import BaseMessage
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from langchain_customllm._auth import check_plain_headers
from langchain_customllm._exceptions import ConfigurationError, ResponseError, StreamError
from langchain_customllm._framing import Framing, StreamEvent
from langchain_customllm._json import loads
from langchain_customllm._text import excerpt, validation_problems
from langchain_customllm.formats.base import (
    EmbedParams,
    GenerationParams,
    ImageParams,
    ParsedChunk,
    ParsedEmbeddings,
    ParsedImages,
    TokenUsage,
    WireFormat,
    WireRequest,
    register_builtin_format,
    sampling_fields,
)
from langchain_customllm.formats.embedding import CustomEmbedder, EmbedSpec
from langchain_customllm.formats.image import CustomImager, ImageSpec
from langchain_customllm.formats.openai import messages_to_openai
from langchain_customllm.formats.prompt import ChatTemplate, get_chat_template
from langchain_customllm.formats.selectors import (
    MISSING,
    Selector,
    compile_paths,
    compile_selector,
    select,
)
from langchain_customllm.formats.template import check_template, render

__all__ = ["CustomFormat", "CustomFormatConfig"]

PLACEHOLDERS = frozenset(
    {"prompt", "messages", "model", "max_tokens", "temperature", "top_p", "seed", "stop", "stream"}
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ResponseSpec(_Strict):
    """Where the fields of a whole answer are: a selector path for each.

    Attributes:
        text: Path to the answer text (required).
        finish_reason: Path to why generation ended.
        input_tokens: Path to the prompt token count.
        output_tokens: Path to the generated token count.
        total_tokens: Path to the total token count (else input plus output).
        reasoning: Path to reasoning text, for APIs that return it apart.
        id: Path to the response id.
        model: Path to the model name the API reports.
    """

    text: str
    finish_reason: str | None = None
    input_tokens: str | None = None
    output_tokens: str | None = None
    total_tokens: str | None = None
    reasoning: str | None = None
    id: str | None = None
    model: str | None = None


class StreamSpec(_Strict):
    """How a streamed answer is framed and where each event's fields are.

    Attributes:
        framing: ``ndjson`` (one JSON object a line), ``sse`` or ``text`` (raw text chunks).
        text: Path to the text in each event (required).
        input_tokens: Path to the prompt token count (defaults to the ``response`` path).
        output_tokens: Path to the generated token count (defaults to the ``response`` path).
        reasoning: Path to reasoning text in each event.
    """

    framing: Framing = "ndjson"
    text: str
    cumulative: bool = False
    """True if each event carries the whole text so far (we emit only what is new)."""
    done: str | None = None
    """Path to a flag that is true on the last event."""
    done_data: str | None = None
    """Literal event data that ends the stream (e.g. ``[DONE]``)."""
    finish_reason: str | None = None
    """Defaults to the ``response`` section's path, as do the token counts."""
    input_tokens: str | None = None
    output_tokens: str | None = None
    reasoning: str | None = None


class ErrorSpec(_Strict):
    """Where an error message is, in error answers and error events.

    Attributes:
        message: Path to the message (``error.message``).
    """

    message: str


class CustomFormatConfig(_Strict):
    """The validated form of a ``kind: custom`` wire-format configuration.

    Attributes:
        kind: Always ``custom``.
        name: The format's name, in error messages and ``_identifying_params``.
        chat_path: Path of chat calls; chat messages are rendered into ``{prompt}`` with
            ``chat_template`` (and are ``{messages}`` as an OpenAI-style list).
        completion_path: Path of text-completion calls. At least one of the two paths is
            needed; each falls back to the other.
        stream_chat_path: A different path for streamed chat calls, if the API has one.
        stream_completion_path: A different path for streamed completions.
        request: The JSON body, with ``{placeholder}`` values.
        response: Where the fields of a whole answer are.
        stream: How streams are framed and read; None if the API cannot stream (streaming
            calls then get the whole answer as one chunk).
        error: Where the API puts its error message.
        chat_template: ``chatml``, ``llama3``, ``plain``, or a template mapping.
        headers: Extra headers for every request to this API.
        send_stop: False if the API rejects a stop parameter (stops are enforced
            client-side anyway).
        embed: The API's embeddings endpoint, if it has one (`embedding.EmbedSpec`).
        image: The API's image-generation endpoint, if it has one (`image.ImageSpec`).
    """

    kind: Literal["custom"] = "custom"
    name: str = "custom"
    chat_path: str | None = None
    completion_path: str | None = None
    stream_chat_path: str | None = None
    stream_completion_path: str | None = None
    request: dict[str, Any] = Field(default_factory=dict)
    response: ResponseSpec | None = None
    stream: StreamSpec | None = None
    error: ErrorSpec | None = None
    chat_template: str | dict[str, Any] = "chatml"
    headers: dict[str, str] = Field(default_factory=dict)
    send_stop: bool = True
    embed: EmbedSpec | None = None
    image: ImageSpec | None = None

    @field_validator("headers")
    @classmethod
    def _plain_headers(cls, value: dict[str, str]) -> dict[str, str]:
        # A format is a description anyone may print or dump: no secrets in it.
        check_plain_headers(value, "headers")
        return value

    @field_validator("chat_path", "completion_path", "stream_chat_path", "stream_completion_path")
    @classmethod
    def _leading_slash(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError(f"a path must start with '/', got {value!r}")
        return value


class CustomFormat(WireFormat):
    """A wire format built from a `CustomFormatConfig` (see the module docstring)."""

    name = "custom"

    def __init__(self, config: CustomFormatConfig | Mapping[str, Any]) -> None:
        if not isinstance(config, CustomFormatConfig):
            config = self.parse_config(config)
        self.config = config
        self.name = config.name  # type: ignore[misc]  # per-instance name for messages
        generates = config.chat_path is not None or config.completion_path is not None
        if not generates and config.embed is None and config.image is None:
            raise ConfigurationError(
                f"custom wire format {config.name!r}: set chat_path and/or completion_path "
                "(with request and response), or an embed or image section"
            )
        if generates and (not config.request or config.response is None):
            raise ConfigurationError(
                f"custom wire format {config.name!r}: chat_path/completion_path need "
                "`request` (the body) and `response` (where the text is)"
            )
        check_template(config.request, "request", PLACEHOLDERS)
        self._template: ChatTemplate = get_chat_template(config.chat_template)
        # An embeddings-only format has no response section and no generation path (a
        # chat call fails in `_request`); the stand-in only keeps the readers total.
        response = config.response or ResponseSpec(text="text")
        self._response = self._compile(response.model_dump(), "response")
        self._embed = CustomEmbedder(config.embed, config.name) if config.embed else None
        self.supports_embeddings = config.embed is not None  # type: ignore[misc]
        self._image = CustomImager(config.image, config.name) if config.image else None
        self.supports_image_generation = config.image is not None  # type: ignore[misc]
        self._stream: dict[str, Selector] = {}
        if config.stream is not None:
            # Usage and finish reason usually sit where the whole answer has them.
            inherited = {
                key: getattr(response, key)
                for key in ("finish_reason", "input_tokens", "output_tokens")
            }
            declared = {k: v for k, v in config.stream.model_dump().items() if v is not None}
            self._stream = self._compile({**inherited, **declared}, "stream")
        self._error = compile_selector(config.error.message) if config.error else None
        self.framing = config.stream.framing if config.stream else "ndjson"  # type: ignore[misc]
        self.supports_streaming = config.stream is not None  # type: ignore[misc]
        self.sends_stop_to_server = config.send_stop  # type: ignore[misc]
        self.reports_usage = response.output_tokens is not None  # type: ignore[misc]

    @staticmethod
    def parse_config(data: Mapping[str, Any]) -> CustomFormatConfig:
        """Validate a configuration mapping, with errors that say what and where."""
        try:
            return CustomFormatConfig.model_validate(dict(data))
        except ValidationError as exc:
            problems = validation_problems(exc, "(top)", known=CustomFormatConfig.model_fields)
            raise ConfigurationError(f"Invalid custom wire format: {problems}") from None

    @staticmethod
    def _compile(spec: dict[str, Any], where: str) -> dict[str, Selector]:
        paths = {k: v for k, v in spec.items() if k not in ("framing", "cumulative", "done_data")}
        return compile_paths(paths, where)

    # ------------------------------------------------------------------ requests

    def _request(
        self, path: str | None, values: dict[str, Any], params: GenerationParams, stream: bool
    ) -> WireRequest:
        if path is None:
            raise ConfigurationError(f"custom wire format {self.name!r}: no path for this call")
        body = render(self.config.request, values)
        body.update(params.extra_body)
        return WireRequest(path=path, body=body, headers=dict(self.config.headers))

    @staticmethod
    def _values(params: GenerationParams, stream: bool) -> dict[str, Any]:
        # An unset setting is absent, which the template reads as None: its key is dropped.
        return {"model": params.model, "stream": stream, **sampling_fields(params)}

    def _path(self, chat: bool, stream: bool) -> str | None:
        cfg = self.config
        if (chat and cfg.chat_path) or not cfg.completion_path:
            path, stream_path = cfg.chat_path, cfg.stream_chat_path
        else:
            path, stream_path = cfg.completion_path, cfg.stream_completion_path
        return stream_path if stream and stream_path else path

    def chat_request(
        self, messages: Sequence[BaseMessage], params: GenerationParams, *, stream: bool
    ) -> WireRequest:
        """Render the request template for a chat call."""
        values = self._values(params, stream)
        values["prompt"] = self._template.render(messages)
        values["messages"] = messages_to_openai(messages)
        return self._request(self._path(True, stream), values, params, stream)

    def completion_request(
        self, prompt: str, params: GenerationParams, *, stream: bool
    ) -> WireRequest:
        """Render the request template for a text-completion call."""
        values = self._values(params, stream)
        values["prompt"] = prompt
        values["messages"] = [{"role": "user", "content": prompt}]
        return self._request(self._path(False, stream), values, params, stream)

    def embed_request(self, texts: Sequence[str], params: EmbedParams) -> WireRequest:
        """Render the ``embed`` section's request template."""
        if self._embed is None:
            return super().embed_request(texts, params)
        path, body = self._embed.request(texts, params)
        return WireRequest(path=path, body=body, headers=dict(self.config.headers))

    def parse_embeddings(self, body: Any) -> ParsedEmbeddings:
        """Read the vectors, usage and model per the ``embed`` section."""
        if self._embed is None:
            return super().parse_embeddings(body)
        self._raise_declared_error(body, stream=False)
        return self._embed.parse(body)

    def image_request(self, prompt: str, params: ImageParams) -> WireRequest:
        """Render the ``image`` section's request template."""
        if self._image is None:
            return super().image_request(prompt, params)
        path, body = self._image.request(prompt, params)
        return WireRequest(path=path, body=body, headers=dict(self.config.headers))

    def parse_images(self, body: Any) -> ParsedImages:
        """Read the images, usage and model per the ``image`` section."""
        if self._image is None:
            return super().parse_images(body)
        self._raise_declared_error(body, stream=False)
        paths = self._image.paths
        return ParsedImages(
            self._image.parse(body),
            usage=self._usage(paths, body),
            model=_opt_str(self._get(paths, "model", body, required=False)),
        )

    def error_message(self, body: Any) -> str | None:
        """The server's message from an error answer, per the ``error`` section."""
        if self._error is None:
            return None
        message = self._error.find(body)
        return None if message is MISSING or message in (None, "") else str(message)

    # ------------------------------------------------------------------ answers

    def _get(self, selectors: dict[str, Selector], field: str, data: Any, *, required: bool) -> Any:
        selector = selectors.get(field)
        if selector is None:
            return None
        return select(selector, data, self.name, required=required)

    def _text(self, selectors: dict[str, Selector], field: str, data: Any, required: bool) -> str:
        value = self._get(selectors, field, data, required=required)
        if value is None:
            if required:
                raise ResponseError(
                    f"custom wire format {self.name!r}: `{selectors[field].path}` is null; "
                    f"got: {excerpt(data)}",
                    body=data,
                )
            return ""
        if not isinstance(value, str):
            raise ResponseError(
                f"custom wire format {self.name!r}: `{selectors[field].path}` should be text, "
                f"got {type(value).__name__}: {excerpt(value)}",
                body=data,
            )
        return value

    def _int(self, selectors: dict[str, Selector], field: str, data: Any) -> int | None:
        value = self._get(selectors, field, data, required=False)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ResponseError(
                f"custom wire format {self.name!r}: `{selectors[field].path}` should be a "
                f"token count, got {excerpt(value)}",
                body=data,
            )
        return int(value)

    def _usage(self, selectors: dict[str, Selector], data: Any) -> TokenUsage | None:
        inp = self._int(selectors, "input_tokens", data)
        out = self._int(selectors, "output_tokens", data)
        if inp is None and out is None:
            return None  # the total is not read (nor checked) without the counts
        return TokenUsage.from_counts(inp, out, self._int(selectors, "total_tokens", data))

    def _raise_declared_error(self, data: Any, stream: bool) -> None:
        message = self.error_message(data)
        if message is None:
            return
        text = f"custom wire format {self.name!r}: the server reported: {excerpt(message)}"
        if stream:
            raise StreamError(text, body=data)
        raise ResponseError(text, body=data)

    def parse_response(self, body: Any, *, chat: bool) -> ParsedChunk:
        """Pick text, finish reason, usage, id and model out of a whole answer."""
        self._raise_declared_error(body, stream=False)
        sel = self._response
        return ParsedChunk(
            text=self._text(sel, "text", body, required=True),
            reasoning=self._text(sel, "reasoning", body, required=False),
            finish_reason=_opt_str(self._get(sel, "finish_reason", body, required=False)),
            usage=self._usage(sel, body),
            model=_opt_str(self._get(sel, "model", body, required=False)),
            id=_opt_str(self._get(sel, "id", body, required=False)),
        )

    def parse_event(self, event: StreamEvent, *, chat: bool) -> ParsedChunk | None:
        """Parse one stream event per the ``stream`` section."""
        spec = self.config.stream
        if spec is None:
            raise ConfigurationError(f"custom wire format {self.name!r} declares no `stream`")
        if spec.done_data is not None and event.data.strip() == spec.done_data:
            return ParsedChunk(done=True)
        if spec.framing == "text":
            return ParsedChunk(text=event.data, cumulative=spec.cumulative)
        if not event.data.strip():
            return None
        try:
            data = loads(event.data)
        except ValueError:
            raise ResponseError(
                f"custom wire format {self.name!r}: a stream event is not JSON: "
                f"{excerpt(event.data)}"
            ) from None
        self._raise_declared_error(data, stream=True)
        sel = self._stream
        done = bool(self._get(sel, "done", data, required=False))
        finish = _opt_str(self._get(sel, "finish_reason", data, required=False))
        final = done or finish is not None
        text = self._text(sel, "text", data, required=not final)
        return ParsedChunk(
            text=text,
            reasoning=self._text(sel, "reasoning", data, required=False),
            finish_reason=finish,
            usage=self._usage(sel, data),
            done=done,
            cumulative=spec.cumulative,
        )


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


register_builtin_format("custom", lambda **options: CustomFormat(options))
