"""Shared pieces of the GPU tests: tiny random models of every architecture, and the CUDA check."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.engine.tiny_models import TinySpec, write_tiny_gguf

TINY_SPECS = {
    "llama": TinySpec(arch="llama", seed=1),
    "qwen2": TinySpec(arch="qwen2", qkv_bias=True, tie=False, rope_theta=1e6, seed=2),
    "gemma3": TinySpec(arch="gemma3", n_layers=6, n_heads=4, n_kv_heads=1, head_dim=16,
                       rope_theta=1e6, sliding_window=4, seed=3),
}
TINY_IDS = [5, 17, 260, 99, 3, 42, 42, 7, 200, 11, 64, 1]


@pytest.fixture(scope="session", params=sorted(TINY_SPECS))
def tiny_gguf(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight GGUF of each architecture (llama, qwen2, gemma3)."""
    spec = TINY_SPECS[request.param]
    path = tmp_path_factory.mktemp("tiny-gpu") / f"{spec.arch}.gguf"
    write_tiny_gguf(path, spec)
    return path


def cuda_reason() -> str | None:
    """None when torch sees a CUDA device, else why the CUDA tests cannot run here."""
    try:
        import torch
    except ImportError:
        return "torch is not installed (pip install 'constrained[torch]' with a CUDA build)"
    if not torch.cuda.is_available():
        return f"no CUDA device visible to torch {torch.__version__} (CPU-only build or no GPU)"
    return None


def cupy_reason() -> str | None:
    """None when CuPy can use a CUDA device, else why the CuPy tests cannot run here."""
    try:
        import cupy
    except ImportError:
        return "CuPy is not installed (pip install 'constrained[cupy]')"
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return "CuPy finds no CUDA device"
    except Exception as exc:  # noqa: BLE001 - CUDA runtime errors vary by driver
        return f"CuPy cannot reach a CUDA device: {exc}"
    return None
