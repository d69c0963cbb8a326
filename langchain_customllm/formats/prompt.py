"""Render chat messages into one prompt string, for servers that take text only.

TGI's native ``/generate``, torch-serve / KServe handlers and many in-house APIs accept a
single ``inputs`` string. A `ChatTemplate` turns LangChain messages into that string the way
the model was trained to read them: ChatML (SmolLM2, Qwen, ...), Llama 3, a plain
"Role: text" transcript, or the user's own per-role templates. Pure string formatting: no
code is evaluated, placeholders are only ``{content}`` and ``{role}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

from langchain_customllm._exceptions import ConfigurationError

__all__ = ["BUILTIN_TEMPLATES", "ChatTemplate", "get_chat_template", "message_role"]


def message_role(message: BaseMessage) -> str:
    """The conventional role name of a message (``system``, ``user``, ``assistant``, ...)."""
    if isinstance(message, ChatMessage):
        return message.role
    if isinstance(message, HumanMessage):
        return "user"
    if isinstance(message, AIMessage):
        return "assistant"
    if isinstance(message, SystemMessage):
        return "system"
    if isinstance(message, ToolMessage):
        return "tool"
    return message.type


@dataclass(frozen=True)
class ChatTemplate:
    """Per-role templates joined into one prompt.

    Attributes:
        roles: Template per role; ``{content}`` is the message text, ``{role}`` its role.
            A role without its own template uses ``default``.
        default: Template for roles not listed in ``roles``.
        generation_prompt: Appended at the end to cue the assistant's answer.
        prefix: Put once before everything (e.g. a BOS marker).
    """

    roles: Mapping[str, str] = field(default_factory=dict)
    default: str = "{role}: {content}\n"
    generation_prompt: str = ""
    prefix: str = ""

    def render(self, messages: Sequence[BaseMessage]) -> str:
        """Render messages (text content only) into the prompt string."""
        parts = [self.prefix]
        for message in messages:
            role = message_role(message)
            template = self.roles.get(role, self.default)
            parts.append(template.replace("{role}", role).replace("{content}", message.text))
        parts.append(self.generation_prompt)
        return "".join(parts)


BUILTIN_TEMPLATES: dict[str, ChatTemplate] = {
    "chatml": ChatTemplate(
        default="<|im_start|>{role}\n{content}<|im_end|>\n",
        generation_prompt="<|im_start|>assistant\n",
    ),
    "llama3": ChatTemplate(
        prefix="<|begin_of_text|>",
        default="<|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>",
        generation_prompt="<|start_header_id|>assistant<|end_header_id|>\n\n",
    ),
    "plain": ChatTemplate(
        roles={
            "system": "{content}\n\n",
            "user": "User: {content}\n",
            "assistant": "Assistant: {content}\n",
        },
        default="{role}: {content}\n",
        generation_prompt="Assistant:",
    ),
}


def get_chat_template(spec: str | ChatTemplate | Mapping[str, object]) -> ChatTemplate:
    """Resolve a template setting: a built-in name, a `ChatTemplate`, or a config mapping.

    A mapping has the `ChatTemplate` fields: ``roles`` (role -> template), ``default``,
    ``generation_prompt``, ``prefix``.

    Raises:
        ConfigurationError: For an unknown name or a malformed mapping.
    """
    if isinstance(spec, ChatTemplate):
        return spec
    if isinstance(spec, str):
        template = BUILTIN_TEMPLATES.get(spec)
        if template is None:
            known = ", ".join(sorted(BUILTIN_TEMPLATES))
            raise ConfigurationError(
                f"Unknown chat template {spec!r}; built in: {known}, or give a mapping with "
                "roles/default/generation_prompt/prefix"
            )
        return template
    if isinstance(spec, Mapping):
        allowed = {"roles", "default", "generation_prompt", "prefix"}
        unknown = set(spec) - allowed
        if unknown:
            raise ConfigurationError(
                f"chat template: unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}"
            )
        roles = spec.get("roles", {})
        if not isinstance(roles, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in roles.items()
        ):
            raise ConfigurationError("chat template: `roles` must map role names to strings")
        strings = {}
        for key in ("default", "generation_prompt", "prefix"):
            if key in spec:
                value = spec[key]
                if not isinstance(value, str):
                    raise ConfigurationError(f"chat template: `{key}` must be a string")
                strings[key] = value
        return ChatTemplate(roles=dict(roles), **strings)
    raise ConfigurationError(
        f"chat template must be a name, a mapping or a ChatTemplate, got {type(spec).__name__}"
    )
