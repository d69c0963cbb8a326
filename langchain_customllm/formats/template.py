"""Request templates: JSON with ``{placeholder}`` values, for the formats declared in data.

A string that is exactly one placeholder is replaced by the typed value (a list stays a
list, a number a number); if that value is unset, the key is dropped, so the server applies
its own default. Placeholders inside longer strings are replaced by their text; ``{{`` and
``}}`` are literal braces. Nothing is evaluated.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from langchain_customllm._exceptions import ConfigurationError

__all__ = ["EndpointSpec", "check_template", "render"]

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_]\w*)\}")
_DROP: Any = object()  # marks a template value whose placeholder was unset


class EndpointSpec(BaseModel):
    """An endpoint of a custom format: where its calls go and their body's template.

    The ``embed`` and ``image`` sections extend it with the paths of their answers.

    Attributes:
        path: The path of the calls, relative to ``base_url``.
        request: The JSON body, with ``{placeholder}`` values.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    request: dict[str, Any]

    @field_validator("path")
    @classmethod
    def _leading_slash(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"a path must start with '/', got {value!r}")
        return value


def check_template(node: Any, where: str, known: frozenset[str]) -> None:
    """Refuse a placeholder that is not in ``known``, naming where it is.

    Raises:
        ConfigurationError: For an unknown placeholder.
    """
    if isinstance(node, dict):
        for key, value in node.items():
            check_template(value, f"{where}.{key}", known)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            check_template(value, f"{where}[{i}]", known)
    elif isinstance(node, str):
        for match in _PLACEHOLDER.finditer(node):
            name = match.group(1)
            if name is not None and name not in known:
                raise ConfigurationError(
                    f"custom wire format: unknown placeholder {{{name}}} in {where}; "
                    f"known: {', '.join(sorted(known))} (write {{{{ for a literal brace)"
                )


def render(node: Any, values: Mapping[str, Any]) -> Any:
    """The template with its placeholders replaced (see the module docstring)."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            rendered = render(value, values)
            if rendered is not _DROP:
                out[key] = rendered
        return out
    if isinstance(node, list):
        return [r for r in (render(v, values) for v in node) if r is not _DROP]
    if isinstance(node, str):
        whole = _PLACEHOLDER.fullmatch(node)
        if whole and whole.group(1):
            value = values.get(whole.group(1))
            return _DROP if value is None else value

        def sub(match: re.Match[str]) -> str:
            if match.group(1) is None:
                return match.group()[0]
            value = values.get(match.group(1))
            if value is None:
                return ""
            return value if isinstance(value, str) else json.dumps(value)

        return _PLACEHOLDER.sub(sub, node)
    return node
