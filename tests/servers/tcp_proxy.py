"""A loopback TCP forwarder in front of a real server: it counts requests and can slow them.

Replica tests need to know what each server really received (the client's own counters
are what is under test) and to make one replica slower than the others. A forwarder on
real sockets does both without touching the server: it reads each HTTP/1.1 request head
and body from the client (httpx sends ``Content-Length`` bodies and never pipelines),
records ``"METHOD /path"``, waits ``delay`` seconds if asked, and passes the bytes on
unchanged; answers flow back as they come. A connection the server refuses or drops is
dropped on the client's side too, as a dead server would be seen.

It runs its own event loop in a daemon thread, so sync and async clients in the test can
use it alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from types import TracebackType

HOST = "127.0.0.1"
_HEAD_END = b"\r\n\r\n"


class ForwardingProxy:
    """Forward ``127.0.0.1:port`` to ``127.0.0.1:target_port``, request by request.

    Args:
        target_port: The real server's loopback port.
        port: The port to listen on; 0 picks a free one.
        delay: Seconds each request waits in the proxy before it is sent on.

    """

    def __init__(self, target_port: int, port: int = 0, delay: float = 0.0) -> None:
        self.target_port = target_port
        self.delay = delay
        self._port = port
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"proxy-{port}", daemon=True)
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        """The port it listens on (known once started)."""
        return self._port

    @property
    def root(self) -> str:
        """``http://127.0.0.1:<port>``: the server root as reached through the proxy."""
        return f"http://{HOST}:{self._port}"

    @property
    def base_url(self) -> str:
        """The OpenAI ``/v1`` root through the proxy."""
        return self.root + "/v1"

    def requests(self) -> list[str]:
        """Every request forwarded so far, as ``"METHOD /path"``, in order."""
        with self._lock:
            return list(self._lines)

    def count(self, path_prefix: str = "/v1/") -> int:
        """How many requests whose path starts with ``path_prefix`` were forwarded."""
        return sum(line.split(" ", 1)[1].startswith(path_prefix) for line in self.requests())

    # ------------------------------------------------------------------ the loop thread

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._connection, HOST, self._port)
            )
            self._port = self._server.sockets[0].getsockname()[1]
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        # Stopped: close what is left, so no socket outlives the proxy.
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        pending = [*self._tasks, self._server.wait_closed()]
        self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.close()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._forward(reader, writer)
        except asyncio.CancelledError:
            # stop() cancels what is left; a handler that ends cancelled makes asyncio's
            # stream callback log a traceback on Python < 3.12.
            writer.close()
        finally:
            self._tasks.discard(task)

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_writer: asyncio.StreamWriter | None = None
        pump: asyncio.Task[None] | None = None
        try:
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection(
                    HOST, self.target_port
                )
            except OSError:
                return  # the server is down: the client sees its connection closed
            pump = asyncio.create_task(self._pipe(upstream_reader, writer))
            while True:
                try:
                    head = await reader.readuntil(_HEAD_END)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return  # the client closed its keep-alive connection
                method, target, length = _parse_head(head)
                body = await reader.readexactly(length)
                with self._lock:
                    self._lines.append(f"{method} {target}")
                if self.delay:
                    await asyncio.sleep(self.delay)
                upstream_writer.write(head + body)
                await upstream_writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            if pump is not None:
                pump.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                    await pump
            for w in (upstream_writer, writer):
                if w is not None:
                    w.close()
                    with contextlib.suppress(ConnectionError):
                        await w.wait_closed()

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        """Answers back to the client; when the server hangs up, so does the client's side."""
        try:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        except ConnectionError:
            pass
        finally:
            sink.close()

    # ------------------------------------------------------------------ control

    def start(self) -> ForwardingProxy:
        """Start listening; returns once the port is bound.

        Raises:
            OSError: If the port cannot be bound.

        """
        self._thread.start()
        self._ready.wait(timeout=10)
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        """Close the listener and every forwarded connection, and end the thread."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)

    def __enter__(self) -> ForwardingProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _parse_head(head: bytes) -> tuple[str, str, int]:
    """(method, target, body length) of a request head; chunked bodies are not expected."""
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value.strip())
        elif name == "transfer-encoding":
            raise ConnectionError(f"the proxy forwards Content-Length bodies only, not {value!r}")
    return method, target, length


@contextlib.contextmanager
def forwarding(target_port: int, port: int = 0, delay: float = 0.0) -> Iterator[ForwardingProxy]:
    """A started `ForwardingProxy`, stopped at the end of the block."""
    with ForwardingProxy(target_port, port, delay) as proxy:
        yield proxy
