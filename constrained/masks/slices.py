"""Vocabulary slices: the masks of unconstrained contexts without walking the whole trie.

Inside a JSON string, a comment or free text almost every token is allowed, and a walk
visits most of the trie (~2 ms on Llama-3's 274k nodes). Tokens spelled in a *slice
alphabet* are split by length into three slices (1-10, 11-30 and 31+ bytes). When every
string of the alphabet up to a slice's longest length keeps the automaton alive from a
state — a small breadth-first check on the DFA, cached per state — all the slice's tokens
are allowed there: their bitmask is OR-ed in and the walk runs over a trie without them
(built once per vocabulary). The check is sufficient, not necessary, so a slice that
fails it is simply walked: masks stay exact. The idea is llguidance's "slicer" (its
docs/optimizations.md); the alphabets, the check and the tries here are ours.

Two alphabets, each a small byte automaton (``u_next[u, byte]``, state 0 = between
characters, -1 = not in the alphabet):

* ``ascii``: printable ASCII other than ``"`` and ``\\`` (levels 1-3);
* ``utf8``: the same plus every non-ASCII character, as well-formed UTF-8 (levels 4-6).
  Inside a JSON string every character but ``"``, ``\\`` and controls is allowed, and
  Llama-3 has 28.6k such non-ASCII tokens: with only the ASCII slices a walk inside a
  string still visited 74k nodes (15% of the MaskBench sample's mask time). A token cut
  inside a character is in no slice. States that allow ASCII only keep levels 1-3.
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

__all__ = ["ALPHABETS", "SLICE_BOUNDS", "SLICE_BYTES", "SliceLevels", "TokenSlices",
           "build_slices", "slice_alphabet_ok"]

#: bytes an ASCII slice token may contain: printable ASCII except the quote and the backslash
SLICE_BYTES = bytes(b for b in range(0x20, 0x7F) if b not in (0x22, 0x5C))
#: longest token of slices 1 and 2 (slice 3: any longer token)
SLICE_BOUNDS = (10, 30)
_MAX_FRONTIER = 64  # (DFA state, alphabet state) pairs per depth the check follows
# DFA states the check may visit in all (each may need its row determinised): a bounded
# string (`"[^"]{0,255}"`) kept one new state per depth to depth 256, and grammars with a
# lexer DFA per mode paid that again in every mode (a Snowplow schema: 4.3 of 7.7 s)
_MAX_VISITS = 256


def _ascii_alphabet() -> np.ndarray:
    u_next = np.full((1, 256), -1, dtype=np.int8)
    u_next[0, list(SLICE_BYTES)] = 0
    return u_next


def _utf8_alphabet() -> np.ndarray:
    """The ASCII alphabet plus well-formed UTF-8 for every code point from U+0080
    (overlong forms and surrogates excluded, as a UTF-8 automaton excludes them)."""
    u = np.full((8, 256), -1, dtype=np.int8)
    u[0, list(SLICE_BYTES)] = 0
    u[0, 0xC2:0xE0] = 1  # two-byte lead: one continuation byte to go
    u[0, 0xE1:0xED] = 2
    u[0, 0xEE:0xF0] = 2  # three-byte leads: two to go
    u[0, 0xE0] = 4  # E0: A0-BF next (no overlong)
    u[0, 0xED] = 5  # ED: 80-9F next (no surrogate)
    u[0, 0xF1:0xF4] = 3  # four-byte leads: three to go
    u[0, 0xF0] = 6  # F0: 90-BF next
    u[0, 0xF4] = 7  # F4: 80-8F next (at most U+10FFFF)
    u[1, 0x80:0xC0] = 0
    u[2, 0x80:0xC0] = 1
    u[3, 0x80:0xC0] = 2
    u[4, 0xA0:0xC0] = 1
    u[5, 0x80:0xA0] = 1
    u[6, 0x90:0xC0] = 2
    u[7, 0x80:0x90] = 2
    return u


#: the slice alphabets, in level order (levels 1-3, then 4-6)
ALPHABETS: tuple[np.ndarray, ...] = (_ascii_alphabet(), _utf8_alphabet())
for _a in ALPHABETS:
    _a.setflags(write=False)


def slice_alphabet_ok(token: bytes, alphabet: int) -> bool:
    """Whether ``token`` is spelled in slice alphabet ``alphabet`` (whole characters)."""
    u_next = ALPHABETS[alphabet]
    u = 0
    for b in token:
        u = int(u_next[u, b])
        if u < 0:
            return False
    return u == 0


@dataclass(frozen=True, eq=False)
class TokenSlices:
    """``words[level]``: int32 bitmask of the tokens a slice level allows wholesale
    (``3 * a + k``: alphabet ``a``'s slices 1..k; ``words[0]`` empty); ``tries[level]``:
    the trie without those tokens (``tries[0]`` the full trie)."""

    words: tuple[np.ndarray, ...]
    tries: tuple[PreorderTrie, ...]
    # per alphabet: bytes of its longest slice token (liveness that far covers slice 3)
    longest: tuple[int, ...] = (0, 0)

    def add_to(self, words: np.ndarray, level: int) -> None:
        """OR the tokens of slice level ``level`` into the int32 bitmask row ``words``."""
        if level:
            sw = self.words[level]
            n = min(sw.shape[0], words.shape[0])
            np.bitwise_or(words[:n], sw[:n], out=words[:n])


def build_slices(pre: PreorderTrie) -> TokenSlices:
    """The slices of a vocabulary's byte trie (~30 ms on Llama-3: two alphabets)."""
    n_vocab = pre.node_of_token.shape[0]
    words: list[np.ndarray] = [bool_to_bitmask(np.zeros(n_vocab, dtype=bool))]
    tries: list[PreorderTrie] = [pre]
    longest: list[int] = []
    for a, u_next in enumerate(ALPHABETS):
        which = _slice_of_tokens(pre.byte, pre.depth, pre.tok_ptr, pre.tok_ids, u_next,
                                 np.asarray(SLICE_BOUNDS, dtype=np.int32), n_vocab)
        in_slice = np.flatnonzero(which >= 1)
        ends = pre.node_of_token[in_slice]
        longest.append(int(pre.depth[ends].max()) if in_slice.size else 0)
        for k in (1, 2, 3):
            member = (which >= 1) & (which <= k)
            w = bool_to_bitmask(member)
            w.setflags(write=False)
            words.append(w)
            tries.append(restrict_preorder(pre, ~member, f"slices{a}>{k}"))
    _warm_up()
    return TokenSlices(tuple(words), tuple(tries), tuple(longest))


def _warm_up() -> None:
    """Load the compiled check (both variants: a lazy DFA's, and a table DFA's that
    computes no rows) here rather than in some constraint's first mask."""
    from ..automata.dfa import LazyDFA
    from ..automata.regex_syntax import parse_regex

    dfa = LazyDFA([parse_regex("[ -~]*")])
    _level(dfa, dfa.start, 12, 0)
    table, class_of, _, _ = dfa.kernel_view()
    _slice_level(dfa.start, 12, SLICE_BOUNDS[0], SLICE_BOUNDS[1], ALPHABETS[0], class_of,
                 table, None, _MAX_FRONTIER, _MAX_VISITS)


class SliceLevels:
    """Per DFA: the slice level each state allows wholesale (memoised, thread-safe enough:
    concurrent callers compute the same value). ``longest``: per alphabet, the
    vocabulary's longest slice token (``TokenSlices.longest``): every string alive that
    far allows slice 3 too."""

    def __init__(self, dfa: Any, longest: tuple[int, ...]) -> None:
        self._dfa = dfa
        self._longest = tuple(max(n, SLICE_BOUNDS[1]) for n in longest)
        self._levels: dict[int, int] = {}

    def __call__(self, q: int) -> int:
        """0-6 (see :class:`TokenSlices`): the UTF-8 alphabet's level when it equals the
        ASCII one, else the ASCII level. The UTF-8 check runs only where the ASCII one
        passed (a superset alphabet dies no later), so most states of a grammar pay one
        check; either level alone is sound. Per alphabet: every string up to the slice's
        longest length leads from ``q`` to a live state. Breadth first over the sets of
        (state, alphabet state) pairs reached at each length; a set seen before means the
        sequence repeats, so every longer length is alive too. Past ``_MAX_FRONTIER``
        pairs in one set or ``_MAX_VISITS`` in all the check answers the level proven so
        far (walking a slice is exact, only slower)."""
        hit = self._levels.get(q)
        if hit is None:
            hit = _level(self._dfa, q, self._longest[0], 0)
            if hit and _level(self._dfa, q, self._longest[1], 1) == hit:
                hit += 3
            self._levels[q] = hit
        return hit


def _level(dfa: Any, q: int, longest: int, alphabet: int) -> int:
    """One alphabet's level (0-3) of :meth:`SliceLevels.__call__`, uncached: the compiled
    check, which computes unknown rows of a lazy DFA in place (its lock held) and returns
    here only for a row that needs Python (``LazyDFA.expand``). In Python this check was
    17% of the MaskBench sample's mask time (142 us a call, most of it asking rows one by
    one)."""
    with dfa_lock(dfa):
        while True:
            table, class_of, _, _ = dfa.kernel_view()
            ex = expand_args(dfa)
            got = _slice_level(q, longest, SLICE_BOUNDS[0], SLICE_BOUNDS[1], ALPHABETS[alphabet],
                               class_of, table, ex, _MAX_FRONTIER, _MAX_VISITS)
            if got >= 0:
                return int(got)
            dfa.expand(-int(got) - 1)


@njit(cache=True, nogil=True, inline="always")
def _frontier_hash(values: np.ndarray) -> int:  # pragma: no cover - compiled
    """An order-dependent hash of a sorted frontier (equal frontiers, equal hashes)."""
    h = values.shape[0]
    for x in values:
        h = h * 1000003 + x
    return h  # type: ignore[no-any-return]


@njit(cache=True, nogil=True)
def _slice_level(q: int, longest: int, bound1: int, bound2: int, u_next: np.ndarray,
                 class_of: np.ndarray, table: np.ndarray, ex: Any, max_frontier: int,
                 max_visits: int) -> int:  # pragma: no cover - compiled
    """Breadth first over the sets of (DFA state, alphabet state) pairs reached at each
    length (steps by DFA class: a growing lexer DFA renumbers its classes, the bytes
    stay); a set seen before means the sequence repeats. Returns the level, or
    ``-(s + 1)`` for a state ``s`` whose row Python must compute."""
    n_u = u_next.shape[0]
    # per alphabet state: its distinct (DFA class, next alphabet state) steps
    step_c = np.empty((n_u, 256), np.int64)
    step_u = np.empty((n_u, 256), np.int64)
    n_step = np.zeros(n_u, np.int64)
    mark = np.full(table.shape[1] * n_u, -1, np.int64)
    for u in range(n_u):
        for b in range(256):
            v = u_next[u, b]
            if v < 0:
                continue
            c = class_of[b]
            if mark[c * n_u + v] != u:
                mark[c * n_u + v] = u
                step_c[u, n_step[u]] = c
                step_u[u, n_step[u]] = v
                n_step[u] += 1
    widest = 1
    for u in range(n_u):
        widest = max(widest, n_step[u])
    hist = np.empty(max_visits + 2 * max_frontier + 2, np.int64)  # frontiers seen, flat
    hptr = np.zeros(longest + 2, np.int64)
    hkey = np.zeros(longest + 2, np.int64)  # a hash of each frontier seen
    hist[0] = q * n_u
    hptr[1] = 1
    hkey[0] = _frontier_hash(hist[0:1])
    n_hist = 1
    frontier = hist[0:1].copy()
    # the next frontier, deduplicated in place (one buffer per call: np.unique allocated
    # twice per length, and a bounded string's check runs to the longest token, 128)
    nxt = np.empty(max(max_frontier, 1) * widest + widest, np.int64)
    level = 0
    visits = 0
    for depth in range(1, longest + 1):
        visits += frontier.shape[0]
        if visits > max_visits:
            return level
        n = 0
        for x in frontier:
            s = x // n_u
            u = x - s * n_u
            if table[s, 0] < 0 and (ex is None or expand_row(s, *ex) != 0):
                return -(s + 1)
            for j in range(n_step[u]):
                t = table[s, step_c[u, j]]
                if t == 0:
                    return level
                nxt[n] = t * n_u + step_u[u, j]
                n += 1
        if n > 1:
            nxt[:n].sort()
            m = 1
            for x in range(1, n):
                if nxt[x] != nxt[m - 1]:
                    nxt[m] = nxt[x]
                    m += 1
            n = m
        if depth == bound1:
            level = 1
        elif depth == bound2:
            level = 2
        # a frontier seen before: the sequence repeats (compared in full only where the
        # length and hash agree; comparing every earlier frontier was quadratic in the
        # depth, most of a bounded string's check)
        key = _frontier_hash(nxt[:n])
        for h in range(n_hist):
            a, b = hptr[h], hptr[h + 1]
            if hkey[h] == key and b - a == n:
                same = True
                for x in range(n):
                    if hist[a + x] != nxt[x]:
                        same = False
                        break
                if same:
                    return 3
        if n > max_frontier:
            return level
        end = hptr[n_hist]
        hist[end:end + n] = nxt[:n]
        hkey[n_hist] = key
        n_hist += 1
        hptr[n_hist] = end + n
        frontier = hist[end:end + n]
    return 3  # alive for every length up to the longest slice token
