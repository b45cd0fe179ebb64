"""Constrained decoding with the logits kept on the model's device (our engine on torch/CuPy).

For an ``engine`` model on a GPU backend, :class:`DeviceDecoder` runs the batch decode loop
so that the logits never travel to the host: the bitmask (filled on the CPU by the
matchers) is applied on the device and the next ids are sampled there; only the ids come
back. The bitmask of step k+1 is filled while the forward pass of step k runs: the
forward call (``model.forward(..., on_device=True)``) only queues GPU work, so the CPU
walks the matchers in the meantime. The model is duck-typed (``start``, ``forward``,
``backend``, ``logit_width``, ``tokenizer.eos_token_ids``); ``engine`` is not imported.
Backends without device helpers (numpy) fall back to the host bitmask helpers.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConstrainedError
from ..masks.bitmask import allocate_token_bitmask, apply_token_bitmask

if TYPE_CHECKING:
    from ..matcher import Constraint, Matcher


@dataclass
class DecodeStats:
    """Where the time of a decode went (seconds), for benchmarks and tuning."""

    steps: int = 0
    tokens: int = 0
    mask_fill_s: float = 0.0
    total_s: float = 0.0
    per_step_mask_fill_s: list[float] = field(default_factory=list)


class DeviceDecoder:
    """Batched decode of ``prompts`` under per-row constraints, masking/sampling on device.

    ``constraints`` is one constraint for every row, one per row (``None`` = free), or
    ``None``. Greedy when ``temperature == 0``; otherwise softmax(logits / T) draws from
    ``generator`` (a device generator of the backend, e.g. ``torch.Generator``), after the
    optional top-k / top-p / min-p filters (device backends only). With ``ignore_eos`` free
    rows never stop on EOS (unconstrained throughput measurements).
    """

    def __init__(self, model: Any, prompts: Sequence[Sequence[int]],
                 constraints: Constraint | Sequence[Constraint | None] | None = None,
                 max_new_tokens: int = 128, temperature: float = 0.0,
                 generator: Any | None = None, ignore_eos: bool = False, *,
                 top_k: int = 0, top_p: float = 1.0, min_p: float = 0.0) -> None:
        if max_new_tokens < 1:
            raise ConstrainedError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        self.filters = {"top_k": int(top_k), "top_p": float(top_p), "min_p": float(min_p)}
        if (top_k or top_p < 1.0 or min_p > 0.0) and not hasattr(model.backend, "sample"):
            raise ConstrainedError(
                f"top-k/top-p/min-p need a backend that samples on the device (torch, cupy), not "
                f"{getattr(model.backend, 'name', type(model.backend).__name__)}; use constrained.generate"
            )
        batch = len(prompts)
        if constraints is None or not isinstance(constraints, Sequence):
            per_row: list[Constraint | None] = [constraints] * batch  # type: ignore[list-item]
        else:
            per_row = list(constraints)
            if len(per_row) != batch:
                raise ConstrainedError(f"{len(per_row)} constraints for {batch} prompts")
        self.model = model
        self.backend = model.backend
        self.temperature = float(temperature)
        self.generator = generator
        self.max_new_tokens = int(max_new_tokens)
        self.eos = np.asarray(sorted(model.tokenizer.eos_token_ids), dtype=np.int64)
        self.ignore_eos = ignore_eos
        self.matchers: list[Matcher | None] = [
            c.matcher(max_rollback=0) if c is not None else None for c in per_row
        ]
        self.outputs: list[list[int]] = [[] for _ in range(batch)]
        self.finished = np.zeros(batch, dtype=bool)
        self.stats = DecodeStats()
        self._bits = allocate_token_bitmask(batch, model.logit_width)
        self._constrained = any(m is not None for m in self.matchers)
        self._session = model.start([list(p) for p in prompts], max_new_tokens=max_new_tokens + 1)
        self._logits = self.backend.asarray(self._session.logits)
        self._fill()

    def _fill(self) -> None:
        """Fill the bitmask rows of live constrained rows (runs while the device computes)."""
        if not self._constrained:
            return
        t0 = time.perf_counter()
        for row, m in enumerate(self.matchers):
            if m is not None and not self.finished[row]:
                m.fill_bitmask(self._bits, row)
        spent = time.perf_counter() - t0
        self.stats.mask_fill_s += spent
        self.stats.per_step_mask_fill_s.append(spent)

    def _pick(self) -> np.ndarray:
        """Mask the current logits and choose one id per row (on the device when possible)."""
        be, logits = self.backend, self._logits
        if self._constrained:
            if hasattr(be, "apply_bitmask"):
                be.apply_bitmask(logits, self._bits)
            else:
                apply_token_bitmask(logits, self._bits)
        if hasattr(be, "sample"):
            return np.asarray(be.sample(logits, self.temperature, self.generator, **self.filters),
                              dtype=np.int64)
        host = np.asarray(logits)
        if self.temperature <= 0:
            return host.argmax(axis=-1)
        rng = self.generator if isinstance(self.generator, np.random.Generator) else np.random.default_rng()
        z = host / self.temperature
        z = z - z.max(axis=-1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=-1, keepdims=True)
        return np.array([rng.choice(p.shape[1], p=row) for row in p], dtype=np.int64)

    def step(self) -> np.ndarray:
        """Decode one token for every live row; returns the ids (-1 for finished rows)."""
        if self.finished.all():
            return np.full(len(self.outputs), -1, dtype=np.int64)
        t0 = time.perf_counter()
        ids = self._pick()
        ids[self.finished] = -1
        for row, token in enumerate(ids.tolist()):
            if token < 0:
                continue
            m = self.matchers[row]
            if m is not None:
                m.advance(token)
            # ignore_eos only applies to free rows: a constraint is finished by its EOS
            is_eos = token in self.eos and (m is not None or not self.ignore_eos)
            if not is_eos:
                self.outputs[row].append(token)
            if is_eos or len(self.outputs[row]) >= self.max_new_tokens:
                self.finished[row] = True
        self.stats.steps += 1
        self.stats.tokens += int((ids >= 0).sum())
        if not self.finished.all():
            counts = (~self.finished).astype(np.int64)
            feed = np.where(ids >= 0, ids, 0).reshape(-1, 1)
            kv = self._session.cache
            # queued on the device; the CPU fills the next bitmask meanwhile
            self._logits = self.model.forward(kv, feed, counts, on_device=True)
            kv.lengths += counts
            self._fill()
        self.stats.total_s += time.perf_counter() - t0
        return ids

    def run(self) -> list[list[int]]:
        """Decode until every row finished (EOS or ``max_new_tokens``); returns ids per row."""
        while not self.finished.all():
            self.step()
        sync = getattr(self.backend, "synchronize", None)
        if sync is not None:
            sync()
        return self.outputs
