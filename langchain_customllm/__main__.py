"""``python -m langchain_customllm probe|profiles|serve ...``: the ``customllm`` command."""

from __future__ import annotations

import sys

from langchain_customllm.cli import main

if __name__ == "__main__":
    sys.exit(main())
