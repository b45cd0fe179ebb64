"""The default CPU backend: numpy + its BLAS, float32 end to end."""
from __future__ import annotations

import numpy as np

from .base import Array, Backend
from .xp_ops import gated_activation, grouped_attention


class NumpyBackend(Backend):
    """numpy arrays; every op keeps float32 (a float64 operand would disable sgemm)."""

    name = "numpy"

    def asarray(self, x: np.ndarray) -> Array:
        return np.ascontiguousarray(x, dtype=np.float32)

    def to_numpy(self, x: Array) -> np.ndarray:
        return np.asarray(x)

    def zeros(self, shape: tuple[int, ...]) -> Array:
        return np.zeros(shape, dtype=np.float32)

    def index(self, x: Array) -> Array:
        return np.asarray(x, dtype=np.int64)

    def linear(self, x: Array, w_t: Array, bias: Array | None = None) -> Array:
        # one 2-D sgemm over all rows (a 3-D matmul would loop gemv per batch row,
        # re-reading the weights B times)
        y = (x.reshape(-1, x.shape[-1]) @ w_t).reshape(*x.shape[:-1], w_t.shape[-1])
        if bias is not None:
            y += bias
        return y

    def rms_norm(self, x: Array, weight: Array, eps: float) -> Array:
        ms = np.einsum("...i,...i->...", x, x)[..., None]
        ms *= np.float32(1.0 / x.shape[-1])
        ms += np.float32(eps)
        return x * (1.0 / np.sqrt(ms)) * weight

    def rope(self, x: Array, cos: Array, sin: Array) -> Array:
        half = x.shape[-1] // 2
        c = cos[:, :, None, :]
        s = sin[:, :, None, :]
        x1 = x[..., :half]
        x2 = x[..., half:]
        out = np.empty_like(x)
        out[..., :half] = x1 * c - x2 * s
        out[..., half:] = x2 * c + x1 * s
        return out

    def attention(self, q: Array, k: Array, v: Array, bias: Array) -> Array:
        return grouped_attention(np, q, k, v, bias)

    def act_mul(self, gate_up: Array, activation: str) -> Array:
        return gated_activation(np, gate_up, activation)

    def embed(self, table: Array, ids: Array) -> Array:
        return table[ids]

    def lm_head(self, h: Array, table: Array) -> Array:
        # table @ h.T streams the [V, d] table once (faster than h @ table.T for small N)
        return np.ascontiguousarray((table @ h.T).T)

    def write_cache(self, cache: Array, rows: Array, positions: Array, values: Array) -> None:
        cache[rows, :, positions] = values
