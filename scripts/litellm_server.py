#!/usr/bin/env python3
"""Install, start and stop the LiteLLM proxy on loopback, as a gateway in front of llama.cpp.

What many companies run as their internal gateway: a master key, no database, and behind it
the llama.cpp server of ``local_server.py`` (started on its own port if it is not running).
Everything lives in the user cache, never in the clone:

- ``<cache>/litellm-server``: a venv with ``litellm[proxy]==1.106.2``;
- ``<cache>/run/litellm-server-PORT.{yaml,pid,log,backend}``.

The proxy serves these models (``model`` in requests):

- ``smollm2``: routed to the llama.cpp backend;
- ``smollm2-limited``: the same backend with ``rpm: 1`` (the second request in a minute is
  a 429 whose retry hint is only in ``llm_provider-retry-after``);
- ``rate-limited``: no backend; LiteLLM's ``mock_response`` raises its RateLimitError (429).

Command line::

    python scripts/litellm_server.py install
    python scripts/litellm_server.py start [--port P] [--backend-port B] [--wait S]
    python scripts/litellm_server.py status [--port P]
    python scripts/litellm_server.py stop [--port P]     # the backend too, if we started it

Environment:
    CUSTOMLLM_LITELLM_PORT: default port (8971).
    CUSTOMLLM_LITELLM_BACKEND_PORT: default llama.cpp backend port (8972).
    CUSTOMLLM_LITELLM_MASTER_KEY: the proxy's master key (default ``sk-customllm-matrix``, a
        test key for a loopback-only proxy). Given to the proxy through its environment, never
        written to the config file or the command line.

Facts behind the setup are in ``../shared/notes/litellm-proxy.md``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

__all__ = [
    "DEFAULT_BACKEND_PORT",
    "DEFAULT_PORT",
    "LITELLM_VERSION",
    "LitellmHandle",
    "install",
    "main",
    "start",
    "stop",
]

LITELLM_VERSION = "1.106.2"
REQUIREMENT = f"litellm[proxy]=={LITELLM_VERSION}"
DEFAULT_PORT = 8971
DEFAULT_BACKEND_PORT = 8972
# A test key for a proxy that only listens on loopback.
DEFAULT_MASTER_KEY = "sk-customllm-matrix"
MARKER = b"litellm-server/bin/litellm"


def _load_local_server() -> ModuleType:
    here = Path(__file__).resolve().parent
    name = "local_server"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, here / "local_server.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up while defined
    spec.loader.exec_module(module)
    return module


ls = _load_local_server()
LocalServerError = ls.LocalServerError


def _port_from_env(var: str, default: int) -> int:
    raw = os.environ.get(var, "").strip()
    try:
        return int(raw) if raw else default
    except ValueError:
        raise LocalServerError(f"{var}={raw!r} is not an integer") from None


def default_port() -> int:
    """Return ``$CUSTOMLLM_LITELLM_PORT`` or 8971."""
    return _port_from_env("CUSTOMLLM_LITELLM_PORT", DEFAULT_PORT)


def master_key() -> str:
    """The proxy's master key (``$CUSTOMLLM_LITELLM_MASTER_KEY`` or the test default)."""
    return os.environ.get("CUSTOMLLM_LITELLM_MASTER_KEY") or DEFAULT_MASTER_KEY


def _venv() -> Path:
    return Path(ls.get_paths().root) / "litellm-server"


def _run(port: int, suffix: str) -> Path:
    return Path(ls.get_paths().run_dir) / f"litellm-server-{port}.{suffix}"


def _stamp() -> Path:
    return _venv() / ".customllm-installed"


def _installed_version(*, trust_stamp: bool = True) -> str | None:
    """The litellm version the venv can run the proxy with.

    Importing the proxy takes 10-25 s; once that passed, a stamp in the venv records the
    version and later checks read that instead.
    """
    python = _venv() / "bin" / "python"
    if not python.exists() or not (_venv() / "bin" / "litellm").exists():
        return None
    if trust_stamp and _stamp().exists():
        return _stamp().read_text().strip() or None
    code = (
        "import importlib.metadata as m, litellm.proxy.proxy_server, backoff, fastapi;"
        "print(m.version('litellm'))"
    )
    result = subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, check=False, timeout=300
    )
    version = result.stdout.strip() or None if result.returncode == 0 else None
    if version:
        _stamp().write_text(f"{version}\n")
    return version


def install(*, verbose: bool = True) -> Path:
    """Create the venv and install the proxy, only if that exact version is missing.

    Returns:
        The venv.

    Raises:
        LocalServerError: If pip fails (the message names the log).

    """
    say = ls._printer(verbose)
    paths = ls.get_paths()
    log = Path(paths.run_dir) / "litellm-install.log"
    t0 = time.monotonic()
    with ls._file_lock(paths.lock_file("litellm-install")):
        if ls.make_venv(_venv()):
            say(f"venv: created {_venv()}")
        version = _installed_version()
        if version == LITELLM_VERSION:
            say(f"litellm: {version} already installed (checked in {time.monotonic() - t0:.1f} s)")
            return _venv()
        say(f"litellm: installing {REQUIREMENT} (~1 min, ~740 MB; log: {log})")
        py = str(_venv() / "bin" / "python")
        _stamp().unlink(missing_ok=True)
        ls._run_logged([py, "-m", "pip", "install", "--upgrade", "pip"], log, "upgrading pip")
        ls._run_logged([py, "-m", "pip", "install", REQUIREMENT], log, f"installing {REQUIREMENT}")
        version = _installed_version(trust_stamp=False)
        if version != LITELLM_VERSION:
            raise LocalServerError(
                f"pip reported success but the venv imports litellm {version!r}, expected "
                f"{LITELLM_VERSION}; see {log}"
            )
    say(f"litellm: installed in {time.monotonic() - t0:.1f} s")
    return _venv()


def config(backend_port: int) -> dict[str, object]:
    """The proxy's config (JSON is YAML): the models above, a master key, no database."""
    api_base = f"http://{ls.HOST}:{backend_port}/v1"
    backend = {"model": "openai/smollm2", "api_base": api_base, "api_key": "none"}
    return {
        "model_list": [
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
        ],
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


def is_ready(port: int) -> bool:
    """The proxy's ``/health/readiness`` answers 200 once it is up (no key needed)."""
    return bool(ls.http_ok(f"http://{ls.HOST}:{port}/health/readiness", timeout=2.0))


class LitellmHandle:
    """The proxy (and its backend) as ``start()`` left them; ``stop()`` undoes that."""

    def __init__(
        self, port: int, started_by_us: bool, backend: object, process: object = None
    ) -> None:
        self.port = port
        self.base_url = f"http://{ls.HOST}:{port}/v1"
        self.started_by_us = started_by_us
        self.backend = backend
        self._process = process

    def stop(self) -> None:
        """Stop the proxy if this handle started it, then the backend likewise."""
        if self.started_by_us:
            ls.stop_group(_run(self.port, "pid"), MARKER, self._process)
            _run(self.port, "backend").unlink(missing_ok=True)
            self.started_by_us = False
        self.backend.stop()  # type: ignore[attr-defined]  # a no-op unless it started it

    def __repr__(self) -> str:
        return f"LitellmHandle(base_url={self.base_url!r}, started_by_us={self.started_by_us})"


def start(
    port: int | None = None,
    *,
    backend_port: int | None = None,
    wait: float = 120.0,
    verbose: bool = True,
) -> LitellmHandle:
    """Install if needed, start the llama.cpp backend and the proxy, or reuse running ones.

    Raises:
        LocalServerError: If installing fails or a server does not come up in time (with the
            tail of its log). A backend started here is stopped again then.

    """
    port = default_port() if port is None else port
    backend_port = (
        _port_from_env("CUSTOMLLM_LITELLM_BACKEND_PORT", DEFAULT_BACKEND_PORT)
        if backend_port is None
        else backend_port
    )
    say = ls._printer(verbose)
    install(verbose=verbose)
    paths = ls.get_paths()
    backend = ls.start(port=backend_port, verbose=verbose)
    try:
        with ls._file_lock(paths.lock_file(f"litellm-server-{port}")):
            if is_ready(port):
                say(f"litellm: already running at http://{ls.HOST}:{port}/v1; reusing it")
                return LitellmHandle(port, started_by_us=False, backend=backend)
            ls.stop_group(_run(port, "pid"), MARKER)  # alive but not answering: replace it
            cfg = _run(port, "yaml")
            cfg.parent.mkdir(parents=True, exist_ok=True)
            cfg.write_text(json.dumps(config(backend_port), indent=2) + "\n")
            cmd = [
                str(_venv() / "bin" / "litellm"),
                "--config",
                str(cfg),
                "--host",
                ls.HOST,
                "--port",
                str(port),
            ]
            t0 = time.monotonic()
            process = ls.spawn_group(
                cmd,
                log_file=_run(port, "log"),
                pid_file=_run(port, "pid"),
                env=_server_env(master_key()),
                cwd=Path(paths.run_dir),
                ready=lambda: is_ready(port),
                wait=wait,
                what=f"the LiteLLM proxy on port {port}",
            )
            if backend.started_by_us:
                _run(port, "backend").write_text(f"{backend_port}\n")
    except BaseException:
        backend.stop()
        raise
    say(
        f"litellm: started pid {process.pid} at http://{ls.HOST}:{port}/v1 in "
        f"{time.monotonic() - t0:.1f} s, backend {backend.base_url} (log: {_run(port, 'log')})"
    )
    return LitellmHandle(port, started_by_us=True, backend=backend, process=process)


def stop(port: int | None = None, *, verbose: bool = True) -> bool:
    """Stop the proxy on ``port`` and the backend it started; False if no proxy ran."""
    port = default_port() if port is None else port
    say = ls._printer(verbose)
    pid = ls.stop_group(_run(port, "pid"), MARKER)
    if pid is not None:
        say(f"litellm: stopped pid {pid}")
    backend_file = _run(port, "backend")
    try:
        backend_port = int(backend_file.read_text().strip())
    except (OSError, ValueError):
        backend_port = None
    if backend_port is not None:
        ls.stop(backend_port, verbose=verbose)
        backend_file.unlink(missing_ok=True)
    return pid is not None


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (status: 0 ready, 3 not)."""
    parser = argparse.ArgumentParser(description="Run the LiteLLM proxy on 127.0.0.1 for tests.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("install", help="create the venv and install the proxy (idempotent)")
    port_help = f"port on 127.0.0.1 (default: $CUSTOMLLM_LITELLM_PORT or {DEFAULT_PORT})"
    p_start = sub.add_parser("start", help="start the backend and the proxy in the background")
    p_start.add_argument("--port", type=int, help=port_help)
    p_start.add_argument(
        "--backend-port",
        type=int,
        help=f"llama.cpp backend port (default: $CUSTOMLLM_LITELLM_BACKEND_PORT or "
        f"{DEFAULT_BACKEND_PORT})",
    )
    p_start.add_argument("--wait", type=float, default=120.0, help="start-up timeout (120 s)")
    for name in ("stop", "status", "url"):
        sub.add_parser(name).add_argument("--port", type=int, help=port_help)
    args = parser.parse_args(argv)
    try:
        if args.command == "install":
            install()
        elif args.command == "start":
            start(args.port, backend_port=args.backend_port, wait=args.wait)
        elif args.command == "stop":
            stop(args.port)
        else:
            port = default_port() if args.port is None else args.port
            url = f"http://{ls.HOST}:{port}/v1"
            if args.command == "url":
                print(url)
                return 0
            pid = ls.running_pid(_run(port, "pid"), MARKER)
            ready = is_ready(port)
            owner = f"pid {pid}" if pid else "no proxy started by this script"
            state = "ready" if ready else "not answering"
            print(f"{url}: {state} ({owner}); log: {_run(port, 'log')}")
            return 0 if ready else 3
    except LocalServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
