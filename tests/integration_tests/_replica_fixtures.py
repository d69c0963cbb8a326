"""Replicas for the replica tests: three llama.cpp servers, two embeddings servers, proxies.

Each replica is a real ``llama-server`` started by the package's own starter
(`scripts/local_server.py`) on its own loopback port and stopped by PID at the end. A test
can SIGKILL one (`Replica.kill`: a crash, not a graceful stop) and start it again on the
same port (`Replica.restart`).

To know what each server really received (the client's own counters are what is under
test), the chat replicas are also reachable through `ForwardingProxy` forwarders that count
the requests they pass on; one of them can delay each request to make that replica slow.

Why a delaying proxy and not fewer threads: the machine has 2 cores shared by three
servers and the test's client, so a server's speed depends on what the others do at that
moment; one thread fewer changes it by a factor that swings with the load. A fixed delay
per request on real sockets makes one replica slower by the same amount whatever the load,
which is what least-busy routing must notice (its requests stay in flight longer).

Ports: ``CUSTOMLLM_TEST_REPLICA_PORT`` (8801) and the 12 after it: chat replicas +0..+2,
embeddings replicas +3..+4, the chat replicas' proxies +5..+7, the gateway +8, the
embeddings replicas' proxies +9..+10, and +11..+12 where nothing may listen (dead replicas).
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from scripts import local_server
from scripts._server import ServerHandle
from tests.servers.tcp_proxy import ForwardingProxy

REPLICA_PORT = int(os.environ.get("CUSTOMLLM_TEST_REPLICA_PORT", "8801"))
CHAT_PORTS = (REPLICA_PORT, REPLICA_PORT + 1, REPLICA_PORT + 2)
EMBEDDINGS_PORTS = (REPLICA_PORT + 3, REPLICA_PORT + 4)
PROXY_PORTS = (REPLICA_PORT + 5, REPLICA_PORT + 6, REPLICA_PORT + 7)
GATEWAY_PORT = REPLICA_PORT + 8
# One compute thread per server: three servers on a 2-core machine with the default (one
# thread per core) spin six threads on two cores and each waits for the others. And an HTTP
# thread per connection: llama-server's HTTP pool (slots + 2 threads by default) serves one
# keep-alive connection per thread, so at 32 requests in flight connections queued behind
# idle ones and one was dropped unanswered (measured: 1 in 1,000, "Server disconnected").
THREAD_ARGS = ("--threads", "1", "--threads-batch", "1", "--threads-http", "40")


class Replica:
    """One llama-server of ours on a fixed loopback port: start, SIGKILL, restart, stop.

    Args:
        port: Its loopback port.
        embeddings: An embeddings server (mean pooling, one slot) instead of a chat one.

    """

    def __init__(self, port: int, *, embeddings: bool = False) -> None:
        self.port = port
        self.embeddings = embeddings
        self.handle: ServerHandle | None = None

    @property
    def root(self) -> str:
        """``http://127.0.0.1:<port>``, the server root."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI ``/v1`` root."""
        return self.root + "/v1"

    @property
    def pid(self) -> int | None:
        """The server's pid (and process group), None when it is not running."""
        return None if self.handle is None else self.handle.pid

    def start(self) -> Replica:
        """Start it and wait until ``/health`` answers.

        Raises:
            RuntimeError: If something already answers on the port (a server this session
                did not start could not be killed, so the tests would prove nothing).

        """
        handle = local_server.start(
            port=self.port, embeddings=self.embeddings, extra_args=THREAD_ARGS, verbose=False
        )
        if not handle.started_by_us:
            raise RuntimeError(
                f"a server already answers on port {self.port}; stop it "
                f"(python scripts/local_server.py stop --port {self.port}) or set "
                "CUSTOMLLM_TEST_REPLICA_PORT to the first of 13 free ports"
            )
        self.handle = handle
        return self

    def kill(self) -> None:
        """SIGKILL the server's process group (a crash: no goodbye to its connections).

        Its connections are reset by the kernel and its port refuses new ones at once.
        """
        assert self.handle is not None, "not running"
        assert self.handle.pid is not None, "not running"
        os.killpg(self.handle.pid, signal.SIGKILL)
        self.handle.stop()  # reaps the dead leader and removes its pid file
        self.handle = None

    def restart(self) -> Replica:
        """Start it again on the same port, after `kill`."""
        assert self.handle is None, "still running"
        return self.start()

    def stop(self) -> None:
        """Stop it by PID (SIGTERM, then SIGKILL), if it runs."""
        if self.handle is not None:
            self.handle.stop()
            self.handle = None

    def log(self) -> str:
        """Its log file's text (for failure messages)."""
        path = Path(local_server.LLAMA_SERVER.run_file(self.port, "log"))
        return path.read_text(errors="replace") if path.exists() else ""

    def __repr__(self) -> str:
        return f"Replica({self.base_url!r}, pid={self.pid!r})"


@contextlib.contextmanager
def running(replicas: list[Replica]) -> Iterator[list[Replica]]:
    """Start ``replicas`` side by side (each takes ~1-2 s to load), stop all at the end."""
    try:
        with ThreadPoolExecutor(len(replicas)) as pool:
            for future in [pool.submit(r.start) for r in replicas]:
                future.result()
        yield replicas
    finally:
        for replica in replicas:
            replica.stop()


@pytest.fixture(scope="module")
def chat_replicas() -> Iterator[list[Replica]]:
    """Three chat llama-servers on `CHAT_PORTS` (module-scoped: a test may kill one)."""
    with running([Replica(port) for port in CHAT_PORTS]) as replicas:
        yield replicas


@pytest.fixture(scope="module")
def embeddings_replicas() -> Iterator[list[Replica]]:
    """Two embeddings llama-servers on `EMBEDDINGS_PORTS`."""
    with running([Replica(port, embeddings=True) for port in EMBEDDINGS_PORTS]) as replicas:
        yield replicas


@pytest.fixture
def proxies(chat_replicas: list[Replica]) -> Iterator[list[ForwardingProxy]]:
    """A counting forwarder in front of each chat replica, fresh for each test.

    ``proxies[i].delay`` may be set by the test to slow replica ``i``.
    """
    with contextlib.ExitStack() as stack:
        yield [
            stack.enter_context(ForwardingProxy(replica.port, port))
            for replica, port in zip(chat_replicas, PROXY_PORTS, strict=True)
        ]


@pytest.fixture
async def closing() -> AsyncIterator[Callable[[Any], Any]]:
    """``closing(model)`` returns ``model`` and closes it after the test.

    Its pooled connections, sync and the test loop's, would otherwise be left to the garbage
    collector (a ResourceWarning in a later test).
    """
    models: list[Any] = []

    def keep(model: Any) -> Any:
        models.append(model)
        return model

    yield keep
    for model in models:
        await model.aclose()


def stats_by_url(model: Any) -> dict[str, Any]:
    """``model.replica_stats()`` keyed by base_url."""
    return {s.base_url: s for s in model.replica_stats()}
