"""Sampling one token from logits under an allowed-token mask (greedy, temperature, top-k, top-p).

Works on one row of float32 logits; the caller applies the constraint's bitmask first (masked
entries are -inf). Randomness comes only from the numpy ``Generator`` passed in, so a seed makes
results reproducible and a sequence's draws do not depend on the other sequences of a batch.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import SamplingError


@dataclass(frozen=True)
class SamplingParams:
    """How to pick a token: ``temperature == 0`` is greedy (argmax, no randomness)."""

    temperature: float = 0.0
    top_k: int = 0        # 0 = off
    top_p: float = 1.0    # 1.0 = off

    def __post_init__(self) -> None:
        if not np.isfinite(self.temperature) or self.temperature < 0:
            raise SamplingError(f"temperature must be >= 0, got {self.temperature}")
        if self.top_k < 0:
            raise SamplingError(f"top_k must be >= 0, got {self.top_k}")
        if not 0.0 < self.top_p <= 1.0:
            raise SamplingError(f"top_p must be in (0, 1], got {self.top_p}")

    @property
    def greedy(self) -> bool:
        """True when sampling is deterministic argmax."""
        return self.temperature == 0.0 or self.top_k == 1


def sample_token(logits: np.ndarray, params: SamplingParams, rng: np.random.Generator) -> int:
    """Pick one token id from a 1-D row of (already masked) logits.

    Masked tokens carry ``-inf`` and are never chosen. Greedy ties go to the lowest id.
    """
    allowed = np.flatnonzero(np.isfinite(logits))
    if allowed.size == 0:
        raise SamplingError("no token is allowed at this step (every logit is masked)")
    values = logits[allowed].astype(np.float32, copy=False)
    if params.greedy or allowed.size == 1:
        return int(allowed[int(np.argmax(values))])
    scaled = values / np.float32(params.temperature)
    if 0 < params.top_k < scaled.size:
        keep = np.argpartition(-scaled, params.top_k - 1)[: params.top_k]
        allowed, scaled = allowed[keep], scaled[keep]
    order = np.argsort(-scaled, kind="stable")
    allowed, scaled = allowed[order], scaled[order]
    probs = np.exp((scaled - scaled[0]).astype(np.float64))
    probs /= probs.sum()
    if params.top_p < 1.0:
        cumulative = np.cumsum(probs)
        # smallest prefix whose mass reaches top_p (always at least one token)
        cut = int(np.searchsorted(cumulative, params.top_p, side="left")) + 1
        allowed, probs = allowed[:cut], probs[:cut]
        probs = probs / probs.sum()
    cumulative = np.cumsum(probs)
    draw = rng.random() * cumulative[-1]
    index = min(int(np.searchsorted(cumulative, draw, side="right")), allowed.size - 1)
    return int(allowed[index])
