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

from .bitmask import bool_to_bitmask
from .kernels import PreorderTrie, _slice_of_tokens, restrict_preorder

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
    return TokenSlices(tuple(words), tuple(tries), longest)


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


_SLICE_INDEX = np.frombuffer(SLICE_BYTES, dtype=np.uint8).astype(np.intp)


def _level(dfa: Any, q: int, longest: int) -> int:
    # successors per byte, not per class: a growing lexer DFA renumbers its classes
    # when lexemes are added, the bytes stay
    frontier = {q}
    seen = {frozenset(frontier)}
    level = 0
    visits = 0
    for depth in range(1, longest + 1):
        nxt: set[int] = set()
        visits += len(frontier)
        if visits > _MAX_VISITS:
            return level
        for s in frontier:
            row = dfa.byte_transitions(s)[_SLICE_INDEX].tolist()
            if 0 in row:
                return level
            nxt.update(row)
        if depth == SLICE_BOUNDS[0]:
            level = 1
        elif depth == SLICE_BOUNDS[1]:
            level = 2
        key = frozenset(nxt)
        if key in seen:
            return 3
        if len(nxt) > _MAX_FRONTIER:
            return level
        seen.add(key)
        frontier = nxt
    return 3  # alive for every length up to the longest slice token
