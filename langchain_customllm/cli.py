"""The ``customllm`` command: ``probe``, ``profiles`` and ``serve``.

::

    customllm probe --base-url URL [--model M] ...   # what a server can do
    customllm profiles [--markdown]                   # the built-in server profiles
    customllm serve models.yaml [--port 4000] ...     # the models, to any OpenAI client

Each subcommand's arguments and work live with it (`langchain_customllm.probe.cli`,
`langchain_customllm.serve.cli`); this module only parses and dispatches. ``serve`` needs
the ``serve`` extra, imported only when it runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from typing import TextIO

import httpx

from langchain_customllm.probe import cli as probe_cli
from langchain_customllm.serve import cli as serve_cli

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="customllm", description="Tools for langchain-customllm.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    probe_cli.add_commands(commands)
    serve = commands.add_parser(
        "serve",
        help="serve the models of a models.yaml to any OpenAI client",
        description="Serve every model of a models.yaml (custom formats and Python adapters "
        "included) over OpenAI's API: /v1/chat/completions, /v1/completions, /v1/embeddings, "
        "/v1/models, /health and /metrics.",
    )
    serve_cli.add_arguments(serve)
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
    transport: httpx.BaseTransport | None = None,
) -> int:
    """The ``customllm`` command.

    Args:
        argv: Arguments after the program name (default: ``sys.argv[1:]``).
        stdout: Where reports go (default: ``sys.stdout``).
        stderr: Where errors and progress go (default: ``sys.stderr``).
        environ: Where ``probe --api-key-env`` is looked up (default: ``os.environ``).
        transport: An httpx transport for ``probe`` (tests).

    Returns:
        The exit code: ``probe``'s (0 ok, 1 chat failed, 2 usage, 3 unreachable), or
        ``serve``'s (0 after a clean stop, 2 for a configuration error).
    """
    err = stderr or sys.stderr
    args = probe_cli.parse(_parser(), argv, err)
    if isinstance(args, int):
        return args
    if args.command == "serve":
        return serve_cli.run(args, err)
    env = os.environ if environ is None else environ
    return probe_cli.run(args, stdout or sys.stdout, err, env, transport)
