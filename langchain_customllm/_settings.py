"""Reading settings: configuration files, environment lookups, and validation errors.

Used by the model classes (``from_config``, and their constructors, which turn pydantic's
``ValidationError`` into our `ConfigurationError`) and by `langchain_customllm.config`
(``load_models``); it imports neither, so there is no import cycle between them.

Errors name the file and line of the setting at fault (``models.yaml:7: model 'local':
temperature: ...``): YAML files are parsed with ``yaml.safe_load`` (no tags, no code) and
their node marks are kept to point at the key.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError
from pydantic.fields import FieldInfo

from langchain_customllm._exceptions import ConfigurationError
from langchain_customllm._text import did_you_mean, problems

__all__ = [
    "ConfigFile",
    "construct",
    "entry_settings",
    "located",
    "read_config",
    "select_entry",
    "settings_error",
]

# Settings whose values are never echoed in an error message.
_SECRET_SETTINGS = frozenset({"api_key", "default_headers"})
_M = TypeVar("_M")


def located(exc: ConfigurationError) -> ConfigurationError:
    """The error with its setting named in front, as a validation failure would show it."""
    if not exc.setting or exc.message.startswith(f"{exc.setting}: "):
        return exc
    error = ConfigurationError(f"{exc.setting}: {exc.message}")
    error.setting = exc.setting
    return error


def settings_error(exc: ValidationError, fields: Mapping[str, FieldInfo]) -> ConfigurationError:
    """One `ConfigurationError` for a failed validation: each setting at fault and why.

    The first setting at fault is kept on ``error.setting`` so configuration files can
    point at its line; secret inputs are never quoted.
    """
    aliases = {info.alias: name for name, info in fields.items() if info.alias}
    found = problems(exc, names=aliases, secret=_SECRET_SETTINGS, known=fields, kind="setting")
    error = ConfigurationError("; ".join(text for _, text in found))
    error.setting = next((name for name, _ in found if name), None)
    return error


@dataclass
class ConfigFile:
    """A parsed configuration, and where each of its keys came from.

    Attributes:
        data: The parsed mapping.
        path: The file it was read from; None for a mapping given in code.
        lines: The line of each key, by its path of keys (YAML files only).
    """

    data: dict[str, Any]
    path: Path | None = None
    lines: dict[tuple[str, ...], int] = field(default_factory=dict)

    def where(self, *keys: str) -> str:
        """``"file:line: "`` for the deepest of ``keys`` found, ``"file: "`` or ``""``."""
        if self.path is None:
            return ""
        for depth in range(len(keys), 0, -1):
            line = self.lines.get(keys[:depth])
            if line is not None:
                return f"{self.path}:{line}: "
        return f"{self.path}: "


def _key_lines(node: Any, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], int]:
    import yaml

    lines: dict[tuple[str, ...], int] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = (*path, str(key_node.value))
            lines[key] = key_node.start_mark.line + 1
            lines.update(_key_lines(value_node, key))
    return lines


def read_config(source: str | os.PathLike[str] | Mapping[str, Any]) -> ConfigFile:
    """Read a configuration: a ``.yaml``/``.yml``/``.json`` file, or a mapping.

    Raises:
        ConfigurationError: If the file cannot be read or parsed, or is not a mapping.
    """
    if isinstance(source, Mapping):
        return ConfigFile(dict(source))
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"Cannot read model configuration {path}: {exc}") from None
    lines: dict[tuple[str, ...], int] = {}
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ConfigurationError(f"{path} is not valid JSON: {exc}") from None
    else:
        import yaml  # only for files: PyYAML costs ~30 ms to import

        # One parse: the node tree gives the line of each key, then the data (as safe_load).
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
            lines = _key_lines(node)
        except yaml.YAMLError as exc:
            # The parser's own text quotes the offending line, which may hold a key.
            mark = getattr(exc, "problem_mark", None)
            where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
            problem = getattr(exc, "problem", None) or type(exc).__name__
            raise ConfigurationError(f"{where}: not valid YAML: {problem}") from None
        finally:
            loader.dispose()
    if not isinstance(data, dict):
        raise ConfigurationError(
            f"{path}: expected a mapping at the top, got {type(data).__name__}"
        )
    return ConfigFile(data, path, lines)


def _env_value(key: str, variable: Any) -> str:
    if not isinstance(variable, str):
        raise ConfigurationError(f"{key} must name an environment variable")
    value = os.environ.get(variable)
    if value is None:
        raise ConfigurationError(f"environment variable {variable} (from {key}) is not set")
    return value


def entry_settings(
    spec: Mapping[str, Any],
    formats: Mapping[str, Any],
    fields: Mapping[str, FieldInfo],
) -> dict[str, Any]:
    """The constructor settings of one model entry.

    ``<field>_env`` keys are read from the environment; a ``wire_format`` that names an
    entry of the file's ``formats`` is replaced by it (a custom one named by its key, so
    its errors say which).

    Raises:
        ConfigurationError: For an environment variable that is not set.
    """
    names = set(fields) | {info.alias for info in fields.values() if info.alias}
    settings: dict[str, Any] = {}
    for key, value in spec.items():
        if key.endswith("_env") and key.removesuffix("_env") in names:
            settings[key.removesuffix("_env")] = _env_value(key, value)
        else:
            settings[key] = value
    wire = settings.get("wire_format")
    if isinstance(wire, str) and wire in formats:
        shared = formats[wire]
        if isinstance(shared, Mapping) and shared.get("kind") == "custom":
            shared = {"name": wire, **shared}
        settings["wire_format"] = shared
    return settings


def models_of(config: ConfigFile) -> Mapping[str, Any]:
    """The file's ``models`` mapping.

    Raises:
        ConfigurationError: If it is missing, empty or not a mapping.
    """
    models = config.data.get("models")
    if not isinstance(models, Mapping) or not models:
        raise ConfigurationError(
            f"{config.where('models')}the configuration needs a non-empty `models` mapping"
        )
    return models


def formats_of(config: ConfigFile) -> Mapping[str, Any]:
    """The file's shared ``formats`` (empty if it has none).

    Raises:
        ConfigurationError: If ``formats`` is not a mapping.
    """
    formats = config.data.get("formats") or {}
    if not isinstance(formats, Mapping):
        raise ConfigurationError(
            f"{config.where('formats')}`formats` must map names to wire-format descriptions"
        )
    return formats


def select_entry(config: ConfigFile, name: str | None) -> tuple[str | None, Any, tuple[str, ...]]:
    """The entry ``name`` of ``models:`` (optional if there is one), or the whole file.

    Returns:
        The entry's name (None for a file that is one model), its settings, and its path of
        keys in the file.

    Raises:
        ConfigurationError: If the name is missing or unknown.
    """
    if "models" not in config.data:
        return name, config.data, ()
    models = models_of(config)
    names = [str(key) for key in models]
    if name is None:
        if len(models) != 1:
            raise ConfigurationError(
                f"The configuration has several models ({', '.join(names)}): pass name=..."
            )
        name = names[0]
    if name not in models:
        raise ConfigurationError(
            f"No model {name!r} in the configuration{did_you_mean(name, names)}; "
            f"it has: {', '.join(names)}"
        )
    return name, models[name], ("models", name)


def construct(
    cls: type[_M], name: str, settings: Mapping[str, Any], config: ConfigFile, keys: tuple[str, ...]
) -> _M:
    """``cls(**settings)`` for one entry; an error names the file, line and model.

    Raises:
        ConfigurationError: For a bad setting, located in the file.
    """
    fields: Mapping[str, FieldInfo] = cls.model_fields  # type: ignore[attr-defined]
    try:
        return cls(**entry_settings(settings, formats_of(config), fields))
    except ConfigurationError as exc:
        where = config.where(*keys, exc.setting) if exc.setting else config.where(*keys)
        located = ConfigurationError(f"{where}model {name!r}: {exc.message}")
        located.setting = exc.setting
        raise located from None
