"""Vocabulary slices: the masks of unconstrained contexts without walking the whole trie.

Inside a JSON string, a comment or free text almost every token is allowed, and a walk
visits most of the trie (~2 ms on Llama-3's 274k nodes). Text tokens made only of
printable ASCII other than ``"`` and ``\\`` are split by length into three slices (1-10,
11-30 and 31+ bytes). When every string of those bytes up to a slice's longest length
keeps the automaton alive from a state — a small breadth-first check on the DFA, cached
per state — all the slice's tokens are allowed there: their bitmask is OR-ed in and the
walk runs over a trie without them (built once per vocabulary). The check is sufficient,
not necessary, so a slice that fails it is simply walked: masks stay exact. The idea is
llguidance's "slicer" (its docs/optimizations.md); the check and tries here are ours.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit

from ..automata.rows import expand_row
from .bitmask import bool_to_bitmask
from .kernels import (
    PreorderTrie,
    _slice_of_tokens,
    dfa_lock,
    expand_args,
    restrict_preorder,
)

__all__ = ["SLICE_BOUNDS", "SLICE_BYTES", "SliceLevels", "TokenSlices", "build_slices"]

#: bytes a slice token may contain: printable ASCII except the quote and the backslash
SLICE_BYTES = bytes(b for b in range(0x20, 0x7F) if b not in (0x22, 0x5C))
#: longest token of slices 1 and 2 (slice 3: any longer token)
SLICE_BOUNDS = (10, 30)
_MAX_FRONTIER = 64  # DFA states per depth the check follows before giving up
# DFA states the check may visit in all (each may need its row determinised): a bounded
# string (`"[^"]{0,255}"`) kept one new state per depth to depth 256, and grammars with a
# lexer DFA per mode paid that again in every mode (a Snowplow schema: 4.3 of 7.7 s)
_MAX_VISITS = 256


@dataclass(frozen=True, eq=False)
class TokenSlices:
    """``words[k]``: int32 bitmask of the tokens of slices 1..k (k = 1..3; ``words[0]``
    empty); ``tries[k]``: the trie without those tokens (``tries[0]`` the full trie)."""

    words: tuple[np.ndarray, ...]
    tries: tuple[PreorderTrie, ...]
    longest: int = 0  # bytes of the longest slice token: liveness that far covers slice 3

    def add_to(self, words: np.ndarray, level: int) -> None:
        """OR the tokens of slices 1..``level`` into the int32 bitmask row ``words``."""
        if level:
            sw = self.words[level]
            n = min(sw.shape[0], words.shape[0])
            np.bitwise_or(words[:n], sw[:n], out=words[:n])


def build_slices(pre: PreorderTrie) -> TokenSlices:
    """The slices of a vocabulary's byte trie (~10 ms on Llama-3)."""
    in_set = np.zeros(256, dtype=np.bool_)
    in_set[list(SLICE_BYTES)] = True
    n_vocab = pre.node_of_token.shape[0]
    which = _slice_of_tokens(pre.byte, pre.depth, pre.tok_ptr, pre.tok_ids, in_set,
                             np.asarray(SLICE_BOUNDS, dtype=np.int32), n_vocab)
    in_slice = np.flatnonzero(which >= 1)
    ends = pre.node_of_token[in_slice]
    longest = int(pre.depth[ends].max()) if in_slice.size else 0
    words: list[np.ndarray] = [bool_to_bitmask(np.zeros(n_vocab, dtype=bool))]
    tries: list[PreorderTrie] = [pre]
    for k in (1, 2, 3):
        member = (which >= 1) & (which <= k)
        w = bool_to_bitmask(member)
        w.setflags(write=False)
        words.append(w)
        tries.append(restrict_preorder(pre, ~member, f"slices>{k}"))
    _warm_up()
    return TokenSlices(tuple(words), tuple(tries), longest)


def _warm_up() -> None:
    """Load the compiled check (both variants: a lazy DFA's, and a table DFA's that
    computes no rows) here rather than in some constraint's first mask."""
    from ..automata.dfa import LazyDFA
    from ..automata.regex_syntax import parse_regex

    dfa = LazyDFA([parse_regex("[ -~]*")])
    _level(dfa, dfa.start, 12)
    table, class_of, _, _ = dfa.kernel_view()
    _slice_level(dfa.start, 12, SLICE_BOUNDS[0], SLICE_BOUNDS[1], _SLICE_ARRAY, class_of,
                 table, None, _MAX_FRONTIER, _MAX_VISITS)


class SliceLevels:
    """Per DFA: how many slices (0-3) each state allows wholesale (memoised, thread-safe
    enough: concurrent callers compute the same value). ``longest``: the vocabulary's
    longest slice token (``TokenSlices.longest``): every slice string alive that far
    allows slice 3 too."""

    def __init__(self, dfa: Any, longest: int) -> None:
        self._dfa = dfa
        self._longest = max(longest, SLICE_BOUNDS[1])
        self._levels: dict[int, int] = {}

    def __call__(self, q: int) -> int:
        """Every string of slice bytes up to the slice's longest length leads from ``q``
        to a live state. Breadth first over the sets of states reached at each length; a
        set seen before means the sequence repeats, so every longer length is alive too.
        Past ``_MAX_FRONTIER`` states in one set or ``_MAX_VISITS`` in all the check
        answers the level proven so far (walking a slice is exact, only slower)."""
        hit = self._levels.get(q)
        if hit is None:
            hit = self._levels[q] = _level(self._dfa, q, self._longest)
        return hit


_SLICE_ARRAY = np.frombuffer(SLICE_BYTES, dtype=np.uint8).copy()


def _level(dfa: Any, q: int, longest: int) -> int:
    """:meth:`SliceLevels.__call__` uncached: the compiled check, which computes unknown
    rows of a lazy DFA in place (its lock held) and returns here only for a row that
    needs Python (``LazyDFA.expand``). In Python this check was 17% of the MaskBench
    sample's mask time (142 us a call, most of it asking rows one by one)."""
    with dfa_lock(dfa):
        while True:
            table, class_of, _, _ = dfa.kernel_view()
            ex = expand_args(dfa)
            got = _slice_level(q, longest, SLICE_BOUNDS[0], SLICE_BOUNDS[1], _SLICE_ARRAY,
                               class_of, table, ex, _MAX_FRONTIER, _MAX_VISITS)
            if got >= 0:
                return int(got)
            dfa.expand(-int(got) - 1)


@njit(cache=True, nogil=True)
def _slice_level(q: int, longest: int, bound1: int, bound2: int, slice_bytes: np.ndarray,
                 class_of: np.ndarray, table: np.ndarray, ex: Any, max_frontier: int,
                 max_visits: int) -> int:  # pragma: no cover - compiled
    """Breadth first over the sets of states reached at each length (classes of the
    slice bytes: a growing lexer DFA renumbers its classes, the bytes stay); a set seen
    before means the sequence repeats. Returns the level, or ``-(s + 1)`` for a state
    ``s`` whose row Python must compute."""
    seen_c = np.zeros(table.shape[1], np.bool_)
    cls = np.empty(slice_bytes.shape[0], np.int32)
    nc = 0
    for b in slice_bytes:
        c = class_of[b]
        if not seen_c[c]:
            seen_c[c] = True
            cls[nc] = c
            nc += 1
    hist = np.empty(max_visits + 2 * max_frontier + 2, np.int32)  # frontiers seen, flat
    hptr = np.zeros(longest + 2, np.int64)
    hist[0] = q
    hptr[1] = 1
    n_hist = 1
    frontier = hist[0:1].copy()
    level = 0
    visits = 0
    for depth in range(1, longest + 1):
        visits += frontier.shape[0]
        if visits > max_visits:
            return level
        nxt = np.empty(frontier.shape[0] * nc, np.int32)
        n = 0
        for s in frontier:
            if table[s, 0] < 0 and (ex is None or expand_row(s, *ex) != 0):
                return -(s + 1)
            for j in range(nc):
                t = table[s, cls[j]]
                if t == 0:
                    return level
                nxt[n] = t
                n += 1
        nxt = np.unique(nxt[:n])
        if depth == bound1:
            level = 1
        elif depth == bound2:
            level = 2
        for h in range(n_hist):
            a, b = hptr[h], hptr[h + 1]
            if b - a == nxt.shape[0]:
                same = True
                for x in range(nxt.shape[0]):
                    if hist[a + x] != nxt[x]:
                        same = False
                        break
                if same:
                    return 3
        if nxt.shape[0] > max_frontier:
            return level
        end = hptr[n_hist]
        hist[end:end + nxt.shape[0]] = nxt
        n_hist += 1
        hptr[n_hist] = end + nxt.shape[0]
        frontier = nxt
    return 3  # alive for every length up to the longest slice token
