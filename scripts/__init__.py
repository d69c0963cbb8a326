"""Local LLM servers for the demo, the tests and the benchmark: standard library only.

The four entry points are run as files, before the project (or anything else) is
installed::

    python scripts/local_server.py start             # llama.cpp's C++ llama-server (default)
    python scripts/llama_cpp_python_server.py start  # llama-cpp-python's server (matrix)
    python scripts/vllm_server.py start              # vLLM (CPU) for the real-server matrix
    python scripts/litellm_server.py start           # the LiteLLM proxy in front of llama-server

Run as a file, each one puts the repository root on ``sys.path`` first and then imports
the rest of this package as ``scripts.*``; Python code
(pytest fixtures, the benchmark) imports the same modules as ``scripts.local_server`` &c.
from the repository root. Modules:

- ``_cache``: the user-cache layout, file locks, logged commands, venvs and pip installs;
- ``_procs``: pid files and process groups (spawn, health polling, stop);
- ``_server``: the one start/reuse/stop/status flow and command line all four share;
- ``_llama``: building llama-cpp-python, the instruction-set options of every llama.cpp
  build, and fetching the SmolLM2 GGUF;
- ``_llama_cpp``: building the C++ ``llama-server`` from the pinned sdist's llama.cpp.
"""
