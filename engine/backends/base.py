"""The operations the transformer needs from an array library (float32 everywhere)."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

Array = Any  # a backend array (numpy.ndarray, torch.Tensor, cupy.ndarray)


class Backend(ABC):
    """Array operations, so the model code stays free of one library's idioms."""

    name: str

    @abstractmethod
    def asarray(self, x: np.ndarray) -> Array:
        """Move a float32 numpy array to the backend (weights, cos/sin tables)."""

    @abstractmethod
    def to_numpy(self, x: Array) -> np.ndarray:
        """Bring a backend array back as a numpy array."""

    @abstractmethod
    def zeros(self, shape: tuple[int, ...]) -> Array:
        """float32 zeros."""

    @abstractmethod
    def index(self, x: Array) -> Array:
        """An integer index array on the backend (token ids, positions)."""

    @abstractmethod
    def linear(self, x: Array, w_t: Array, bias: Array | None = None) -> Array:
        """x @ w_t (+ bias); `w_t` is stored as [in, out]."""

    @abstractmethod
    def rms_norm(self, x: Array, weight: Array, eps: float) -> Array:
        """RMSNorm over the last axis, computed in float32."""

    @abstractmethod
    def rope(self, x: Array, cos: Array, sin: Array) -> Array:
        """Rotate halves: x [B, T, heads, hd]; cos/sin [B, T, hd/2]."""

    @abstractmethod
    def attention(self, q: Array, k: Array, v: Array, bias: Array) -> Array:
        """Grouped-query attention: q [B, T, H, hd], k/v [B, K, L, hd], bias [B, T, L] -> [B, T, H*hd]."""

    @abstractmethod
    def act_mul(self, gate_up: Array, activation: str) -> Array:
        """act(gate) * up for gate_up = concat([gate, up], -1)."""

    @abstractmethod
    def embed(self, table: Array, ids: Array) -> Array:
        """Rows of `table` for integer `ids` (any shape)."""

    @abstractmethod
    def lm_head(self, h: Array, table: Array) -> Array:
        """h [N, d] times table [V, d] transposed -> [N, V]."""

    @abstractmethod
    def write_cache(self, cache: Array, rows: Array, positions: Array, values: Array) -> None:
        """cache[rows, :, positions] = values; cache [B, K, cap, hd], values [B, T, K, hd]."""
