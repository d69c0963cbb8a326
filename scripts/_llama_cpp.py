"""llama.cpp's own C++ ``llama-server``, built from the source the pinned sdist carries.

No prebuilt binary reaches every machine, but the ``llama-cpp-python==0.3.36`` sdist (the
one pip fetches anyway) holds the whole llama.cpp tree under ``vendor/llama.cpp``. The
cold build (~5 min on 2 cores) fetches that sdist with pip, extracts only that tree,
configures it with cmake/ninja for this CPU's instruction sets (the options
``_llama.isa_cmake_options()`` also gives llama-cpp-python's build: never AMX) and builds
the ``llama-server`` target. The result, the binary and the shared libraries beside it
(found through an ``$ORIGIN`` rpath, so the folder must stay together), is installed into
``<cache>/llama-cpp/<version>/bin`` with a stamp naming the version and the cmake options:
a warm start reads the stamp and is done; a cache built with other options is rebuilt once.

cmake and ninja come from the system; where one is missing, the ``cmake``/``ninja`` PyPI
packages are installed into ``<cache>/llama-cpp/build-venv``, the small venv whose pip
also fetches the sdist. The build log is ``<cache>/run/llama-cpp-build.log``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from scripts._cache import LocalServerError, get_paths, make_venv, run_logged, tail
from scripts._llama import LLAMA_CPP_VERSION, isa_cmake_options

SDIST_REQUIREMENT = f"llama-cpp-python=={LLAMA_CPP_VERSION}"
TARGET = "llama-server"
# The tree inside the sdist (after its top folder) that the build needs; nothing else of
# the 77 MB archive (the Python package, its wheels' metadata) is extracted.
_SOURCE_PREFIX = "vendor/llama.cpp/"
# Fixed options of the build, the measured recipe: no libcurl (the model is a
# local file), no tests or examples, the server. The build rpath $ORIGIN lets the binary
# find its shared libraries beside it once copied out of the build tree.
_BASE_OPTIONS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_SERVER=ON",
    "-DCMAKE_BUILD_RPATH=$ORIGIN",
)
# The PyPI packages that stand in for a missing system tool (llama.cpp needs cmake >= 3.14).
_TOOL_REQUIREMENTS = {"cmake": "cmake>=3.18,<5", "ninja": "ninja>=1.10"}
_STAMP_NAME = ".customllm-build.json"
_VERSION_TIMEOUT_S = 30


def cmake_options() -> tuple[str, ...]:
    """Every ``-D`` option of the configure step: the fixed ones, then this CPU's ISA."""
    return (*_BASE_OPTIONS, *isa_cmake_options())


def install_dir() -> Path:
    """``<cache>/llama-cpp/<version>``: ``bin/llama-server`` and its libraries."""
    return get_paths().root / "llama-cpp" / LLAMA_CPP_VERSION


def server_binary() -> Path:
    """The installed ``llama-server`` executable."""
    return install_dir() / "bin" / TARGET


def build_log() -> Path:
    """Where the cold build writes pip's, cmake's and the compiler's output."""
    return get_paths().run_dir / "llama-cpp-build.log"


def tools_venv() -> Path:
    """The small venv whose pip fetches the sdist (and the model), and cmake/ninja if needed."""
    return get_paths().root / "llama-cpp" / "build-venv"


def tools_python() -> Path:
    """That venv's interpreter, creating the venv if it has none."""
    make_venv(tools_venv())
    return tools_venv() / "bin" / "python"


def _wanted_stamp() -> dict[str, object]:
    return {"version": LLAMA_CPP_VERSION, "cmake_options": list(cmake_options())}


def is_installed() -> bool:
    """Whether the cache holds a ``llama-server`` built from this version with these options."""
    try:
        stamp = json.loads((install_dir() / _STAMP_NAME).read_text())
    except (OSError, ValueError):
        return False
    return stamp == _wanted_stamp() and os.access(server_binary(), os.X_OK)


def _tool(name: str, say: Callable[[str], None]) -> str:
    """The system's ``name`` (cmake or ninja), else the one pip installs into the build venv."""
    found = shutil.which(name)
    if found:
        return found
    python = tools_python()
    local = python.parent / name
    if not local.exists():
        say(f"llama-server: no {name} on PATH; installing {_TOOL_REQUIREMENTS[name]} from PyPI")
        cmd = [str(python), "-m", "pip", "install", _TOOL_REQUIREMENTS[name]]
        run_logged(cmd, build_log(), f"installing {name}")
    return str(local)


def _fetch_sdist(dest: Path) -> Path:
    """Download the pinned sdist (no wheel, no dependencies) into ``dest``."""
    cmd = [str(tools_python()), "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
    run_logged([*cmd, SDIST_REQUIREMENT, "-d", str(dest)], build_log(), "downloading the sdist")
    found = sorted(dest.glob("llama_cpp_python-*.tar.gz"))
    if not found:
        raise LocalServerError(f"pip download of {SDIST_REQUIREMENT} left no sdist in {dest}")
    return found[0]


def _extract_source(sdist: Path, dest: Path) -> Path:
    """Extract ``<top>/vendor/llama.cpp/`` of ``sdist`` into ``dest``; return that folder."""
    with tarfile.open(sdist) as tar:
        members = []
        for member in tar.getmembers():
            top, _, rest = member.name.partition("/")
            if rest.startswith(_SOURCE_PREFIX) and top.startswith("llama_cpp_python-"):
                members.append(member)
        if not members:
            raise LocalServerError(f"{sdist.name} has no {_SOURCE_PREFIX} folder to build")
        # The "data" filter (Python 3.11.4+) refuses absolute paths, links out of dest, &c.
        if hasattr(tarfile, "data_filter"):
            tar.extractall(dest, members=members, filter="data")
        else:  # pragma: no cover - Python 3.10 without the backported filter
            tar.extractall(dest, members=members)  # noqa: S202 - our pinned sdist
    top = members[0].name.partition("/")[0]
    return dest / top / _SOURCE_PREFIX.rstrip("/")


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _compile(source: Path, build: Path, say: Callable[[str], None]) -> None:
    """Configure and build the ``llama-server`` target of ``source`` in ``build``."""
    if not (shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")):
        raise LocalServerError(
            "building llama-server needs a C++ compiler and none is on PATH "
            "(Debian/Ubuntu: apt-get install g++)"
        )
    cmake, ninja = _tool("cmake", say), _tool("ninja", say)
    configure = [cmake, "-S", str(source), "-B", str(build), "-G", "Ninja"]
    configure += [f"-DCMAKE_MAKE_PROGRAM={ninja}", *cmake_options()]
    run_logged(configure, build_log(), "configuring llama.cpp (cmake)")
    jobs = str(_cores())
    say(f"llama-server: compiling with {jobs} jobs (log: {build_log()})")
    cmd = [cmake, "--build", str(build), "--target", TARGET, "-j", jobs]
    run_logged(cmd, build_log(), "compiling llama-server")


def _install_from(build: Path, staging: Path) -> None:
    """Copy the binary and every shared library beside it into ``staging/bin`` and check it."""
    built = build / "bin"
    (staging / "bin").mkdir(parents=True)
    for item in [built / TARGET, *built.glob("*.so*")]:
        # symlinks=True keeps libfoo.so -> libfoo.so.0 -> libfoo.so.0.x as links.
        if item.is_symlink():
            (staging / "bin" / item.name).symlink_to(os.readlink(item))
        else:
            shutil.copy2(item, staging / "bin" / item.name)
    binary = staging / "bin" / TARGET
    try:
        result = subprocess.run(
            [str(binary), "--version"],
            capture_output=True,
            text=True,
            check=False,
            timeout=_VERSION_TIMEOUT_S,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LocalServerError(f"the built {binary} does not run: {exc}") from exc
    if result.returncode != 0:
        raise LocalServerError(
            f"the built {binary} does not run (exit {result.returncode}): "
            f"{(result.stderr or result.stdout).strip()[-500:]}"
        )
    (staging / _STAMP_NAME).write_text(json.dumps(_wanted_stamp(), indent=2) + "\n")


def ensure_built(say: Callable[[str], None]) -> Path:
    """Build and install ``llama-server`` unless the cache has this very build.

    The caller holds the install lock (it also serialises this compile with
    llama-cpp-python's). A build with other options or of another version is replaced.

    Returns:
        The installed binary.

    Raises:
        LocalServerError: If a step fails; the message names the build log.

    """
    t0 = time.monotonic()
    if is_installed():
        say(f"llama-server: {server_binary()} built (checked in {time.monotonic() - t0:.2f} s)")
        return server_binary()
    target = install_dir()
    what = "options changed, rebuilding" if target.exists() else "building it"
    say(f"llama-server: {what} from {SDIST_REQUIREMENT}'s vendor/llama.cpp (~5 min on 2 cores)")
    target.parent.mkdir(parents=True, exist_ok=True)
    log = build_log()
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(f"# llama-server build, {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
    # Everything happens in a scratch folder beside the install; only a checked build is
    # renamed into place, so a failed or interrupted one never leaves a half install.
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as tmp:
        work = Path(tmp)
        try:
            source = _extract_source(_fetch_sdist(work / "sdist"), work / "src")
            _compile(source, work / "build", say)
            _install_from(work / "build", work / "install")
        except LocalServerError as exc:
            raise LocalServerError(f"{exc}\n(the whole build log: {log})") from None
        except OSError as exc:
            raise LocalServerError(
                f"building llama-server failed: {exc}\nBuild log {log}:\n{tail(log)}"
            ) from exc
        old = work / "old"
        if target.exists():
            # A running server keeps its open files; the old folder goes with the scratch.
            target.rename(old)
        (work / "install").rename(target)
    say(f"llama-server: built and installed in {time.monotonic() - t0:.0f} s ({target})")
    return server_binary()
