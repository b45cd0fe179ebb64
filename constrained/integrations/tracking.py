"""Keep per-row matchers in step with the token histories a host framework hands us.

Frameworks such as transformers and llama-cpp-python call a logits processor with the
whole sequence so far (prompt + generated ids) rather than telling it which token was
chosen. :class:`HistoryTracker` turns those histories back into matcher states: the
usual case (each row grew by one token) is one ``advance``; beam reordering, assisted
(speculative) generation and restarts are handled by reusing the row state that shares
the longest prefix with the new history (``copy`` + ``rollback`` + replay).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ConstrainedError, TokenRejected

if TYPE_CHECKING:
    from ..matcher import Constraint, Matcher


@dataclass
class _RowState:
    """A matcher together with the generated ids it has consumed."""

    tokens: tuple[int, ...]
    matcher: Matcher


def _common_prefix(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    """Length of the longest common prefix of two id tuples."""
    n = min(len(a), len(b))
    if n == 0:
        return 0
    diff = np.flatnonzero(np.asarray(a[:n], dtype=np.int64) != np.asarray(b[:n], dtype=np.int64))
    return int(diff[0]) if diff.size else n


class HistoryTracker:
    """Matchers for a batch of rows, synchronised from generated-id histories.

    ``eos_token_ids`` end a row's constrained output: ids after the first EOS (padding
    that frameworks append to finished rows) are ignored.
    """

    def __init__(self, constraint: Constraint, eos_token_ids: Sequence[int]) -> None:
        self._constraint = constraint
        self._eos = frozenset(int(t) for t in eos_token_ids)
        self._rows: list[_RowState] = []

    @property
    def rows(self) -> list[Matcher]:
        """Current matcher per row (after the last :meth:`sync`)."""
        return [row.matcher for row in self._rows]

    def reset(self) -> None:
        """Forget every row (a new generation starts)."""
        self._rows = []

    def _cut_at_eos(self, generated: Sequence[int]) -> tuple[int, ...]:
        """The history up to and including the first EOS id."""
        out: list[int] = []
        for token in generated:
            out.append(int(token))
            if int(token) in self._eos:
                break
        return tuple(out)

    def sync(self, histories: Sequence[Sequence[int]]) -> list[Matcher]:
        """Bring one matcher per history up to date and return them, row order kept.

        Raises :class:`TokenRejected` when a history contains a token the constraint
        forbids (another processor or the caller bypassed the mask).
        """
        targets = [self._cut_at_eos(h) for h in histories]
        old = self._rows
        # Pick, for each new row, the old row sharing the longest prefix (own row first).
        plans: list[tuple[int, int]] = []  # (source index or -1, common prefix length)
        for i, target in enumerate(targets):
            best, best_len = -1, -1
            order = ([i] if i < len(old) else []) + [j for j in range(len(old)) if j != i]
            for j in order:
                lcp = _common_prefix(old[j].tokens, target)
                if lcp > best_len:
                    best, best_len = j, lcp
                if lcp == len(target):
                    break
            plans.append((best, max(best_len, 0)))
        # A source can be extended in place once; every other user takes a copy.
        # Copies are taken before any in-place mutation.
        in_place: dict[int, int] = {}
        for i, (src, lcp) in enumerate(plans):
            if src >= 0 and src not in in_place and lcp == len(old[src].tokens):
                in_place[src] = i
        new_rows: list[_RowState | None] = [None] * len(targets)
        for i, (src, lcp) in enumerate(plans):
            if src >= 0 and in_place.get(src) == i:
                continue
            if src < 0:
                new_rows[i] = _RowState((), self._constraint.matcher())
            else:
                new_rows[i] = _RowState(old[src].tokens, old[src].matcher.copy())
        for src, i in in_place.items():
            new_rows[i] = old[src]
        rows: list[_RowState] = []
        for i, row in enumerate(new_rows):
            assert row is not None
            rows.append(self._bring_to(row, targets[i], i))
        self._rows = rows
        return [row.matcher for row in rows]

    def _bring_to(self, row: _RowState, target: tuple[int, ...], index: int) -> _RowState:
        """Roll ``row`` back to its common prefix with ``target`` and replay the rest."""
        lcp = _common_prefix(row.tokens, target)
        back = len(row.tokens) - lcp
        matcher = row.matcher
        if back:
            try:
                matcher.rollback(back)
            except ConstrainedError:
                matcher.reset()
                lcp = 0
        for token in target[lcp:]:
            try:
                matcher.advance(token)
            except TokenRejected as exc:
                raise TokenRejected(
                    f"row {index}: token {token} was generated although the constraint forbids it "
                    f"(did another logits processor or a sampler bypass the mask?): {exc}"
                ) from exc
        return _RowState(target, matcher)
