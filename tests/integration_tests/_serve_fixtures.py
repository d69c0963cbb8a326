"""The gateway under test: ``customllm serve`` as a real subprocess on loopback.

`GatewayProcess` runs the real command line (``python -m langchain_customllm serve``, this
tree's package first on the path), waits for ``/health``, and stops it with SIGTERM, as an
orchestrator would. The session's gateway (`gateway_url`) fronts the llama.cpp servers the
integration tests start: ``smollm2`` (chat), ``smollm2-text`` (text completions) and
``smollm2-embed`` (embeddings), behind the client key `GATEWAY_KEY`. Its port is
``CUSTOMLLM_TEST_GATEWAY_PORT`` (8861); tests that start gateways of their own take the
ports after it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
GATEWAY_PORT = int(os.environ.get("CUSTOMLLM_TEST_GATEWAY_PORT", "8861"))
GATEWAY_KEY = "sk-gateway-test-0123456789"
KEY_VARIABLE = "CUSTOMLLM_TEST_GATEWAY_KEYS"
MODEL_NAMES = ("smollm2", "smollm2-text", "smollm2-embed")


class GatewayProcess:
    """``customllm serve CONFIG --port PORT [args]`` in a subprocess, its output in a file.

    Args:
        config: The models file.
        port: The loopback port.
        args: More ``serve`` arguments.
        log: Where its output goes.
        env: More environment variables.
    """

    def __init__(
        self,
        config: Path,
        port: int,
        args: tuple[str, ...] = (),
        *,
        log: Path,
        env: dict[str, str] | None = None,
    ) -> None:
        self.command = [
            sys.executable, "-m", "langchain_customllm", "serve", str(config),
            "--host", "127.0.0.1", "--port", str(port), *args,
        ]  # fmt: skip
        self.port = port
        self.log = log
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
            KEY_VARIABLE: GATEWAY_KEY,
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The gateway's ``/v1`` root."""
        return f"http://127.0.0.1:{self.port}/v1"

    def output(self) -> str:
        """Everything it printed so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def start(self, timeout: float = 60.0) -> GatewayProcess:
        """Start it and wait until ``/health`` answers."""
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                self.command, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"customllm serve exited at start:\n{self.output()}")
            health = f"http://127.0.0.1:{self.port}/health"
            try:
                if httpx.get(health, timeout=1, trust_env=False).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"customllm serve gave no /health in {timeout} s:\n{self.output()}")

    def terminate(self) -> None:
        """Send SIGTERM (a graceful stop), without waiting."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, wait for the exit (SIGKILL after ``timeout``); the exit code."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def __enter__(self) -> GatewayProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def write_models(path: Path, models: dict[str, Any], formats: dict[str, Any] | None = None) -> Path:
    """A models file with these entries (and shared formats)."""
    data: dict[str, Any] = {"models": models}
    if formats:
        data["formats"] = formats
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def llama_models(base_url: str, embeddings_url: str) -> dict[str, Any]:
    """The session gateway's entries, in front of the llama.cpp test servers."""
    return {
        "smollm2": {"model": "smollm2", "base_url": base_url, "max_retries": 0},
        "smollm2-text": {"type": "llm", "model": "smollm2", "base_url": base_url},
        "smollm2-embed": {"type": "embeddings", "model": "smollm2", "base_url": embeddings_url},
        "smollm2-priced": {
            "model": "smollm2",
            "base_url": base_url,
            "pricing": {"input": 0.15, "output": 0.6},
        },
    }


@pytest.fixture(scope="session")
def gateway(
    base_url: str, embeddings_base_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    """The session's gateway subprocess (see the module docstring)."""
    work = tmp_path_factory.mktemp("gateway")
    config = write_models(work / "models.yaml", llama_models(base_url, embeddings_base_url))
    process = GatewayProcess(
        config, GATEWAY_PORT, ("--api-key-env", KEY_VARIABLE), log=work / "gateway.log"
    )
    with process:
        yield process
    # uvicorn ends a SIGTERM'd server by that signal again, once it has shut down cleanly.
    assert process.process is not None
    assert process.process.returncode in (0, -signal.SIGTERM), process.output()
    assert "Application shutdown complete" in process.output()


@pytest.fixture(scope="session")
def gateway_url(gateway: GatewayProcess) -> str:
    """The session gateway's ``/v1`` root."""
    return gateway.url
