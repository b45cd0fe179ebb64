"""Next-token selection: greedy, temperature, top-k, top-p, min-p, repetition penalty; seeded.

All filters are vectorised over a batch of logits [B, W]. Order (as in transformers):
repetition penalty -> temperature -> top-k -> top-p -> min-p -> sample.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .errors import EngineError


class SamplingError(EngineError, ValueError):
    """Invalid sampling parameters or logits with no finite entry."""


@dataclass(frozen=True)
class SamplingParams:
    """How to pick the next token; temperature 0 means greedy (argmax)."""

    temperature: float = 0.0
    top_k: int = 0  # 0 = off
    top_p: float = 1.0
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise SamplingError(f"temperature must be >= 0, got {self.temperature}")
        if self.top_k < 0:
            raise SamplingError(f"top_k must be >= 0, got {self.top_k}")
        if not 0.0 < self.top_p <= 1.0:
            raise SamplingError(f"top_p must be in (0, 1], got {self.top_p}")
        if not 0.0 <= self.min_p <= 1.0:
            raise SamplingError(f"min_p must be in [0, 1], got {self.min_p}")
        if self.repetition_penalty <= 0:
            raise SamplingError(f"repetition_penalty must be > 0, got {self.repetition_penalty}")

    @property
    def greedy(self) -> bool:
        """Whether sampling reduces to argmax."""
        return self.temperature == 0.0 or self.top_k == 1

    def rng(self) -> np.random.Generator:
        """A fresh numpy Generator from `seed` (reproducible when seed is set)."""
        return np.random.default_rng(self.seed)


def apply_repetition_penalty(logits: np.ndarray, history: Sequence[Sequence[int]], penalty: float) -> np.ndarray:
    """CTRL-style penalty on tokens already present: positive logits / p, negative * p."""
    if penalty == 1.0:
        return logits
    out = logits.copy()
    p = np.float32(penalty)
    for b, ids in enumerate(history):
        if len(ids) == 0:
            continue
        idx = np.unique(np.asarray(ids, dtype=np.int64))
        idx = idx[idx < out.shape[1]]
        vals = out[b, idx]
        out[b, idx] = np.where(vals > 0, vals / p, vals * p)
    return out


def filter_logits(logits: np.ndarray, params: SamplingParams) -> np.ndarray:
    """Temperature-scaled logits with filtered entries set to -inf ([B, W] float32)."""
    x = logits.astype(np.float32, copy=True)
    if params.temperature > 0:
        x /= np.float32(params.temperature)
    W = x.shape[1]
    if params.top_k and params.top_k < W:
        kth = np.partition(x, W - params.top_k, axis=1)[:, W - params.top_k][:, None]
        x[x < kth] = -np.inf
    if params.top_p < 1.0:
        order = np.argsort(-x, axis=1, kind="stable")
        sorted_x = np.take_along_axis(x, order, axis=1)
        probs = _softmax(sorted_x)
        cum = np.cumsum(probs, axis=1)
        # keep the smallest prefix whose mass reaches top_p (always at least one token)
        remove_sorted = (cum - probs) >= np.float32(params.top_p)
        remove = np.zeros_like(remove_sorted)
        np.put_along_axis(remove, order, remove_sorted, axis=1)
        x[remove] = -np.inf
    if params.min_p > 0.0:
        probs = _softmax(x)
        threshold = probs.max(axis=1, keepdims=True) * np.float32(params.min_p)
        x[probs < threshold] = -np.inf
    return x


def _softmax(x: np.ndarray) -> np.ndarray:
    m = np.max(x, axis=1, keepdims=True)
    e = np.exp(x - m)
    return e / e.sum(axis=1, keepdims=True)


def probabilities(logits: np.ndarray, params: SamplingParams) -> np.ndarray:
    """The distribution `sample` draws from ([B, W], rows sum to 1)."""
    return _softmax(filter_logits(np.atleast_2d(logits), params))


def sample(
    logits: np.ndarray,
    params: SamplingParams,
    rng: np.random.Generator | None = None,
    history: Sequence[Sequence[int]] | None = None,
) -> np.ndarray:
    """Pick one token per row of `logits` ([B, W] or [W]); returns int64 [B].

    `history` (token ids per row) feeds the repetition penalty; `rng` makes draws reproducible.
    """
    x = np.atleast_2d(np.asarray(logits, dtype=np.float32))
    if not np.isfinite(x).any(axis=1).all():
        raise SamplingError("a row of logits has no finite entry (everything masked)")
    if history is not None:
        x = apply_repetition_penalty(x, history, params.repetition_penalty)
    if params.greedy:
        return np.argmax(x, axis=1)
    probs = probabilities(x, params)
    gen = rng if rng is not None else params.rng()
    u = gen.random((x.shape[0], 1))
    cdf = np.cumsum(probs.astype(np.float64), axis=1)
    cdf /= cdf[:, -1:]
    picks = (cdf < u).sum(axis=1)
    return np.minimum(picks, x.shape[1] - 1).astype(np.int64)
