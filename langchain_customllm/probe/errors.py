"""Why a probe could not run, and what to tell the person who started it."""

from __future__ import annotations

from langchain_customllm._exceptions import AuthenticationError, error_from_response
from langchain_customllm.probe.records import Exchange


class ProbeUsageError(Exception):
    """The command line cannot be acted on (exit code 2)."""

    kind = "usage"
    """What went wrong, in one word (the ``kind`` of ``--json``'s error object)."""


class ApiKeyRefusedError(ProbeUsageError):
    """The server refused the API key, or wants one and none was given (exit code 2)."""

    kind = "api_key_refused"


class ServerUnreachableError(Exception):
    """Nothing answers at the base URL (exit code 3)."""

    kind = "unreachable"


def key_refusal(ex: Exchange, key_sent: bool, api_key_env: str | None) -> str | None:
    """What to do when ``ex`` was refused for its API key (None if it was not).

    A 401, or a gateway's own way to say it (LiteLLM's 400 ``no_db_connection``), as the
    package's error mapping reads it. The advice depends on whether a key was sent: one
    that was refused needs checking, a missing one needs ``--api-key-env``.

    Args:
        ex: The refused (or answered) exchange.
        key_sent: Whether the request carried the configured key.
        api_key_env: The environment variable the key came from, if any.
    """
    if ex.status is None or ex.ok:
        return None
    error = error_from_response(ex.status, ex.headers, ex.text.encode())
    if not isinstance(error, AuthenticationError):
        return None
    if not key_sent:
        return (
            "the server wants an API key: put it in an environment variable and pass "
            "that variable's name with --api-key-env VAR"
        )
    if api_key_env:
        return (
            f"the server refused the API key given via --api-key-env {api_key_env}: "
            "check the key that variable holds"
        )
    return "the server refused the API key given: check it"
