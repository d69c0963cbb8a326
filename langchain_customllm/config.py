"""Several named models in one YAML or JSON file.

::

    formats:                    # optional: wire formats several models share
      torchserve:
        kind: custom
        chat_path: /predictions/my-model
        request: {inputs: "{prompt}", parameters: {max_new_tokens: "{max_tokens}"}}
        response: {text: "outputs[0].text"}
    models:
      local:                    # type: chat (default), llm, embeddings or image
        model: smollm2
        base_url: http://127.0.0.1:8765/v1
      in-house:
        model: my-model
        base_url_env: INHOUSE_URL       # any field: <field>_env names an environment variable
        api_key_env: INHOUSE_KEY
        wire_format: torchserve         # a name from `formats`, a built-in name, or a mapping
        max_tokens: 256

Keys come from the environment (``api_key_env``); a literal ``api_key`` in the file works but
is the user's own choice. Files are parsed with ``yaml.safe_load`` (or ``json``): no tags, no
code.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from langchain_customllm._exceptions import ConfigurationError
from langchain_customllm._settings import (
    ConfigFile,
    construct,
    models_of,
    read_config,
)
from langchain_customllm._text import did_you_mean
from langchain_customllm.chat_models import ChatCustomLLM
from langchain_customllm.embeddings import CustomLLMEmbeddings
from langchain_customllm.images import CustomImageGenerator
from langchain_customllm.llms import CustomLLM

__all__ = ["build_model", "load_models"]

# Any model a file can describe.
Model = ChatCustomLLM | CustomLLM | CustomLLMEmbeddings | CustomImageGenerator

# The classes say which ``type`` values they build (``from_config`` checks the same).
_TYPES: dict[str, type[Model]] = {
    kind: cls
    for cls in (ChatCustomLLM, CustomLLM, CustomLLMEmbeddings, CustomImageGenerator)
    for kind in cls._config_types
}


def build_model(name: str, spec: Any, config: ConfigFile) -> Model:
    """Build the entry ``name`` of ``models:``; its ``type`` picks the class.

    Raises:
        ConfigurationError: Naming the file and line, the model, and what is wrong.
    """
    keys = ("models", name)
    if not isinstance(spec, Mapping):
        raise ConfigurationError(
            f"{config.where(*keys)}model {name!r}: expected a mapping of settings"
        )
    settings = dict(spec)
    kind = settings.pop("type", "chat")
    cls = _TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ConfigurationError(
            f"{config.where(*keys, 'type')}model {name!r}: unknown type {kind!r}"
            f"{did_you_mean(str(kind), _TYPES)}; one of {sorted(_TYPES)}"
        )
    return construct(cls, name, settings, config, keys)


def load_models(
    source: str | os.PathLike[str] | Mapping[str, Any],
) -> dict[str, Model]:
    """Build every model of a configuration file (see the module docstring).

    Args:
        source: A YAML/JSON file path, or the already-parsed mapping.

    Returns:
        The models by name, in file order.

    Raises:
        ConfigurationError: Naming the file, line and model of the first bad setting.
    """
    config = read_config(source)
    return {
        str(name): build_model(str(name), spec, config) for name, spec in models_of(config).items()
    }
