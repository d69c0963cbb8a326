"""Per-call overrides of the generation settings, validated as the settings themselves are.

``llm.invoke(..., temperature="hot")`` or ``max_tokens=-1`` is refused before anything is
sent, with the same rule and the same `ConfigurationError` as ``ChatCustomLLM(temperature=
"hot")``: the validators are built from the model class's own fields.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import TypeAdapter, ValidationError

from langchain_customllm._exceptions import ConfigurationError

__all__ = ["CALL_KEYS", "check_call_values"]

# Per-call keyword arguments the models read themselves; everything else a caller passes
# (except LangChain's own ``ls_*`` tracing hints) goes verbatim into the request body. Those
# that override a setting of the same name are validated as that setting is.
CALL_KEYS = frozenset(
    {
        "model", "temperature", "max_tokens", "top_p", "seed", "stream_usage",
        "tools", "tool_choice", "response_format", "logprobs", "top_logprobs",
        "include_stop_sequence", "extra_body", "stream",
    }
)  # fmt: skip


@functools.cache
def _adapter(cls: Any, name: str) -> TypeAdapter[Any]:
    info = cls.model_fields[name]
    kind: Any = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
    return TypeAdapter(kind)


def check_call_values(
    cls: Any, kwargs: Mapping[str, Any], keys: frozenset[str] = CALL_KEYS
) -> dict[str, Any]:
    """The validated values of the setting overrides among ``kwargs``.

    Args:
        cls: The model class whose fields validate the values.
        kwargs: The per-call keyword arguments.
        keys: The names read as setting overrides (the chat and text models' by default).

    Raises:
        ConfigurationError: Naming each bad value, what it was and what is accepted.
    """
    checked: dict[str, Any] = {}
    problems: list[str] = []
    for name in keys.intersection(kwargs, cls.model_fields):
        value = kwargs[name]
        try:
            checked[name] = _adapter(cls, name).validate_python(value)
        except ValidationError as exc:
            reason = "; ".join(err["msg"].removeprefix("Value error, ") for err in exc.errors())
            problems.append(f"{name}: {reason} (got {value!r})")
    if problems:
        raise ConfigurationError(f"Bad per-call setting: {'; '.join(sorted(problems))}")
    return checked
