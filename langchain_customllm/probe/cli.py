"""``customllm probe ...`` and ``customllm profiles``: their arguments and what they do.

The ``customllm`` command itself (which also has ``serve``) is `langchain_customllm.cli`;
`main` here is the same command, kept for callers of ``langchain_customllm.probe.main``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import TextIO

import httpx

from langchain_customllm.probe.checks import run_probe
from langchain_customllm.probe.errors import ProbeUsageError, ServerUnreachableError
from langchain_customllm.probe.render import render_json, render_profiles, render_text

EXIT_OK = 0
EXIT_CHAT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``probe`` and ``profiles`` to the ``customllm`` command's subcommands."""
    probe = commands.add_parser(
        "probe",
        help="measure what an OpenAI-compatible server can do",
        description="Send small real requests to an OpenAI-compatible server and print what "
        "it can do, the server profile that fits and the ChatCustomLLM(...) to use.",
    )
    probe.add_argument("--base-url", required=True, help="the API root, e.g. http://host:8000/v1")
    probe.add_argument("--model", help="model name (default: the first one /models lists)")
    probe.add_argument(
        "--api-key-env",
        metavar="VAR",
        help="name of the environment variable holding the API key (the key is never printed)",
    )
    probe.add_argument("--json", action="store_true", help="print one JSON object")
    probe.add_argument(
        "--timeout", type=float, default=30.0, metavar="S", help="seconds per request (30)"
    )
    profiles = commands.add_parser("profiles", help="list the built-in server profiles")
    profiles.add_argument("--markdown", action="store_true", help="as a Markdown table")


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
    transport: httpx.BaseTransport | None = None,
) -> int:
    """``customllm probe`` and ``customllm profiles``.

    The ``customllm`` command itself is `langchain_customllm.cli.main`, which has ``serve``
    too.

    Args:
        argv: Arguments after the program name (default: ``sys.argv[1:]``).
        stdout: Where the report goes (default: ``sys.stdout``).
        stderr: Where errors and progress go (default: ``sys.stderr``).
        environ: Where ``--api-key-env`` is looked up (default: ``os.environ``).
        transport: An httpx transport (tests).

    Returns:
        The exit code: 0 ok, 1 chat completions failed, 2 usage error, 3 unreachable.
    """
    parser = argparse.ArgumentParser(prog="customllm", description="Tools for langchain-customllm.")
    add_commands(parser.add_subparsers(dest="command", metavar="COMMAND"))
    err = stderr or sys.stderr
    args = parse(parser, argv, err)
    if isinstance(args, int):
        return args
    env = os.environ if environ is None else environ
    return run(args, stdout or sys.stdout, err, env, transport)


def parse(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None, err: TextIO
) -> argparse.Namespace | int:
    """The parsed arguments of a ``customllm`` command line, or the exit code to return.

    ``--help`` is 0, bad usage and no command at all (the help goes to ``err``) are 2.
    """
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help exits 0, bad usage 2
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    if args.command is None:
        parser.print_help(err)
        return EXIT_USAGE
    return args


def run(
    args: argparse.Namespace,
    out: TextIO,
    err: TextIO,
    env: Mapping[str, str],
    transport: httpx.BaseTransport | None,
) -> int:
    """Run ``probe`` or ``profiles`` with parsed arguments; returns the exit code."""

    def fail(message: str, code: int = EXIT_USAGE, kind: str = "usage") -> int:
        err.write(f"customllm probe: {message}\n")
        if getattr(args, "json", False):
            # A script reading stdout gets an answer it can parse whatever went wrong.
            failure = {"kind": kind, "message": message, "exit_code": code}
            out.write(json.dumps({"error": failure}, ensure_ascii=False) + "\n")
        return code

    if args.command == "profiles":
        out.write(render_profiles(markdown=args.markdown))
        return EXIT_OK
    try:
        url = httpx.URL(args.base_url)
    except httpx.InvalidURL:
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        return fail(f"--base-url must be an http(s) URL, got {args.base_url!r}")
    if args.timeout <= 0:
        return fail("--timeout must be positive")
    key = None
    if args.api_key_env:
        key = env.get(args.api_key_env)
        if not key:
            return fail(f"environment variable {args.api_key_env} is not set or empty")
    progress = None
    if not args.json and err.isatty():

        def progress(step: str) -> None:
            err.write(f"\rprobing {step}...{' ' * 12}")
            err.flush()

    try:
        report = run_probe(
            args.base_url,
            args.model,
            api_key=key,
            api_key_env=args.api_key_env,
            timeout=args.timeout,
            transport=transport,
            progress=progress,
        )
    except ServerUnreachableError as exc:
        return fail(str(exc), EXIT_UNREACHABLE, exc.kind)
    except ProbeUsageError as exc:
        return fail(str(exc), EXIT_USAGE, exc.kind)
    finally:
        if progress is not None:
            err.write("\r" + " " * 40 + "\r")
    out.write(render_json(report) if args.json else render_text(report))
    return EXIT_OK if report.chat_ok else EXIT_CHAT_FAILED
