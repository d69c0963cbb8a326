"""``customllm serve models.yaml``: the gateway on uvicorn.

One process by default; ``--workers N`` starts N processes (uvicorn's supervisor) that
share nothing but the settings: each reads the configuration and the client keys itself,
from `SETTINGS_VARIABLE`, which holds paths and variable names, never a key.

SIGTERM (or Ctrl-C) stops accepting connections, lets open requests and streams finish for
``--grace-period`` seconds (uvicorn's ``timeout_graceful_shutdown``), then cancels what is
left: such a stream ends with an error event, not ``[DONE]``.

This module imports neither Starlette nor uvicorn until the gateway starts, so ``customllm``
lists ``serve`` even where the ``serve`` extra is not installed.
"""

from __future__ import annotations

import argparse
import importlib
import ipaddress
import json
import os
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from langchain_customllm._exceptions import ConfigurationError

if TYPE_CHECKING:
    from starlette.applications import Starlette

__all__ = ["SETTINGS_VARIABLE", "ServeSettings", "add_arguments", "app_from_environment", "run"]

SETTINGS_VARIABLE = "CUSTOMLLM_SERVE_SETTINGS"
"""The environment variable through which the worker processes get their settings."""

EXIT_OK = 0
EXIT_CONFIG = 2


@dataclass
class ServeSettings:
    """What every worker needs to build the same gateway (JSON-safe: no keys in it).

    Attributes:
        config: Absolute path of the models file.
        key_env: Environment variables holding client keys.
        key_files: Absolute paths of files of client keys.
        max_body_bytes: Largest request body.
        max_tokens: Cap on output tokens per request (None: none).
        cors_origins: Allowed browser origins.
        grace_seconds: Shutdown grace period.
        imports: Modules to import first (Python wire-format adapters register there).
        cwd: The directory ``imports`` are found from.
        metrics_dir: Where the workers keep their counts for ``/metrics`` (several workers).
    """

    config: str
    key_env: list[str] = field(default_factory=list)
    key_files: list[str] = field(default_factory=list)
    max_body_bytes: int = 0
    max_tokens: int | None = None
    cors_origins: list[str] = field(default_factory=list)
    grace_seconds: float = 30.0
    imports: list[str] = field(default_factory=list)
    cwd: str = "."
    metrics_dir: str | None = None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``serve`` subcommand's arguments."""
    from langchain_customllm.serve.options import (  # light: no Starlette
        DEFAULT_GRACE_SECONDS,
        DEFAULT_MAX_BODY_BYTES,
        DEFAULT_MAX_TOKENS,
    )

    parser.add_argument("config", help="the models file (models.yaml) to serve")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=4000, help="port (4000)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (1)")
    parser.add_argument(
        "--api-key-env",
        action="append",
        default=[],
        metavar="VAR",
        help="environment variable holding client keys (comma-separated); repeatable",
    )
    parser.add_argument(
        "--api-keys-file",
        action="append",
        default=[],
        metavar="PATH",
        help="file of client keys, one per line; repeatable",
    )
    parser.add_argument(
        "--no-keys",
        action="store_true",
        help="serve without client keys on a non-loopback address (not recommended)",
    )
    parser.add_argument(
        "--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES, metavar="N",
        help=f"largest request body ({DEFAULT_MAX_BODY_BYTES})",
    )  # fmt: skip
    parser.add_argument(
        "--max-tokens", default=str(DEFAULT_MAX_TOKENS), metavar="N",
        help=f"cap on max_tokens per request, or 'none' ({DEFAULT_MAX_TOKENS})",
    )  # fmt: skip
    parser.add_argument(
        "--cors-origin", action="append", default=[], metavar="ORIGIN",
        help="browser origin allowed to call the gateway; repeatable (CORS is off without)",
    )  # fmt: skip
    parser.add_argument(
        "--grace-period", type=float, default=DEFAULT_GRACE_SECONDS, metavar="S",
        help=f"seconds open streams get to finish on SIGTERM ({DEFAULT_GRACE_SECONDS:g})",
    )  # fmt: skip
    parser.add_argument(
        "--import", dest="imports", action="append", default=[], metavar="MODULE",
        help="import a module first (a Python wire-format adapter); repeatable",
    )  # fmt: skip
    parser.add_argument("--log-level", default="info", help="uvicorn's log level (info)")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def settings_from(args: argparse.Namespace) -> ServeSettings:
    """The worker settings of parsed ``serve`` arguments.

    Raises:
        ConfigurationError: For a bad value (naming the option).
    """
    if args.workers < 1:
        raise ConfigurationError("--workers must be 1 or more")
    if not 0 < args.port < 65536:
        raise ConfigurationError("--port must be 1 to 65535")
    max_tokens = None if str(args.max_tokens).lower() == "none" else args.max_tokens
    try:
        max_tokens = int(max_tokens) if max_tokens is not None else None
    except ValueError:
        raise ConfigurationError("--max-tokens takes a number or 'none'") from None
    keyless = not (args.api_key_env or args.api_keys_file or args.no_keys)
    if keyless and not _is_loopback(args.host):
        raise ConfigurationError(
            f"--host {args.host} is reachable from other machines, and no client key is "
            "set: pass --api-key-env VAR or --api-keys-file PATH (or --no-keys to serve "
            "without keys anyway)"
        )
    return ServeSettings(
        config=str(Path(args.config).resolve()),
        key_env=list(args.api_key_env),
        key_files=[str(Path(p).resolve()) for p in args.api_keys_file],
        max_body_bytes=args.max_body_bytes,
        max_tokens=max_tokens,
        cors_origins=list(args.cors_origin),
        grace_seconds=args.grace_period,
        imports=list(args.imports),
        cwd=os.getcwd(),
    )


def build_app(settings: ServeSettings) -> Starlette:
    """Build the gateway from settings: imports, client keys, models.

    Raises:
        ConfigurationError: For a module that cannot be imported, unreadable keys or a bad
            models file.
    """
    try:
        from langchain_customllm.serve.app import create_app
    except ImportError as exc:
        raise ConfigurationError(
            f"customllm serve needs the serve extra ({exc.name} is missing): "
            "pip install 'langchain-customllm[serve]'"
        ) from None
    from langchain_customllm.serve.options import ClientKeys, GatewayOptions

    if settings.imports and settings.cwd not in sys.path:
        sys.path.insert(0, settings.cwd)  # as `python -m` would: modules beside the file
    for module in settings.imports:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ConfigurationError(f"--import {module}: {exc}") from None
    options = GatewayOptions(
        client_keys=ClientKeys.load(settings.key_env, settings.key_files),
        max_body_bytes=settings.max_body_bytes,
        max_tokens=settings.max_tokens,
        cors_origins=tuple(settings.cors_origins),
        grace_seconds=settings.grace_seconds,
        metrics_dir=settings.metrics_dir,
    )
    return create_app(settings.config, options)


def app_from_environment() -> Starlette:
    """The app of one worker process (uvicorn's factory), from `SETTINGS_VARIABLE`."""
    data: dict[str, Any] = json.loads(os.environ[SETTINGS_VARIABLE])
    return build_app(ServeSettings(**data))


def run(args: argparse.Namespace, err: TextIO | None = None) -> int:
    """Serve until stopped; returns the exit code (2 for a configuration error)."""
    err = err or sys.stderr
    try:
        settings = settings_from(args)
        app = build_app(settings)  # also checks everything before any worker starts
    except ConfigurationError as exc:
        err.write(f"customllm serve: {exc.message}\n")
        return EXIT_CONFIG
    import uvicorn

    options: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "timeout_graceful_shutdown": settings.grace_seconds,
        "log_level": args.log_level,
        # Clients name themselves with x-request-id; proxies' headers are not trusted.
        "proxy_headers": False,
        "server_header": False,
    }
    if args.workers == 1:
        uvicorn.run(app, **options)
    else:
        # The workers' counts meet here, so /metrics answers for all of them; gone at exit.
        metrics_dir = tempfile.mkdtemp(prefix="customllm-metrics-")
        settings = replace(settings, metrics_dir=metrics_dir)
        os.environ[SETTINGS_VARIABLE] = json.dumps(asdict(settings))
        try:
            uvicorn.run(
                "langchain_customllm.serve.cli:app_from_environment",
                factory=True,
                workers=args.workers,
                **options,
            )
        finally:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return EXIT_OK
