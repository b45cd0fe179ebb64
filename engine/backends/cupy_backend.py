"""CuPy backend (CUDA): the same transformer with cupy arrays on one GPU.

Mirrors the numpy backend operation for operation (CuPy implements numpy's semantics on
the device), so results match it to float32 rounding. Weights are moved once by
:meth:`asarray`; the KV cache is allocated on the device with :meth:`zeros`; bitmask
masking and sampling run on the device. cupy is imported when the backend is built.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import BackendUnavailable
from .base import Array, Backend
from .xp_ops import gated_activation, grouped_attention


def _import_cupy() -> Any:
    """The cupy module with a usable CUDA device, or a clear BackendUnavailable."""
    try:
        import cupy
    except ImportError as exc:
        raise BackendUnavailable(
            "the cupy backend needs CuPy built for your CUDA: pip install 'constrained[cupy]'"
        ) from exc
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # cupy raises CUDARuntimeError / driver errors without a GPU
        raise BackendUnavailable(f"CuPy is installed but finds no CUDA device: {exc}") from exc
    if count < 1:
        raise BackendUnavailable("CuPy is installed but finds no CUDA device")
    return cupy


class CupyBackend(Backend):
    """cupy float32 arrays on CUDA device ``device`` ("cuda" or "cuda:N")."""

    name = "cupy"

    def __init__(self, device: str = "cuda") -> None:
        kind, _, num = device.partition(":")
        if kind != "cuda":
            raise BackendUnavailable(f"the cupy backend runs on CUDA devices only, not {device!r}")
        cp = _import_cupy()
        self.cp = cp
        self.device = cp.cuda.Device(int(num) if num else 0)
        self.device.use()
        self._shifts = cp.arange(32, dtype=cp.int32)

    def asarray(self, x: np.ndarray) -> Array:
        with self.device:
            return self.cp.asarray(np.ascontiguousarray(x, dtype=np.float32))

    def to_numpy(self, x: Array) -> np.ndarray:
        if isinstance(x, np.ndarray):
            return x
        return self.cp.asnumpy(x)

    def zeros(self, shape: tuple[int, ...]) -> Array:
        with self.device:
            return self.cp.zeros(shape, dtype=self.cp.float32)

    def index(self, x: Array) -> Array:
        with self.device:
            return self.cp.asarray(x, dtype=self.cp.int64)

    def linear(self, x: Array, w_t: Array, bias: Array | None = None) -> Array:
        y = x @ w_t
        if bias is not None:
            y += bias
        return y

    def rms_norm(self, x: Array, weight: Array, eps: float) -> Array:
        cp = self.cp
        ms = (x * x).mean(axis=-1, keepdims=True, dtype=cp.float32)
        return x * (1.0 / cp.sqrt(ms + cp.float32(eps))) * weight

    def rope(self, x: Array, cos: Array, sin: Array) -> Array:
        half = x.shape[-1] // 2
        c = cos[:, :, None, :]
        s = sin[:, :, None, :]
        x1 = x[..., :half]
        x2 = x[..., half:]
        return self.cp.concatenate((x1 * c - x2 * s, x2 * c + x1 * s), axis=-1)

    def attention(self, q: Array, k: Array, v: Array, bias: Array) -> Array:
        return grouped_attention(self.cp, q, k, v, bias)

    def act_mul(self, gate_up: Array, activation: str) -> Array:
        return gated_activation(self.cp, gate_up, activation)

    def embed(self, table: Array, ids: Array) -> Array:
        return table[self.index(ids)]

    def lm_head(self, h: Array, table: Array) -> Array:
        return h @ table.T

    def write_cache(self, cache: Array, rows: Array, positions: Array, values: Array) -> None:
        cache[self.index(rows), :, self.index(positions)] = values

    def apply_bitmask(self, logits: Array, bitmask: np.ndarray | Array) -> Array:
        """Set logits of tokens whose bit is 0 to -inf, in place (ids past the mask too)."""
        cp = self.cp
        bits = cp.asarray(bitmask, dtype=cp.int32).reshape(logits.shape[0], -1)
        allowed = ((bits[:, :, None] >> self._shifts) & 1).astype(cp.bool_).reshape(bits.shape[0], -1)
        width = logits.shape[-1]
        covered = min(width, allowed.shape[1])
        view = logits[:, :covered]
        view[~allowed[:, :covered]] = -cp.inf
        if width > covered:
            logits[:, covered:] = -cp.inf
        return logits

    def filter_logits(self, logits: Array, temperature: float, top_k: int = 0, top_p: float = 1.0,
                      min_p: float = 0.0) -> Array:
        """Temperature-scaled logits with top-k / top-p / min-p filtered entries at -inf (new array).

        Same rules as ``engine.sampling.filter_logits``, computed on the device.
        """
        cp = self.cp
        x = logits / cp.float32(temperature) if temperature > 0 else logits.copy()
        W = x.shape[-1]
        if top_k and top_k < W:
            kth = cp.partition(x, W - top_k, axis=-1)[:, W - top_k][:, None]
            x[x < kth] = -cp.inf
        if top_p < 1.0:
            order = cp.argsort(-x, axis=-1)
            sorted_x = cp.take_along_axis(x, order, axis=-1)
            e = cp.exp(sorted_x - sorted_x[:, :1])
            probs = e / e.sum(axis=-1, keepdims=True)
            remove_sorted = (cp.cumsum(probs, axis=-1) - probs) >= cp.float32(top_p)
            remove = cp.empty_like(remove_sorted)
            remove[cp.arange(x.shape[0])[:, None], order] = remove_sorted  # undo the sort
            x[remove] = -cp.inf
        if min_p > 0.0:
            e = cp.exp(x - x.max(axis=-1, keepdims=True))
            probs = e / e.sum(axis=-1, keepdims=True)
            x[probs < probs.max(axis=-1, keepdims=True) * cp.float32(min_p)] = -cp.inf
        return x

    def sample(self, logits: Array, temperature: float, generator: Any | None = None, *,
               top_k: int = 0, top_p: float = 1.0, min_p: float = 0.0) -> np.ndarray:
        """One id per row: argmax at ``temperature == 0``, else a Gumbel-max draw on device
        from the filtered softmax.

        ``generator`` is a ``cupy.random.Generator``-like object with ``random(shape)``
        (default: CuPy's global generator).
        """
        cp = self.cp
        if temperature <= 0 or top_k == 1:
            return cp.asnumpy(logits.argmax(axis=-1))
        x = self.filter_logits(logits, temperature, top_k, top_p, min_p)
        rand = generator.random if generator is not None else cp.random.random
        u = cp.maximum(rand(x.shape, dtype=cp.float32), cp.float32(1e-20))
        gumbel = -cp.log(-cp.log(u))
        return cp.asnumpy((x + gumbel).argmax(axis=-1))

    def synchronize(self) -> None:
        """Wait for queued device work (for timing)."""
        self.cp.cuda.Stream.null.synchronize()
