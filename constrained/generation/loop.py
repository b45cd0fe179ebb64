"""The batched decoding loop: one forward pass per step for the whole batch, one matcher per row.

Per step and per live row: mask the row's logits with its constraint's bitmask, sample a token,
advance the matcher, append any jump-forward tokens, and compute the next bitmask *before* the
next forward pass (so a row whose constraint now allows only EOS finishes without one more pass).
Each row feeds one token, or a chunk (sampled token + forced tokens) in the same pass.
The model is driven only through the LM protocol (duck typing; see docs/engine.md).
"""
from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import SamplingError
from .decoding import IncrementalText
from .jump import forced_tokens
from .lm import LMAdapter
from .results import GenerationStats
from .sampling import SamplingParams, sample_token


@dataclass
class RowState:
    """Mutable state of one sequence while the batch decodes."""

    matcher: Any | None
    rng: np.random.Generator
    prompt_len: int
    token_ids: list[int] = field(default_factory=list)
    text: IncrementalText = field(default_factory=IncrementalText)
    stats: GenerationStats = field(default_factory=GenerationStats)
    done: bool = False
    finish_reason: str = ""
    stop_cut: int | None = None      # character offset where a stop string starts

    def accepted(self) -> bool:
        """True when the output so far satisfies the constraint (free text: always)."""
        if self.matcher is None:
            return True
        return bool(self.matcher.is_terminated() or self.matcher.is_accepting())


@dataclass
class BatchConfig:
    """Decoding settings shared by every row of a batch."""

    sampling: SamplingParams
    max_tokens: int
    stop: tuple[str, ...] = ()
    jump_forward: bool = True


class BatchRun:
    """Decode a batch; iterate :meth:`steps` for per-row text pieces, then read :attr:`rows`."""

    def __init__(
        self,
        lm: LMAdapter,
        prompts: Sequence[Sequence[int]],
        matchers: Sequence[Any | None],
        rngs: Sequence[np.random.Generator],
        config: BatchConfig,
    ) -> None:
        self.lm = lm
        self.config = config
        self.prompts = [list(p) for p in prompts]
        self.rows = [
            RowState(matcher=m, rng=r, prompt_len=len(p))
            for p, m, r in zip(self.prompts, matchers, rngs)
        ]
        self.bits = lm.allocate_bitmask(len(self.rows))
        self._stop_hold = max((len(s) for s in config.stop), default=0)

    # ------------------------------------------------------------------ row helpers
    def _push(self, row: RowState, ids: Sequence[int]) -> str:
        """Append generated tokens to a row's output; returns the newly completed text."""
        row.token_ids.extend(ids)
        return row.text.push(b"".join(self.lm.token_bytes[t] for t in ids))

    def _check_stop(self, row: RowState, new_text: str) -> bool:
        """Finish the row when a stop string appears in its text (cut before it)."""
        if not self.config.stop or not new_text:
            return False
        text = row.text.text
        window_start = max(0, len(text) - len(new_text) - self._stop_hold)
        hits = [i for s in self.config.stop if (i := text.find(s, window_start)) >= 0]
        if not hits:
            return False
        row.stop_cut = min(hits)
        self._finish(row, "stop")
        return True

    def _finish(self, row: RowState, reason: str) -> None:
        row.done = True
        row.finish_reason = reason

    def _jump(self, row: RowState) -> list[int]:
        """Advance the row through the constraint's forced tokens (jump-forward)."""
        if row.matcher is None or not self.config.jump_forward:
            return []
        budget = self.config.max_tokens - len(row.token_ids)
        if budget <= 0:
            return []
        ids = forced_tokens(row.matcher, self.lm.tokenizer, self.lm.token_bytes)[:budget]
        for tid in ids:
            row.matcher.advance(tid)
        row.stats.forced_tokens += len(ids)
        return ids

    def _prepare_mask(self, index: int, row: RowState) -> None:
        """Fill the row's bitmask for the next step; finish it if only EOS remains allowed."""
        if row.matcher is None:
            self.bits[index] = self.lm.free_bitmask
            return
        if row.matcher.is_terminated():
            self._finish(row, "eos")
            return
        self.bits[index] = 0
        row.matcher.fill_bitmask(self.bits, index)
        only_eos = not np.any(self.bits[index] & ~self.lm.eos_bitmask)
        if only_eos and np.any(self.bits[index]):
            self._finish(row, "accepted")

    def _after_tokens(self, index: int, row: RowState, new_text: str) -> None:
        """Common bookkeeping after a row received tokens: stop strings, budget, next mask."""
        if self._check_stop(row, new_text):
            return
        self._prepare_mask(index, row)
        if not row.done and len(row.token_ids) >= self.config.max_tokens:
            self._finish(row, "length")

    # ------------------------------------------------------------------ main loop
    def steps(self) -> Iterator[list[str]]:
        """Run the batch; yields, after every forward pass, the new text of each row."""
        t_begin = time.perf_counter()
        model_s = 0.0
        pieces = [""] * len(self.rows)
        start_prompts: list[list[int]] = []
        for i, row in enumerate(self.rows):
            forced = self._jump(row)
            pieces[i] = self._push(row, forced) if forced else ""
            row.stats.passes_saved += len(forced)
            start_prompts.append(self.prompts[i] + forced)
            if self.config.max_tokens <= 0:
                self._finish(row, "length")
            else:
                self._after_tokens(i, row, pieces[i])
        if any(pieces):
            yield pieces
        if all(row.done for row in self.rows):
            self._close(t_begin, model_s)
            return
        t0 = time.perf_counter()
        logits = self.lm.start(start_prompts, max_new_tokens=self.config.max_tokens + 1)
        model_s += time.perf_counter() - t0
        for row in self.rows:
            row.stats.forward_passes += 1
        while True:
            live = [i for i, row in enumerate(self.rows) if not row.done]
            if not live:
                break
            masked = self.lm.apply_bitmask(logits, self.bits, live)
            feeds: list[list[int] | None] = [None] * len(self.rows)
            pieces = [""] * len(self.rows)
            for i in live:
                row = self.rows[i]
                try:
                    tid = sample_token(masked[i], self.config.sampling, row.rng)
                except SamplingError:
                    raise SamplingError(
                        f"sequence {i}: no token allowed after {len(row.token_ids)} tokens "
                        "(the constraint and the model's vocabulary cannot continue)"
                    ) from None
                if tid in self.lm.eos_ids:
                    if row.matcher is not None:
                        row.matcher.advance(tid)
                    self._finish(row, "eos")
                    continue
                if row.matcher is not None:
                    row.matcher.advance(tid)
                new = self._push(row, [tid])
                feed = [tid]
                if not self._check_stop(row, new) and len(row.token_ids) < self.config.max_tokens:
                    forced = self._jump(row)
                    if forced:
                        new += self._push(row, forced)
                        feed += forced
                        row.stats.passes_saved += len(forced)
                        self._after_tokens(i, row, new)
                    else:
                        self._prepare_mask(i, row)
                        if not row.done and len(row.token_ids) >= self.config.max_tokens:
                            self._finish(row, "length")
                elif not row.done:
                    self._finish(row, "length")
                pieces[i] = new
                if not row.done:
                    feeds[i] = feed
            if any(pieces):
                yield pieces
            if all(f is None for f in feeds):
                break
            t0 = time.perf_counter()
            logits = self.lm.step(feeds)
            model_s += time.perf_counter() - t0
            for i, f in enumerate(feeds):
                if f is not None:
                    self.rows[i].stats.forward_passes += 1
        tail = [row.text.flush() for row in self.rows]
        if any(tail):
            yield tail
        self._close(t_begin, model_s)

    def _close(self, t_begin: float, model_s: float) -> None:
        total = time.perf_counter() - t_begin
        self.lm.close()
        for row in self.rows:
            row.stats.prompt_tokens = row.prompt_len
            row.stats.generated_tokens = len(row.token_ids)
            row.stats.finish_reason = row.finish_reason
            row.stats.seconds = total
            row.stats.model_seconds = model_s
            row.stats.constraint_seconds = max(0.0, total - model_s)

    def run(self) -> None:
        """Decode to the end without streaming."""
        for _ in self.steps():
            pass
