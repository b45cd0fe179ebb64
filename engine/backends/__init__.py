"""Array backends behind one small interface; the transformer only calls `Backend` methods.

`numpy` (CPU, default) is implemented; torch/CuPy backends implement the same methods.
"""
from __future__ import annotations

from ..errors import BackendUnavailable
from .base import Backend
from .numpy_backend import NumpyBackend


def get_backend(name: str = "numpy") -> Backend:
    """The backend called `name` (only "numpy" is implemented so far)."""
    if name == "numpy":
        return NumpyBackend()
    raise BackendUnavailable(f"backend {name!r} is not available (available: numpy)")


__all__ = ["Backend", "NumpyBackend", "get_backend"]
