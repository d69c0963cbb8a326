"""Tool binding and structured output for `ChatCustomLLM`.

``bind_tools`` formats tools as OpenAI functions and binds them with the caller's
``tool_choice`` (adapted to the server's profile when the request is built).
``with_structured_output`` offers three methods, each adapted to the server's profile:

- ``json_schema`` (default): ``response_format`` with the schema; sent as OpenAI's
  ``json_schema``, or as ``json_object`` + ``schema`` where the server wants that
  (llama-cpp-python).

Bound values are the caller's; they are spelled for the server's profile each time a
request is built, so a model that detects its server at the first call adapts them too.
- ``function_calling``: one forced tool whose arguments are the answer.
- ``json_mode``: ``response_format: json_object``; the prompt must ask for the shape.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any, Literal

from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessage
from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
from langchain_core.output_parsers.openai_tools import (
    JsonOutputKeyToolsParser,
    PydanticToolsParser,
)
from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_json_schema, convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass

from langchain_customllm._exceptions import ConfigurationError
from langchain_customllm.profiles import (
    ServerProfile,
    adapt_response_format,
    adapt_tools_and_choice,
    with_strict,
)

__all__ = ["StructuredMethod", "format_tools", "structured_output"]

StructuredMethod = Literal["json_schema", "function_calling", "json_mode"]
ToolLike = dict[str, Any] | type | Callable[..., Any] | BaseTool


def format_tools(
    tools: Sequence[ToolLike], profile: ServerProfile, strict: bool | None = None
) -> list[dict[str, Any]]:
    """Tools as OpenAI function definitions (with ``strict`` if the caller set it).

    The profile's own ``strict`` default is added per request (`profiles.adapt_tools`),
    where the profile of a detected server is known.
    """
    if not profile.tool_calling:
        raise ConfigurationError(
            f"server_profile {profile.name!r} says this server has no tool calling"
        )
    return [with_strict(convert_to_openai_tool(tool, strict=strict), strict) for tool in tools]


def check_tool_choice(choice: Any, tools: Sequence[dict[str, Any]], profile: ServerProfile) -> None:
    """Fail at bind time, not at the first call, for a choice the server cannot honour."""
    adapt_tools_and_choice(tools, choice, profile)


def _is_pydantic(schema: Any) -> bool:
    # pydantic v2 models and langchain's pydantic.v1 ones alike.
    return isinstance(schema, type) and is_basemodel_subclass(schema)


def structured_output(
    llm: Runnable[LanguageModelInput, AIMessage],
    bind_tools: Callable[..., Runnable[LanguageModelInput, AIMessage]],
    profile: ServerProfile,
    schema: dict[str, Any] | type,
    *,
    method: StructuredMethod = "json_schema",
    include_raw: bool = False,
    strict: bool | None = None,
) -> Runnable[LanguageModelInput, Any]:
    """Build the structured-output runnable (see the module docstring).

    Args:
        llm: The chat model.
        bind_tools: Its ``bind_tools``.
        profile: The server's profile.
        schema: A pydantic class, a TypedDict, or a JSON schema / OpenAI function dict.
        method: ``json_schema``, ``function_calling`` or ``json_mode``.
        include_raw: Return ``{"raw", "parsed", "parsing_error"}`` instead of raising on a
            parse failure.
        strict: Ask the server to enforce the schema strictly, where it supports it.
    """
    pydantic = _is_pydantic(schema)
    tool = convert_to_openai_tool(schema, strict=strict)
    name = str(tool["function"]["name"])
    ls_format = {"kwargs": {"method": method, "strict": strict}, "schema": tool}
    parser: Runnable[Any, Any]
    if method == "function_calling":
        bound = bind_tools(
            [schema], tool_choice=name, strict=strict, ls_structured_output_format=ls_format
        )
        parser = (
            PydanticToolsParser(tools=[schema], first_tool_only=True)  # type: ignore[list-item]
            if pydantic
            else JsonOutputKeyToolsParser(key_name=name, first_tool_only=True)
        )
    elif method in ("json_schema", "json_mode"):
        if method == "json_schema":
            json_schema = convert_to_json_schema(schema)
            spec: dict[str, Any] = {"name": name, "schema": json_schema}
            if strict is not None:
                spec["strict"] = strict
            response_format = {"type": "json_schema", "json_schema": spec}
        else:
            response_format = {"type": "json_object"}
        # Fail early where the known profile cannot do it; bound as asked and spelled for
        # the server per request (a detected server is known only at the first call).
        adapt_response_format(response_format, profile)
        bound = llm.bind(response_format=response_format, ls_structured_output_format=ls_format)
        parser = (
            PydanticOutputParser(pydantic_object=schema)  # type: ignore[arg-type]
            if pydantic
            else JsonOutputParser()
        )
    else:
        raise ConfigurationError(
            f"Unknown structured output method {method!r}; "
            "use 'json_schema', 'function_calling' or 'json_mode'"
        )
    if not include_raw:
        return bound | parser
    parse = RunnablePassthrough.assign(
        parsed=itemgetter("raw") | parser, parsing_error=lambda _: None
    )
    no_parse = RunnablePassthrough.assign(parsed=lambda _: None)
    return RunnableMap(raw=bound) | parse.with_fallbacks([no_parse], exception_key="parsing_error")
