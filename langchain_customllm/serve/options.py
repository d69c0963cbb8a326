"""The gateway's settings, and its client keys (read from the environment or a file).

Client keys are the keys *clients* send to the gateway, not the backends' keys (those stay
in each model's entry). They are kept as bytes, compared in constant time
(`hmac.compare_digest`, against every key, so the time does not tell which one nearly
matched), and never shown: not in a repr, a log line or an error.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from langchain_customllm._exceptions import ConfigurationError
from langchain_customllm.serve.wire_in import CallLimits

__all__ = ["DEFAULT_MAX_BODY_BYTES", "DEFAULT_MAX_TOKENS", "ClientKeys", "GatewayOptions"]

DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
"""Largest request body (8 MiB): room for a few base64 images, not for a flood."""
DEFAULT_MAX_TOKENS = 4096
"""Most output tokens one request may ask for, and what is sent when none is asked."""
DEFAULT_GRACE_SECONDS = 30.0
"""How long SIGTERM waits for open streams to finish."""


class ClientKeys:
    """The keys clients may use; empty means no key is needed.

    Args:
        keys: The accepted keys.
    """

    __slots__ = ("_keys",)

    def __init__(self, keys: Iterable[str] = ()) -> None:
        cleaned = []
        for key in keys:
            key = key.strip()
            if key:
                cleaned.append(key.encode())
        self._keys = tuple(cleaned)

    def __bool__(self) -> bool:
        return bool(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"ClientKeys({len(self._keys)} keys)"

    def accepts(self, presented: bytes | None) -> bool:
        """Whether ``presented`` is one of the keys (constant time; no key: always)."""
        if not self._keys:
            return True
        if not presented:
            return False
        found = False
        for key in self._keys:
            found |= hmac.compare_digest(key, presented)
        return found

    @classmethod
    def load(
        cls,
        env_vars: Sequence[str] = (),
        files: Sequence[str | os.PathLike[str]] = (),
        environ: Mapping[str, str] | None = None,
    ) -> ClientKeys:
        """Read keys from environment variables and files.

        A variable holds one key, or several separated by commas; a file holds one key per
        line (blank lines and ``#`` comments skipped).

        Raises:
            ConfigurationError: For a variable that is unset or empty, or a file that cannot
                be read or holds no key; the keys themselves are never quoted.
        """
        env = os.environ if environ is None else environ
        keys: list[str] = []
        for name in env_vars:
            value = env.get(name, "")
            found = [part for part in value.split(",") if part.strip()]
            if not found:
                raise ConfigurationError(f"client key variable {name} is not set or empty")
            keys += found
        for path in files:
            try:
                text = Path(path).read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigurationError(
                    f"cannot read client keys file {path}: {exc.strerror}"
                ) from None
            found = [
                line for line in text.splitlines() if line.strip() and not line.startswith("#")
            ]
            if not found:
                raise ConfigurationError(f"client keys file {path} holds no key")
            keys += found
        return cls(keys)


@dataclass(frozen=True)
class GatewayOptions:
    """How the gateway answers (its models come from ``models.yaml``).

    Attributes:
        client_keys: Keys clients must send (``Authorization: Bearer <key>`` or
            ``x-api-key``); empty: no key needed.
        max_body_bytes: Largest request body; larger ones get a 413.
        max_tokens: Most output tokens one request may ask for (more: a 400); also sent
            when neither the request nor the model's entry sets ``max_tokens``. None: no cap.
        cors_origins: Browser origins allowed to call the gateway (CORS); empty: CORS off.
        grace_seconds: How long a shutdown (SIGTERM) waits for open requests and streams.
        metrics_dir: A directory the workers of one gateway share, where each keeps a
            snapshot of its counts so ``/metrics`` answers for all of them (set by
            ``customllm serve --workers N``); None: this process's counts only.
    """

    client_keys: ClientKeys = field(default_factory=ClientKeys)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_tokens: int | None = DEFAULT_MAX_TOKENS
    cors_origins: tuple[str, ...] = ()
    grace_seconds: float = DEFAULT_GRACE_SECONDS
    metrics_dir: str | None = None

    def __post_init__(self) -> None:
        if self.max_body_bytes < 1:
            raise ConfigurationError("max_body_bytes must be 1 or more")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ConfigurationError("max_tokens must be 1 or more (or None: no cap)")
        if "*" in self.cors_origins:
            raise ConfigurationError(
                "cors_origins: name each origin (https://app.example.com); '*' would let any "
                "web page spend the gateway's keys"
            )
        if self.grace_seconds < 0:
            raise ConfigurationError("grace_seconds must be 0 or more")

    @property
    def limits(self) -> CallLimits:
        """The caps a call is checked against."""
        return CallLimits(max_tokens=self.max_tokens)
