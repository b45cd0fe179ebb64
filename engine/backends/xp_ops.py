"""Operations written once for any numpy-compatible array module (numpy, cupy).

The numpy and CuPy backends share these bodies verbatim: ``xp`` is the array module.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .base import Array

_GELU_C = float(np.sqrt(2.0 / np.pi))


def grouped_attention(xp: Any, q: Array, k: Array, v: Array, bias: Array) -> Array:
    """Softmax attention with grouped KV heads: q [B,T,H,hd], k/v [B,K,L,hd] -> [B,T,H*hd].

    The G = H/K query heads sharing a KV head are stacked into one matmul per KV head.
    """
    B, T, H, hd = q.shape
    K, L = k.shape[1], k.shape[2]
    G = H // K
    qg = xp.ascontiguousarray(q.reshape(B, T, K, G, hd).transpose(0, 2, 3, 1, 4)).reshape(B, K, G * T, hd)
    s = (qg @ k.swapaxes(-1, -2)).reshape(B, K, G, T, L)
    s += bias[:, None, None, :, :]
    s -= s.max(axis=-1, keepdims=True)
    xp.exp(s, out=s)
    s /= s.sum(axis=-1, keepdims=True)
    o = s.reshape(B, K, G * T, L) @ v  # [B, K, G*T, hd]
    return o.reshape(B, K, G, T, hd).transpose(0, 3, 1, 2, 4).reshape(B, T, H * hd)


def gated_activation(xp: Any, gate_up: Array, activation: str) -> Array:
    """act(gate) * up for a fused [.., 2*ff] gate/up projection (silu, or tanh-gelu for gemma)."""
    ff = gate_up.shape[-1] // 2
    g = gate_up[..., :ff]
    u = gate_up[..., ff:]
    if activation == "silu":
        return g / (1.0 + xp.exp(-g)) * u
    inner = xp.tanh(_GELU_C * (g + 0.044715 * g * g * g))
    return 0.5 * g * (1.0 + inner) * u
