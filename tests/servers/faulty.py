"""A misbehaving HTTP/1.1 server on loopback, scripted per request at the TCP level.

Unlike the emulators built on `tests.servers.base` (``http.server``, which always speaks correct
HTTP), this server reads requests off a raw socket itself and answers with whatever a test
scripts, byte by byte: correct answers, error statuses, streams cut mid-event, connections
closed (FIN) or reset (RST, ``SO_LINGER`` 0) at any point, answers that never come, and
answers that trickle in one byte at a time. It is for proving the client's behaviour under
faults (`tests/fault_tests`), not for emulating a vendor.

Usage::

    with FaultyServer() as server:
        wire = OPENAI_CHAT
        server.script(status_error(503), json_answer(wire.whole("Hi")))
        ...  # point a model at wire.base_url(server.url)
        assert server.attempts == 2

- A *behaviour* answers one request: a callable taking the parsed `Request` and returning
  the `Action` list to run on the connection. `script` queues behaviours, one per request,
  in order; `default` (a behaviour) answers once the queue is empty.
- Keep-alive works: after a behaviour that leaves the connection open (a response framed
  by ``content-length`` or chunked encoding, fully sent) the next request is read from the
  same connection. Behaviours that end the connection say so (`Close`, `Reset`, `Hang`).
- Every request is recorded (`requests`, `attempts`) unless ``record=False`` (soak tests,
  where a growing list would look like a leak); connections are counted (`accepted`,
  `open_connections`), which is how resource tests see leaked sockets.
- Every answer carries ``x-request-id: req-<n>`` (n: the request's 1-based number).
- `refused_url` gives a closed port (connection refused); `NeverAccept` a port that
  completes the TCP handshake in the kernel but never accepts (the request goes nowhere).

Only ever binds 127.0.0.1 on a free port.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
import time
from collections import deque
from types import TracebackType

from tests.servers._faulty_behaviours import (
    CONTEXT_LENGTH_BODY,
    HTML_PAGE,
    Action,
    Behaviour,
    Close,
    Hang,
    NeverAccept,
    Part,
    Reset,
    Send,
    Sleep,
    Trickle,
    answer,
    close_before_answer,
    context_length_error,
    cut_body,
    hang,
    head_and_body,
    html_error,
    json_answer,
    refused_url,
    reset_before_answer,
    split_send,
    status_error,
    stream,
    truncated_json,
)
from tests.servers._faulty_dialects import (
    CUSTOM,
    CUSTOM_CHAT,
    CUSTOM_TEXT,
    DIALECTS,
    OLLAMA_CHAT,
    OLLAMA_GENERATE,
    OPENAI_CHAT,
    OPENAI_COMPLETION,
    Dialect,
)
from tests.servers._faulty_wire import LAST_CHUNK, Request, _Conn, chunk, head

__all__ = [
    "CONTEXT_LENGTH_BODY",
    "CUSTOM",
    "CUSTOM_CHAT",
    "CUSTOM_TEXT",
    "DIALECTS",
    "HTML_PAGE",
    "LAST_CHUNK",
    "OLLAMA_CHAT",
    "OLLAMA_GENERATE",
    "OPENAI_CHAT",
    "OPENAI_COMPLETION",
    "Action",
    "Behaviour",
    "Close",
    "Dialect",
    "FaultyServer",
    "Hang",
    "NeverAccept",
    "Part",
    "Request",
    "Reset",
    "Send",
    "Sleep",
    "Trickle",
    "answer",
    "chunk",
    "close_before_answer",
    "context_length_error",
    "cut_body",
    "hang",
    "head",
    "head_and_body",
    "html_error",
    "json_answer",
    "refused_url",
    "reset_before_answer",
    "split_send",
    "status_error",
    "stream",
    "truncated_json",
]


# --------------------------------------------------------------------------- server


class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    request_queue_size = 256

    def __init__(self, owner: FaultyServer) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(socketserver.BaseRequestHandler):
    server: _TCPServer

    def handle(self) -> None:
        self.server.owner._serve(self.request)


class FaultyServer:
    """The scripted server (see the module docstring); a context manager.

    Args:
        record: Keep every `Request` (off for soak runs).
        default: The behaviour for requests when no script is queued; None answers 599
            and counts the request in `unexpected`.

    """

    def __init__(self, *, record: bool = True, default: Behaviour | None = None) -> None:
        self.record = record
        self.default = default
        self.requests: list[Request] = []
        self.unexpected = 0
        self.accepted = 0
        self.open_connections = 0
        self.peak_open_connections = 0
        self.handler_errors: list[BaseException] = []
        self._count = 0
        self._queue: deque[Behaviour] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._socks: dict[int, socket.socket] = {}
        self._tcp = _TCPServer(self)
        self._thread = threading.Thread(
            target=self._tcp.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (no path)."""
        host, port = self._tcp.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def attempts(self) -> int:
        """How many requests arrived (recorded or not)."""
        return self._count

    def script(self, *behaviours: Behaviour) -> FaultyServer:
        """Queue behaviours for the next requests, one each, in order."""
        with self._lock:
            self._queue.extend(behaviours)
        return self

    @property
    def pending(self) -> int:
        """Scripted behaviours not yet used."""
        return len(self._queue)

    def start(self) -> FaultyServer:
        """Serve in a daemon thread."""
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop accepting, release hung connections and close every open socket."""
        self._stopping.set()
        if self._thread.is_alive():
            self._tcp.shutdown()  # waits for serve_forever: only if it runs
        self._tcp.server_close()
        with self._lock:
            socks = list(self._socks.values())
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5)

    def __enter__(self) -> FaultyServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def wait_for_open_connections(self, at_most: int, timeout: float = 3.0) -> int:
        """Wait until at most ``at_most`` connections are open; return the count seen."""
        deadline = time.monotonic() + timeout
        while self.open_connections > at_most and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.open_connections

    # -------------------------------------------------------------- per connection

    def _serve(self, sock: socket.socket) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self.accepted += 1
            self.open_connections += 1
            self.peak_open_connections = max(self.peak_open_connections, self.open_connections)
            number = self.accepted
            self._socks[number] = sock
        conn = _Conn(sock, number, self._stopping)
        try:
            while not conn.closed and not self._stopping.is_set():
                parsed = conn.read_request()
                if parsed is None:
                    break
                request = self._take(number, *parsed)
                behaviour = self._behaviour_for()
                for action in behaviour(request):
                    if conn.closed:
                        break
                    action(conn)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError):
            pass  # the client left mid-answer: what cancelled streams do
        except OSError as exc:
            if not self._stopping.is_set():
                self.handler_errors.append(exc)
        except Exception as exc:  # a broken behaviour must fail the test, not vanish
            self.handler_errors.append(exc)
        finally:
            conn.close()
            with self._lock:
                self.open_connections -= 1
                self._socks.pop(number, None)

    def _take(
        self, connection: int, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> Request:
        with self._lock:
            self._count += 1
            request = Request(self._count, connection, method, path, headers, body)
            if self.record:
                self.requests.append(request)
        return request

    def _behaviour_for(self) -> Behaviour:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
            if self.default is not None:
                return self.default
            self.unexpected += 1
        return lambda request: head_and_body(
            request, 599, b'{"error":{"message":"no behaviour scripted"}}'
        )
