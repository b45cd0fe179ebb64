"""Array backends behind one small interface; the transformer only calls `Backend` methods.

`numpy` (CPU, default), `torch` (CPU/CUDA) and `cupy` (CUDA) implement the same methods.
"""
from __future__ import annotations

from ..errors import BackendUnavailable
from .base import Backend
from .numpy_backend import NumpyBackend

BACKENDS = ("numpy", "torch", "cupy")


def get_backend(name: str = "numpy", device: str | None = None) -> Backend:
    """The backend called `name` on `device` (numpy: "cpu"; torch: "cpu"/"cuda[:N]"; cupy: "cuda[:N]").

    torch and CuPy are imported only when asked for; a missing library or device raises
    BackendUnavailable saying what to install or which device is missing.
    """
    if name == "numpy":
        if device not in (None, "cpu"):
            raise BackendUnavailable(
                f"the numpy backend runs on the CPU only (device {device!r}); use backend='torch' or 'cupy'"
            )
        return NumpyBackend()
    if name == "torch":
        from .torch_backend import TorchBackend

        return TorchBackend(device or "cpu")
    if name == "cupy":
        from .cupy_backend import CupyBackend

        return CupyBackend(device or "cuda")
    raise BackendUnavailable(f"backend {name!r} is not available (available: {', '.join(BACKENDS)})")


__all__ = ["BACKENDS", "Backend", "NumpyBackend", "get_backend"]
