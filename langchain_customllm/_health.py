"""Health checks of replicas: before a rested one rejoins, and on demand.

I/O twins over the provider client's single-shot requests (`ProviderClient._once`):
`pick` / `apick` choose the replica for an attempt, asking one that leaves its rest
``GET <server root><health_check>`` first when the model sets ``health_check`` (so a user
request is not what finds it still down); `check` / `acheck` ask every replica now
(``model.check_replicas()``).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, Protocol

from langchain_customllm._exceptions import APIConnectionError, CustomLLMError
from langchain_customllm._replicas import Replica, ReplicaSet
from langchain_customllm.formats.base import WireRequest

__all__ = ["HEALTH_TIMEOUT", "acheck", "apick", "check", "pick"]

HEALTH_TIMEOUT = 5.0
"""Seconds a health check may take: it must not hold a call up for the request timeout."""

_DEFAULT_PATH = "/health"  # llama.cpp, vLLM, TGI and SGLang all answer it


class _Client(Protocol):
    replicas: ReplicaSet

    def _once(self, replica: Replica, request: WireRequest, timeout: float) -> Any: ...

    def _aonce(self, replica: Replica, request: WireRequest, timeout: float) -> Awaitable[Any]: ...


def _request(replicas: ReplicaSet) -> WireRequest:
    return WireRequest(replicas.health_check or _DEFAULT_PATH, {}, method="GET", root=True)


def _verdict(answer: Any, replica: Replica) -> CustomLLMError | None:
    status = answer[0]
    if status < 400:
        return None
    return APIConnectionError(f"Health check of {replica.base_url} answered HTTP {status}")


def _ask(client: _Client, replica: Replica) -> CustomLLMError | None:
    """Check one replica: None if it answered the health path, else why not."""
    try:
        return _verdict(client._once(replica, _request(client.replicas), HEALTH_TIMEOUT), replica)
    except CustomLLMError as failed:
        return failed


async def _aask(client: _Client, replica: Replica) -> CustomLLMError | None:
    """Async twin of `_ask`."""
    try:
        answer = await client._aonce(replica, _request(client.replicas), HEALTH_TIMEOUT)
    except CustomLLMError as failed:
        return failed
    return _verdict(answer, replica)


def pick(client: _Client, request: WireRequest) -> Replica:
    """The replica for an attempt (counted in flight); one leaving its rest is checked first.

    Raises:
        ReplicasUnavailableError: When every replica rests (or failed its check).
    """
    replicas = client.replicas
    while True:  # a failed check rests its replica again, so this ends
        replica, due = replicas.pick(request.route)
        if not due:
            return replica
        try:
            error = _ask(client, replica)
        except BaseException:
            replicas.release(replica)
            raise
        if error is None:
            return replica
        replicas.end(replica, error)


async def apick(client: _Client, request: WireRequest) -> Replica:
    """Async twin of `pick`."""
    replicas = client.replicas
    while True:
        replica, due = replicas.pick(request.route)
        if not due:
            return replica
        try:
            error = await _aask(client, replica)
        except BaseException:
            replicas.release(replica)
            raise
        if error is None:
            return replica
        replicas.end(replica, error)


def check(client: _Client) -> None:
    """Ask every replica now; one that answers rejoins at once, one that does not rests."""
    for replica in client.replicas.replicas:
        client.replicas.observe(replica, _ask(client, replica))


async def acheck(client: _Client) -> None:
    """Async twin of `check`."""
    for replica in client.replicas.replicas:
        client.replicas.observe(replica, await _aask(client, replica))
