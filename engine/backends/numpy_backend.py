"""The default CPU backend: numpy + its BLAS, float32 end to end."""
from __future__ import annotations

import numpy as np

from .base import Array, Backend

_GELU_C = float(np.sqrt(2.0 / np.pi))


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
        B, T, H, hd = q.shape
        K, L = k.shape[1], k.shape[2]
        G = H // K
        qg = np.ascontiguousarray(q.reshape(B, T, K, G, hd).transpose(0, 2, 3, 1, 4)).reshape(B, K, G * T, hd)
        s = (qg @ k.swapaxes(-1, -2)).reshape(B, K, G, T, L)
        s += bias[:, None, None, :, :]
        s -= s.max(axis=-1, keepdims=True)
        np.exp(s, out=s)
        s /= s.sum(axis=-1, keepdims=True)
        o = s.reshape(B, K, G * T, L) @ v  # [B, K, G*T, hd]
        return o.reshape(B, K, G, T, hd).transpose(0, 3, 1, 2, 4).reshape(B, T, H * hd)

    def act_mul(self, gate_up: Array, activation: str) -> Array:
        ff = gate_up.shape[-1] // 2
        g = gate_up[..., :ff]
        u = gate_up[..., ff:]
        if activation == "silu":
            return g / (1.0 + np.exp(-g)) * u
        # gelu, tanh approximation (gemma)
        inner = np.tanh(_GELU_C * (g + 0.044715 * g * g * g))
        return 0.5 * g * (1.0 + inner) * u

    def embed(self, table: Array, ids: Array) -> Array:
        return table[ids]

    def lm_head(self, h: Array, table: Array) -> Array:
        # table @ h.T streams the [V, d] table once (faster than h @ table.T for small N)
        return np.ascontiguousarray((table @ h.T).T)

    def write_cache(self, cache: Array, rows: Array, positions: Array, values: Array) -> None:
        cache[rows, :, positions] = values
