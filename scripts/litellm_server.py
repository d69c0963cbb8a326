#!/usr/bin/env python3
"""Install, start and stop the LiteLLM proxy on loopback, as a gateway in front of llama-server.

What many companies run as their internal gateway: a master key, no database, and behind it
llama.cpp's C++ ``llama-server`` of ``local_server.py`` (what most llama.cpp users run;
started on its own port if it is not running).
Everything lives in the user cache, never in the clone:

- ``<cache>/litellm-server``: a venv with ``litellm[proxy]==1.106.2``;
- ``<cache>/run/litellm-server-PORT.{yaml,pid,log,backend}``.

The proxy serves these models (``model`` in requests):

- ``smollm2``: routed to the llama-server backend;
- ``smollm2-limited``: the same backend with ``rpm: 1`` (the second request in a minute is
  a 429 whose retry hint is only in ``llm_provider-retry-after``);
- ``rate-limited``: no backend; LiteLLM's ``mock_response`` raises its RateLimitError (429).

Started with ``--embeddings`` (``start(embeddings=True)``), it is an embeddings gateway
instead, on ports of its own: the backend is ``local_server.py``'s embeddings server
(``--embeddings --pooling mean --parallel 1``) and the proxy serves one model:

- ``smollm2-embed``: routed (``openai/`` provider) to that backend's ``/v1/embeddings``.

Command line::

    python scripts/litellm_server.py install
    python scripts/litellm_server.py start [--port P] [--backend-port B] [--wait S]
    python scripts/litellm_server.py start --embeddings --port P --backend-port B
    python scripts/litellm_server.py status [--port P]
    python scripts/litellm_server.py stop [--port P]     # the backend too, if we started it

Environment:
    CUSTOMLLM_LITELLM_PORT: default port (8971).
    CUSTOMLLM_LITELLM_BACKEND_PORT: default llama-server backend port (8972).
    CUSTOMLLM_LITELLM_MASTER_KEY: the proxy's master key (default ``sk-customllm-matrix``, a
        test key for a loopback-only proxy). Given to the proxy through its environment, never
        written to the config file or the command line.

Facts behind the setup are in ``../shared/notes/litellm-proxy.md``.
"""

from __future__ import annotations

import json
import os
import sys
from functools import partial
from pathlib import Path

if not __package__:  # run as `python scripts/litellm_server.py`: import the package from the root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts import _cache, _procs, _server, local_server

LocalServerError = _cache.LocalServerError

__all__ = [
    "DEFAULT_BACKEND_PORT",
    "DEFAULT_PORT",
    "LITELLM_VERSION",
    "LitellmHandle",
    "LocalServerError",
    "install",
    "main",
    "start",
    "stop",
]

LITELLM_VERSION = "1.106.2"
DEFAULT_PORT = 8971
DEFAULT_BACKEND_PORT = 8972
# A test key for a proxy that only listens on loopback.
DEFAULT_MASTER_KEY = "sk-customllm-matrix"

LITELLM_VENV = _cache.VenvInstall(
    dirname="litellm-server",
    label="litellm",
    requirements=(f"litellm[proxy]=={LITELLM_VERSION}",),
    version=LITELLM_VERSION,
    check=(
        "import importlib.metadata as m, litellm.proxy.proxy_server, backoff, fastapi;"
        "print(m.version('litellm'))"
    ),
    note="~1 min, ~740 MB",
    log_name="litellm-install.log",
    needs=("bin/litellm",),
)


def is_ready(port: int) -> bool:
    """The proxy's ``/health/readiness`` answers 200 once it is up (no key needed)."""
    return _procs.http_ok(f"http://{_cache.HOST}:{port}/health/readiness", timeout=2.0)


LITELLM = _server.Server(
    name="litellm-server",
    label="litellm",
    title="the LiteLLM proxy",
    marker=b"litellm-server/bin/litellm",
    port_env="CUSTOMLLM_LITELLM_PORT",
    default_port=DEFAULT_PORT,
    ready=is_ready,
    description="Run the LiteLLM proxy on 127.0.0.1 for tests.",
    install_help="create the venv and install the proxy (idempotent)",
)


def master_key() -> str:
    """The proxy's master key (``$CUSTOMLLM_LITELLM_MASTER_KEY`` or the test default)."""
    return os.environ.get("CUSTOMLLM_LITELLM_MASTER_KEY") or DEFAULT_MASTER_KEY


def install(*, verbose: bool = True) -> Path:
    """Create the venv and install the proxy, only if that exact version is missing.

    Returns:
        The venv.

    Raises:
        LocalServerError: If pip fails (the message names the log).

    """
    with _cache.file_lock(_cache.get_paths().lock_file("litellm-install")):
        LITELLM_VENV.ensure(_cache.printer(verbose))
    return LITELLM_VENV.venv


EMBEDDINGS_MODEL = "smollm2-embed"


def config(backend_port: int, *, embeddings: bool = False) -> dict[str, object]:
    """The proxy's config (JSON is YAML): the models above, a master key, no database."""
    api_base = f"http://{_cache.HOST}:{backend_port}/v1"
    backend = {"model": "openai/smollm2", "api_base": api_base, "api_key": "none"}
    models: list[dict[str, object]]
    if embeddings:
        route = {"model_name": EMBEDDINGS_MODEL, "litellm_params": backend}
        models = [{**route, "model_info": {"mode": "embedding"}}]
    else:
        models = [
            {"model_name": "smollm2", "litellm_params": backend},
            {"model_name": "smollm2-limited", "litellm_params": {**backend, "rpm": 1}},
            {
                "model_name": "rate-limited",
                "litellm_params": {
                    "model": "openai/rate-limited",
                    "api_key": "none",
                    "mock_response": "litellm.RateLimitError",
                },
            },
        ]
    return {
        "model_list": models,
        # No retries inside the gateway: the client's own retry policy is what is tested.
        "litellm_settings": {"telemetry": False, "num_retries": 0, "request_timeout": 120},
        "router_settings": {"routing_strategy": "usage-based-routing-v2", "num_retries": 0},
        # The key is read from the proxy's environment, so it is never on disk.
        "general_settings": {"master_key": "os.environ/LITELLM_MASTER_KEY"},
    }


def _server_env(key: str) -> dict[str, str]:
    # A DATABASE_URL or REDIS_* in the caller's environment would make the proxy use them.
    dropped = ("DATABASE_URL", "DIRECT_URL", "STORE_MODEL_IN_DB", "REDIS_", "LITELLM_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    env.update(
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        LITELLM_TELEMETRY="False",
        LITELLM_MASTER_KEY=key,
    )
    return env


class LitellmHandle(_server.ServerHandle):
    """The proxy (and its backend) as ``start()`` left them; ``stop()`` undoes that.

    Attributes:
        backend: The llama-server behind the proxy.

    """

    def __init__(self, proxy: _server.ServerHandle, backend: _server.ServerHandle) -> None:
        super().__init__(proxy.server, proxy.port, pid=proxy.pid, process=proxy._process)
        self.backend = backend

    def stop(self) -> None:
        """Stop the proxy if this handle started it, then the backend likewise."""
        if self.started_by_us:
            super().stop()
            LITELLM.run_file(self.port, "backend").unlink(missing_ok=True)
        self.backend.stop()  # a no-op unless this start started it


def _command(port: int, backend_port: int, *, embeddings: bool = False) -> list[str]:
    """The proxy's command line; writes its config (no secret in it) first."""
    cfg = LITELLM.run_file(port, "yaml")
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(json.dumps(config(backend_port, embeddings=embeddings), indent=2) + "\n")
    litellm = LITELLM_VENV.venv / "bin" / "litellm"
    return [str(litellm), "--config", str(cfg), "--host", _cache.HOST, "--port", str(port)]


def start(
    port: int | None = None,
    *,
    backend_port: int | None = None,
    embeddings: bool = False,
    wait: float = 120.0,
    verbose: bool = True,
) -> LitellmHandle:
    """Install if needed, start the llama-server backend and the proxy, or reuse running ones.

    Args:
        port: The proxy's port (default ``$CUSTOMLLM_LITELLM_PORT`` or 8971).
        backend_port: The llama-server backend's port (default
            ``$CUSTOMLLM_LITELLM_BACKEND_PORT`` or 8972).
        embeddings: The embeddings gateway (see above): an embeddings backend and the
            ``smollm2-embed`` route. Give both ports of their own: servers answering there
            are reused whatever they were started for.
        wait: Seconds to wait for each server.
        verbose: Print progress.

    Returns:
        A handle whose ``stop()`` stops what this call started.

    Raises:
        LocalServerError: If installing fails or a server does not come up in time (with the
            tail of its log). A backend started here is stopped again then.

    """
    port = LITELLM.port(port)
    if backend_port is None:
        backend_port = _cache.port_from_env("CUSTOMLLM_LITELLM_BACKEND_PORT", DEFAULT_BACKEND_PORT)
    install(verbose=verbose)
    backend = local_server.start(
        port=backend_port, wait=wait, embeddings=embeddings, verbose=verbose
    )
    try:
        command = partial(_command, port, backend_port, embeddings=embeddings)
        env = _server_env(master_key())
        proxy = _server.start_server(LITELLM, port, command, env, wait=wait, verbose=verbose)
        if proxy.started_by_us and backend.started_by_us:
            # `stop` (another process, later) stops the backend this proxy brought up.
            LITELLM.run_file(port, "backend").write_text(f"{backend_port}\n")
    except BaseException:
        backend.stop()
        raise
    if proxy.started_by_us:
        _cache.printer(verbose)(f"litellm: proxy in front of the backend at {backend.base_url}")
    return LitellmHandle(proxy, backend)


def stop(port: int | None = None, *, verbose: bool = True) -> bool:
    """Stop the proxy on ``port`` and the backend it started; False if no proxy ran."""
    port = LITELLM.port(port)
    stopped = _server.stop_server(LITELLM, port, verbose=verbose)
    backend_file = LITELLM.run_file(port, "backend")
    try:
        backend_port = int(backend_file.read_text().strip())
    except (OSError, ValueError):
        backend_port = None
    if backend_port is not None:
        local_server.stop(backend_port, verbose=verbose)
        backend_file.unlink(missing_ok=True)
    return stopped


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (status: 0 ready, 3 not)."""
    parser, p_start = _server.cli_parser(LITELLM)
    p_start.add_argument(
        "--backend-port",
        type=int,
        help=f"llama-server backend port (default: $CUSTOMLLM_LITELLM_BACKEND_PORT or "
        f"{DEFAULT_BACKEND_PORT})",
    )
    p_start.add_argument(
        "--embeddings",
        action="store_true",
        help=f"an embeddings gateway: {EMBEDDINGS_MODEL} in front of an embeddings llama-server",
    )
    args = parser.parse_args(argv)
    return _server.run_cli(
        LITELLM,
        args,
        install,
        lambda a: start(a.port, backend_port=a.backend_port, embeddings=a.embeddings, wait=a.wait),
        stop,
    )


if __name__ == "__main__":
    sys.exit(main())
