"""Several named models in one YAML or JSON file.

::

    formats:                    # optional: wire formats several models share
      torchserve:
        kind: custom
        chat_path: /predictions/my-model
        request: {inputs: "{prompt}", parameters: {max_new_tokens: "{max_tokens}"}}
        response: {text: "outputs[0].text"}
    models:
      local:                    # type: chat (default) or llm
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

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from langchain_customllm._exceptions import ConfigurationError
from langchain_customllm.chat_models import ChatCustomLLM
from langchain_customllm.llms import CustomLLM

__all__ = ["build_model", "load_models", "read_config", "select_model"]

_TYPES: dict[str, type[ChatCustomLLM] | type[CustomLLM]] = {
    "chat": ChatCustomLLM,
    "llm": CustomLLM,
    "text": CustomLLM,
}


def read_config(source: str | os.PathLike[str] | Mapping[str, Any]) -> dict[str, Any]:
    """Read a configuration: a path to a ``.yaml``/``.yml``/``.json`` file, or a mapping."""
    if isinstance(source, Mapping):
        return dict(source)
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"Cannot read model configuration {path}: {exc}") from None
    import yaml  # only for files: PyYAML costs ~30 ms to import

    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ConfigurationError(
            f"{path} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}"
        ) from None
    if not isinstance(data, dict):
        raise ConfigurationError(
            f"{path}: expected a mapping at the top, got {type(data).__name__}"
        )
    return data


def _from_env(name: str, spec: dict[str, Any], cls: type[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    fields = cls.model_fields
    aliases = {f.alias for f in fields.values() if f.alias}
    for key, value in spec.items():
        stem = key.removesuffix("_env")
        if key.endswith("_env") and (stem in fields or stem in aliases):
            if not isinstance(value, str):
                raise ConfigurationError(f"model {name!r}: {key} must name an environment variable")
            env_value = os.environ.get(value)
            if env_value is None:
                raise ConfigurationError(
                    f"model {name!r}: environment variable {value} (from {key}) is not set"
                )
            out[stem] = env_value
        else:
            out[key] = value
    return out


def build_model(
    name: str,
    spec: Mapping[str, Any],
    formats: Mapping[str, Any] | None = None,
    cls: type[ChatCustomLLM] | type[CustomLLM] | None = None,
) -> ChatCustomLLM | CustomLLM:
    """Build one model from its configuration entry.

    Args:
        name: The model's name in the file (for error messages).
        spec: Its settings; ``type`` picks the class unless ``cls`` is given.
        formats: Named wire formats the entry may refer to.
        cls: Force the class (used by ``from_config``).

    Raises:
        ConfigurationError: Naming the model and what is wrong.
    """
    if not isinstance(spec, Mapping):
        raise ConfigurationError(f"model {name!r}: expected a mapping of settings")
    settings = dict(spec)
    kind = settings.pop("type", "chat")
    cls = cls or _TYPES.get(kind)
    if cls is None:
        raise ConfigurationError(
            f"model {name!r}: type must be one of {sorted(_TYPES)}, got {kind!r}"
        )
    settings = _from_env(name, settings, cls)
    wire = settings.get("wire_format")
    if isinstance(wire, str) and formats and wire in formats:
        shared = formats[wire]
        if isinstance(shared, Mapping) and shared.get("kind") == "custom":
            # A shared custom format is named by its key, so errors say which one.
            shared = {"name": wire, **shared}
        settings["wire_format"] = shared
    try:
        return cls(**settings)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(model)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigurationError(f"model {name!r}: {problems}") from None


def load_models(
    source: str | os.PathLike[str] | Mapping[str, Any],
) -> dict[str, ChatCustomLLM | CustomLLM]:
    """Build every model of a configuration file (see the module docstring).

    Args:
        source: A YAML/JSON file path, or the already-parsed mapping.

    Returns:
        The models by name, in file order.
    """
    data = read_config(source)
    models = data.get("models")
    if not isinstance(models, Mapping) or not models:
        raise ConfigurationError("The configuration needs a non-empty `models` mapping")
    formats = data.get("formats") or {}
    if not isinstance(formats, Mapping):
        raise ConfigurationError("`formats` must map names to wire-format descriptions")
    return {str(name): build_model(str(name), spec, formats) for name, spec in models.items()}


def select_model(
    source: str | os.PathLike[str] | Mapping[str, Any],
    name: str | None,
    cls: type[ChatCustomLLM] | type[CustomLLM],
) -> ChatCustomLLM | CustomLLM:
    """Build one model of a file with ``models:`` (by name), or a file that is one model."""
    data = read_config(source)
    if "models" not in data:
        return build_model(name or cls.__name__, data, None, cls)
    models = data["models"]
    if not isinstance(models, Mapping) or not models:
        raise ConfigurationError("The configuration needs a non-empty `models` mapping")
    if name is None:
        if len(models) != 1:
            raise ConfigurationError(
                f"The configuration has several models ({', '.join(map(str, models))}): "
                "pass name=..."
            )
        name = str(next(iter(models)))
    if name not in models:
        raise ConfigurationError(
            f"No model {name!r} in the configuration; it has: {', '.join(map(str, models))}"
        )
    return build_model(name, models[name], data.get("formats") or {}, cls)
