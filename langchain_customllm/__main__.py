"""``python -m langchain_customllm probe ...``: the ``customllm`` command."""

from __future__ import annotations

import sys

from langchain_customllm.probe import main

if __name__ == "__main__":
    sys.exit(main())
