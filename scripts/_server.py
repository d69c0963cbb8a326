"""The one way all three servers start, are reused, stop and report, and their command line.

A ``Server`` says where one kind of server keeps its files and how to tell it is ready;
``start_server`` is the flow every starter runs under the server's per-port lock: reuse a
server that answers, replace one of ours that is alive but does not, else spawn a new
process group and wait until it is ready.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from scripts._cache import (
    HOST,
    LocalServerError,
    check_port,
    file_lock,
    get_paths,
    port_from_env,
    printer,
)
from scripts._procs import (
    remove_pid_file_if,
    running_pid,
    spawn_group,
    stop_group,
    stop_process_group,
)


def base_url(port: int) -> str:
    """Return the OpenAI base URL of a server on loopback ``port``."""
    return f"http://{HOST}:{port}/v1"


@dataclass(frozen=True)
class Server:
    """One kind of server: its files in the cache, its default port, its readiness check.

    Attributes:
        name: Prefix of its run files and of its per-port lock, e.g. ``vllm-server``.
        label: Prefix of its progress messages, e.g. ``vllm``.
        title: What error messages call it, e.g. ``the LiteLLM proxy``.
        marker: Bytes its command line contains: a pid whose command lacks them is not ours.
        port_env: Variable holding its default port.
        default_port: Default port when ``port_env`` is unset.
        ready: Whether the server on a port answers (loopback, no proxy).
        description: What its command line's ``--help`` says it does.
        install_help: What its ``install`` command's help says.
        wait: Default seconds ``start`` waits for it to be ready.

    """

    name: str
    label: str
    title: str
    marker: bytes
    port_env: str
    default_port: int
    ready: Callable[[int], bool]
    description: str = "Run a local server on 127.0.0.1 for tests."
    install_help: str = "install it into the user cache (idempotent)"
    wait: float = 120.0

    def port(self, port: int | None = None) -> int:
        """Return ``port`` checked, or the default port from the environment.

        Raises:
            LocalServerError: If the port (given or from the environment) is invalid.

        """
        return port_from_env(self.port_env, self.default_port) if port is None else check_port(port)

    def run_file(self, port: int, suffix: str) -> Path:
        """Return ``<cache>/run/<name>-<port>.<suffix>``."""
        return get_paths().run_file(self.name, port, suffix)


class ServerHandle:
    """A server that ``start_server()`` started or found already running.

    Attributes:
        port: The port the server listens on.
        base_url: OpenAI base URL, e.g. ``http://127.0.0.1:8765/v1``.
        pid: Pid (and process group id) of the server, or None if it was reused.
        started_by_us: Whether this handle's start launched the server.
        log_file: The server's log file.

    """

    def __init__(
        self,
        server: Server,
        port: int,
        *,
        pid: int | None,
        process: subprocess.Popen[bytes] | None = None,
    ) -> None:
        self.server = server
        self.port = port
        self.base_url = base_url(port)
        self.pid = pid
        self.started_by_us = pid is not None
        self.log_file = server.run_file(port, "log")
        # Kept so stop() can reap the child: an unreaped child stays a zombie, and a
        # zombie still "exists" for kill(pid, 0), which would make stop() wait in vain.
        self._process = process

    def stop(self) -> None:
        """Stop the server, but only if this handle's start launched it.

        A server that was already running belongs to someone else (another test session,
        a developer's shell), so it is left alone.
        """
        if not self.started_by_us or self.pid is None:
            return
        stop_process_group(self.pid, self._process)
        remove_pid_file_if(self.server.run_file(self.port, "pid"), self.pid)
        self.pid = None
        self.started_by_us = False

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={self.base_url!r}, pid={self.pid!r}, "
            f"started_by_us={self.started_by_us!r})"
        )


def start_server(
    server: Server,
    port: int,
    command: Callable[[], list[str]],
    env: dict[str, str],
    *,
    wait: float,
    verbose: bool = True,
) -> ServerHandle:
    """Reuse the server on ``port`` if it answers, else (re)start it; under its port's lock.

    Args:
        server: Which kind of server.
        port: A checked port on 127.0.0.1.
        command: Builds the command line; called under the lock, only when spawning (so it
            may write files the server reads).
        env: The server's environment (secrets go here, never into ``command``).
        wait: Seconds to wait until ``server.ready(port)``.
        verbose: Print progress.

    Returns:
        A handle; ``started_by_us`` is False when a ready server was reused.

    Raises:
        LocalServerError: If the server exits or is not ready in time (with the tail of
            its log); whatever this call started is stopped first.

    """
    say = printer(verbose)
    url = base_url(port)
    pid_file = server.run_file(port, "pid")
    with file_lock(get_paths().lock_file(f"{server.name}-{port}")):
        if server.ready(port):
            live = running_pid(pid_file, server.marker)
            owner = f"pid {live}" if live else "not started by this script"
            say(f"{server.label}: already running at {url} ({owner}); reusing it")
            return ServerHandle(server, port, pid=None)
        stale = running_pid(pid_file, server.marker)
        if stale is not None:
            # Alive but not answering: hung or wedged. Replace it rather than fail
            # forever on a port we own.
            say(f"{server.label}: pid {stale} does not answer on port {port}; stopping it")
            stop_process_group(stale)
        pid_file.unlink(missing_ok=True)
        t0 = time.monotonic()
        process = spawn_group(
            command(),
            log_file=server.run_file(port, "log"),
            pid_file=pid_file,
            env=env,
            cwd=get_paths().run_dir,
            ready=lambda: server.ready(port),
            wait=wait,
            what=f"{server.title} on port {port}",
        )
    say(
        f"{server.label}: started pid {process.pid} at {url} in "
        f"{time.monotonic() - t0:.1f} s (log: {server.run_file(port, 'log')})"
    )
    return ServerHandle(server, port, pid=process.pid, process=process)


def stop_server(server: Server, port: int | None = None, *, verbose: bool = True) -> bool:
    """Stop the server of this kind that these scripts started on ``port``.

    Sends SIGTERM to its process group, waits up to 10 s, then SIGKILLs it. A server
    without a pid file of ours is left alone.

    Returns:
        True if a server was stopped, False if none of ours was running.

    Raises:
        LocalServerError: If the port is invalid.

    """
    port = server.port(port)
    t0 = time.monotonic()
    pid = stop_group(server.run_file(port, "pid"), server.marker)
    if pid is None:
        if verbose and server.ready(port):
            print(
                f"{server.label}: something answers on port {port} but was not started by "
                "this script; leaving it alone",
                file=sys.stderr,
            )
        return False
    printer(verbose)(f"{server.label}: stopped pid {pid} in {time.monotonic() - t0:.1f} s")
    return True


@dataclass(frozen=True)
class ServerStatus:
    """What ``server_status()`` found on a port.

    Attributes:
        port: The port that was inspected.
        pid: Pid from the pid file if that process is still ours and alive, else None.
        healthy: Whether the server's readiness check answered.
        base_url: The OpenAI base URL for the port.
        log_file: Where a server started by these scripts logs.

    """

    port: int
    pid: int | None
    healthy: bool
    base_url: str
    log_file: Path


def server_status(server: Server, port: int | None = None) -> ServerStatus:
    """Inspect the server of this kind on ``port`` (default: its default port)."""
    port = server.port(port)
    return ServerStatus(
        port=port,
        pid=running_pid(server.run_file(port, "pid"), server.marker),
        healthy=server.ready(port),
        base_url=base_url(port),
        log_file=server.run_file(port, "log"),
    )


# ----------------------------------------------------------------------------- CLI


def cli_parser(server: Server) -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The shared command line: install, start, stop, status, url.

    Returns:
        The parser, and the ``start`` sub-parser for the server's own options.

    """
    parser = argparse.ArgumentParser(description=server.description)
    sub = parser.add_subparsers(dest="command", required=True)
    port_help = f"port on 127.0.0.1 (default: ${server.port_env} or {server.default_port})"
    wait = server.wait
    sub.add_parser("install", help=server.install_help)
    p_start = sub.add_parser("start", help="install, then start the server in the background")
    p_start.add_argument("--port", type=int, help=port_help)
    p_start.add_argument(
        "--wait", type=float, default=wait, help=f"seconds to wait for start-up (default {wait:g})"
    )
    for name, text in (
        ("stop", "stop the server started by this script"),
        ("status", "show whether the server runs (exit 0 if healthy, 3 if not)"),
        ("url", "print the OpenAI base URL"),
    ):
        sub.add_parser(name, help=text).add_argument("--port", type=int, help=port_help)
    return parser, p_start


def run_cli(
    server: Server,
    args: argparse.Namespace,
    install: Callable[[], object],
    start: Callable[[argparse.Namespace], object],
    stop: Callable[[int | None], object],
) -> int:
    """Run the parsed command.

    Returns:
        The exit code: 0, 1 on a ``LocalServerError`` (printed), 3 when ``status`` finds
        nothing healthy.

    """
    try:
        if args.command == "install":
            install()
        elif args.command == "start":
            start(args)
        elif args.command == "stop":
            stop(args.port)
        elif args.command == "status":
            st = server_status(server, args.port)
            state = "healthy" if st.healthy else "not answering"
            owner = f"pid {st.pid}" if st.pid else "no server started by this script"
            print(f"{st.base_url}: {state} ({owner}); log: {st.log_file}")
            return 0 if st.healthy else 3
        elif args.command == "url":
            print(base_url(server.port(args.port)))
    except LocalServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
