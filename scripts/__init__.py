"""Local LLM servers for the demo, the tests and the benchmark: standard library only.

The three entry points are run as files, before the project (or anything else) is
installed::

    python scripts/local_server.py start      # llama.cpp + SmolLM2 (the default server)
    python scripts/vllm_server.py start       # vLLM (CPU) for the real-server matrix
    python scripts/litellm_server.py start    # the LiteLLM proxy in front of llama.cpp

Run as a file, each one puts the repository root on ``sys.path`` first and then imports
the rest of this package as ``scripts.*``; Python code
(pytest fixtures, the benchmark) imports the same modules as ``scripts.local_server`` &c.
from the repository root. Modules:

- ``_cache``: the user-cache layout, file locks, logged commands, venvs and pip installs;
- ``_procs``: pid files and process groups (spawn, health polling, stop);
- ``_server``: the one start/reuse/stop/status flow and command line all three share;
- ``_llama``: building llama-cpp-python and fetching the SmolLM2 GGUF.
"""
