"""Integrations and engine backends import their frameworks lazily.

Importing the adapters (or `engine`) must not import torch, transformers, llama_cpp or
cupy: users without them must be able to use everything else, and imports stay cheap.
Checked in a fresh interpreter so other tests' imports cannot hide a regression.
"""
from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "transformers", "llama_cpp", "cupy")


def test_adapters_do_not_import_frameworks() -> None:
    code = (
        "import sys\n"
        "import constrained.integrations.transformers, constrained.integrations.llama_cpp\n"
        "import constrained.integrations.serving, constrained.integrations.device_decode\n"
        "import engine, engine.backends, engine.backends.torch_backend, engine.backends.cupy_backend\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
