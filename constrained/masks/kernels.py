"""Compiled trie walks (numba): the hot loop of every regex and JSON-schema mask.

A walk visits the token trie depth first in *preorder* (each subtree contiguous, so a
dead node skips its whole subtree with one index jump, as llguidance's toktrie does) and
keeps one automaton state per depth on a small stack. Per visited node: one class
lookup, one transition lookup, and the bits of the tokens ending there. Measured on
Llama-3's 128k vocabulary (docs/optimizations.md): a phone-number state 53 -> 7 us, an
email state 266 -> 88 us against the numpy level-by-level walk (``masks.walk``), whose
cost was ~10 us of numpy call overhead per trie level.

Transitions come from a :class:`~constrained.automata.dfa.LazyDFA` table in which rows
may still be unknown (-1): the kernel computes such a row in place
(``automata.rows.expand_row``, with the DFA's lock held for the walk), or, when that
needs Python (growth, a fork row, a limit), returns where it was; Python expands that
state's row and the kernel resumes from the same node. The table is re-read on each
resume (it may have been reallocated by growth).
"""
from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit

from ..automata.rows import expand_row

__all__ = ["PreorderTrie", "bucket_nodes", "compress_preorder", "distinct_sorted", "end_state",
           "lexer_walk_nodes", "nonzero_words", "or_words_at", "preorder_trie",
           "restrict_preorder", "walk_tokens", "warm_up"]


@dataclass(frozen=True, eq=False)
class PreorderTrie:
    """A :class:`~constrained.masks.trie.TokenTrie` laid out for depth-first walks.

    Node ``i`` (preorder, 0 = root): edge byte ``byte[i]``, ``depth[i]``; its subtree is
    ``i : skip[i]``; the tokens ending there are ``tok_ids[tok_ptr[i]:tok_ptr[i + 1]]``;
    ``node_of_token[t]`` is the node token ``t`` ends at (-1: not a text token).
    """

    fingerprint: str     # names the layout (vocabulary fingerprint + partition if compressed)
    byte: np.ndarray     # uint8[n]
    depth: np.ndarray    # int32[n]
    skip: np.ndarray     # int32[n]
    tok_ptr: np.ndarray  # int32[n + 1]
    tok_ids: np.ndarray  # int32[n_tokens]
    node_of_token: np.ndarray  # int32[vocabulary size]
    max_depth: int
    # int32[n]: TOKEN_BIT_OFFSET + the node's one token id; 0 (a scratch bit) when it ends
    # no token; -1 when it ends several (read ``tok_ptr``). Walks OR one bit per live node
    # without a branch on the token count, into words with one scratch word in front: the
    # unpredictable 0-or-1-token loop was about half of a walk (1.55 -> 0.80 ms over
    # Llama-3's 274k nodes)
    tok_bit: np.ndarray

    @property
    def n_nodes(self) -> int:
        return int(self.byte.shape[0])

    @property
    def n_tokens(self) -> int:
        return int(self.tok_ids.shape[0])


@njit(cache=True, nogil=True)
def _subtree_ends(depth: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """For preorder depths: the index after each node's subtree (the next node at the
    same or a shallower depth), with one stack of open nodes."""
    n = depth.shape[0]
    skip = np.empty(n, np.int32)
    open_at = np.empty(n + 1, np.int32)
    top = 0
    for i in range(n):
        while top > 0 and depth[open_at[top - 1]] >= depth[i]:
            top -= 1
            skip[open_at[top]] = i
        open_at[top] = i
        top += 1
    while top > 0:
        top -= 1
        skip[open_at[top]] = n
    return skip


@njit(cache=True, nogil=True)
def _layout(child_start: np.ndarray, child_end: np.ndarray, token_nodes: np.ndarray,
            token_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                            np.ndarray]:  # pragma: no cover - compiled
    """Preorder permutation, depths, subtree ends and the node->tokens CSR (counting sort)."""
    n = child_start.shape[0]
    order = np.empty(n, np.int32)
    depth = np.empty(n, np.int32)
    pos = np.empty(n, np.int32)
    stack = np.empty(n, np.int32)
    dstack = np.empty(n, np.int32)
    stack[0] = 0
    dstack[0] = 0
    sp = 1
    k = 0
    while sp > 0:
        sp -= 1
        v = stack[sp]
        order[k] = v
        depth[k] = dstack[sp]
        pos[v] = k
        k += 1
        for c in range(child_end[v] - 1, child_start[v] - 1, -1):  # first child on top
            stack[sp] = c
            dstack[sp] = depth[k - 1] + 1
            sp += 1
    skip = _subtree_ends(depth)
    ptr = np.zeros(n + 1, np.int32)
    for j in range(token_nodes.shape[0]):
        ptr[pos[token_nodes[j]] + 1] += 1
    for i in range(n):
        ptr[i + 1] += ptr[i]
    fill = ptr[:-1].copy()
    ids = np.empty(token_nodes.shape[0], np.int32)
    for j in range(token_nodes.shape[0]):  # token_ids ascending: ids ascending per node
        p = pos[token_nodes[j]]
        ids[fill[p]] = token_ids[j]
        fill[p] += 1
    return order, depth, skip, ptr, ids


def _frozen(fingerprint: str, byte: np.ndarray, depth: np.ndarray, skip: np.ndarray,
            ptr: np.ndarray, ids: np.ndarray, node_of_token: np.ndarray,
            max_depth: int) -> PreorderTrie:
    """A :class:`PreorderTrie` of these arrays, made read-only."""
    count = np.diff(ptr)
    tok_bit = np.zeros(byte.shape[0], dtype=np.int32)
    one = count == 1
    tok_bit[one] = ids[ptr[:-1][one]] + TOKEN_BIT_OFFSET
    tok_bit[count > 1] = -1
    for a in (byte, depth, skip, ptr, ids, node_of_token, tok_bit):
        a.setflags(write=False)
    return PreorderTrie(fingerprint, byte, depth, skip, ptr, ids, node_of_token, max_depth,
                        tok_bit)


#: token ``t``'s bit is bit ``t + TOKEN_BIT_OFFSET`` of a walk's word buffer, whose first
#: word is scratch (bit 0 there: "no token here"); callers see ``buffer[1:]``. The kernels
#: below spell the 7-line OR out where they set bits: an ``inline="always"`` helper made
#: the whole-trie walk 3x slower (954 -> 3200 us)
TOKEN_BIT_OFFSET = 32


def token_words(n_words: int) -> tuple[np.ndarray, np.ndarray]:
    """A zeroed walk word buffer (``n_words`` + the scratch word) and the view of its
    token words."""
    buf = np.zeros(n_words + 1, dtype=np.uint32)
    return buf, buf[1:]


def dfa_lock(dfa: Any) -> Any:
    """The lock a walk over ``dfa`` holds (rows computed in place must not race another
    thread's interning or growth), or a no-op for a DFA without one."""
    lock = getattr(dfa, "_lock", None)
    return lock if lock is not None else contextlib.nullcontext()


def expand_args(dfa: Any) -> tuple[object, ...] | None:
    """``LazyDFA.expand_view`` (taken with the lock held), or None for a DFA whose rows
    are all known (a compiled kernel then computes none)."""
    view = getattr(dfa, "expand_view", None)
    return view() if view is not None else None


def warm_up() -> None:
    """Load (or compile, the first time on a machine) every kernel on a tiny input.

    numba compiles on first call and caches the machine code on disk (``cache=True``);
    loading it still takes a few ms per kernel, so it is done once here, with the
    vocabulary's trie, instead of inside the first mask of some later constraint.
    """
    child = np.array([1, 3, 3], dtype=np.int32)  # root -> nodes 1 and 2
    end = np.array([3, 3, 3], dtype=np.int32)
    _order, depth, skip, ptr, ids = _layout(child, end, np.array([1, 2], dtype=np.int32),
                                           np.array([0, 1], dtype=np.int32))
    byte = np.array([0, 97, 98], dtype=np.uint8)
    bits = np.zeros(3, dtype=np.int32)
    for a in (byte, depth, skip, bits, ptr, ids):
        a.setflags(write=False)  # tries are frozen once built (``_frozen``)
    cls = np.zeros(256, dtype=np.int32)
    table = np.zeros((2, 1), dtype=np.int32)
    out = np.empty(3, dtype=np.int32)
    _walk(table, cls, byte, depth, skip, bits, ptr, ids, np.zeros(2, dtype=np.uint32), out,
          out.copy(), np.ones(3, dtype=np.int32), 1, 0, 0, None)
    merged = np.full((4, 1), -1, dtype=np.int32)
    comp_of = np.empty(3, dtype=np.int32)
    rep = np.zeros(4, dtype=np.uint8)
    count = _merge(byte, depth, cls, merged, rep, comp_of, 1)
    _compressed_layout(merged, rep, comp_of, count, ptr, ids)
    # every variant a mask may call: greedy and split lexing, rows known or computed in
    # place, over a frozen trie; a variant missed here is a ~100 ms cache load inside some
    # constraint's first mask
    from ..automata.dfa import LazyDFA
    from ..automata.regex_syntax import parse_regex

    for forks in (None, np.zeros((2, 1), dtype=np.int32)):
        _lex_walk(table, cls, np.zeros(2, dtype=np.bool_), byte, depth, skip, bits, ptr, ids,
                  np.zeros(0, dtype=np.int32), 1, np.zeros(2, dtype=np.uint32), out, out.copy(),
                  np.ones(3, dtype=np.int32), np.array([-1, 1, 3, 0], dtype=np.int64), forks,
                  None)
    for track in (False, True):
        dfa = LazyDFA([parse_regex("ab|b")], track_forks=track)
        dfa.expand(dfa.start)  # the row kernel called from Python (LazyDFA._expand)
        if not track:  # the state hash table's growth (LazyDFA._reserve)
            dfa._reserve(len(dfa._ht), 0)
        lex_table, lex_cls, lex_acc, lex_forks = dfa.kernel_view()
        _lex_walk(lex_table, lex_cls, lex_acc, byte, depth, skip, bits, ptr, ids,
                  np.zeros(0, dtype=np.int32), dfa.start, np.zeros(2, dtype=np.uint32), out,
                  out.copy(), np.ones(3, dtype=np.int32), np.array([-1, 1, 3, 0], dtype=np.int64),
                  lex_forks, dfa.expand_view())
        _walk(lex_table, lex_cls, byte, depth, skip, bits, ptr, ids, np.zeros(2, dtype=np.uint32),
              out, out.copy(), np.full(3, dfa.start, dtype=np.int32), 1, 0, 0, dfa.expand_view())
    _restrict(depth, skip, ptr, ids, np.ones(2, dtype=np.bool_))
    nonzero_words(np.zeros(2, dtype=np.uint32), 64)  # a lexer walk's token words
    or_words_at(np.zeros(2, dtype=np.int32), np.zeros(1, dtype=np.int64),  # sparse live parts
                np.ones(1, dtype=np.int32))
    ends = np.array([2, 1], dtype=np.int32)  # a lexer walk's (end nodes, end states)
    states = distinct_sorted(ends)
    bucket_nodes(ends, ends, states, np.zeros(len(states), dtype=np.int64), 1)
    alphabet = np.zeros((1, 256), dtype=np.int8)
    alphabet.setflags(write=False)  # as the frozen slice alphabets (masks/slices.py)
    _slice_of_tokens(byte, depth, ptr, ids, alphabet, np.array([1], dtype=np.int32), 2)


def preorder_trie(trie: Any) -> PreorderTrie:
    """The preorder layout of a :class:`TokenTrie` (O(nodes + tokens), ~3 ms on 274k nodes);
    loads every kernel first (:func:`warm_up`)."""
    warm_up()
    order, depth, skip, ptr, ids = _layout(
        np.ascontiguousarray(trie.child_start, dtype=np.int32),
        np.ascontiguousarray(trie.child_end, dtype=np.int32),
        np.ascontiguousarray(trie.token_nodes, dtype=np.int32),
        np.ascontiguousarray(trie.token_ids, dtype=np.int32))
    byte = np.ascontiguousarray(trie.byte[order], dtype=np.uint8)
    pos = np.empty(order.shape[0], dtype=np.int32)
    pos[order] = np.arange(order.shape[0], dtype=np.int32)
    level = trie.node_of_token
    node_of_token = np.where(level >= 0, pos[np.maximum(level, 0)], -1).astype(np.int32)
    return _frozen(trie.fingerprint, byte, depth, skip, ptr, ids, node_of_token,
                   int(depth.max()) if depth.size else 0)


@njit(cache=True, nogil=True)
def _merge(byte: np.ndarray, depth: np.ndarray, class_of: np.ndarray, child: np.ndarray,
           rep: np.ndarray, comp_of: np.ndarray, max_depth: int) -> int:  # pragma: no cover
    """Compressed node of every byte node (preorder) through the dense ``child[node,
    class]`` table (uninitialised: a row is set to -1 when its node is made, so a big
    table costs only the rows used); returns the node count, or -1 when ``child`` is too
    small (the caller gives up: the compressed trie would not be worth walking)."""
    n = byte.shape[0]
    cap = child.shape[0]
    at_depth = np.empty(max_depth + 1, np.int32)
    comp_of[0] = 0
    at_depth[0] = 0
    child[0, :] = -1
    count = 1
    for i in range(1, n):
        d = depth[i]
        p = at_depth[d - 1]
        c = class_of[byte[i]]
        k = child[p, c]
        if k < 0:
            if count == cap:
                return -1
            k = count
            count += 1
            child[k, :] = -1
            child[p, c] = k
            rep[k] = byte[i]
        at_depth[d] = k
        comp_of[i] = k
    return count


@njit(cache=True, nogil=True)
def _compressed_layout(child: np.ndarray, rep: np.ndarray, comp_of: np.ndarray, count: int,
                       tok_ptr: np.ndarray, tok_ids: np.ndarray
                       ) -> tuple[np.ndarray, ...]:  # pragma: no cover
    """Depth-first over the merged ``child`` table (children in class order): the
    compressed trie's preorder, depths, subtree ends and tokens (each follows its byte node)."""
    n = comp_of.shape[0]
    n_classes = child.shape[1]
    # preorder of the compressed trie
    pos = np.empty(count, np.int32)
    out_byte = np.empty(count, np.uint8)
    out_depth = np.empty(count, np.int32)
    stack = np.empty(count, np.int32)
    dstack = np.empty(count, np.int32)
    stack[0] = 0
    dstack[0] = 0
    sp = 1
    k = 0
    while sp > 0:
        sp -= 1
        v = stack[sp]
        pos[v] = k
        out_byte[k] = rep[v]
        out_depth[k] = dstack[sp]
        k += 1
        for c in range(n_classes - 1, -1, -1):
            w = child[v, c]
            if w >= 0:
                stack[sp] = w
                dstack[sp] = out_depth[k - 1] + 1
                sp += 1
    skip = _subtree_ends(out_depth)
    ptr = np.zeros(count + 1, np.int32)
    for i in range(n):
        ptr[pos[comp_of[i]] + 1] += tok_ptr[i + 1] - tok_ptr[i]
    for i in range(count):
        ptr[i + 1] += ptr[i]
    fill = ptr[:-1].copy()
    ids = np.empty(tok_ids.shape[0], np.int32)
    for i in range(n):
        q = pos[comp_of[i]]
        for j in range(tok_ptr[i], tok_ptr[i + 1]):
            ids[fill[q]] = tok_ids[j]
            fill[q] += 1
    return out_byte, out_depth, skip, ptr, ids, pos


# more byte classes than this: the dense child table of compress_preorder grows too big
MAX_COMPRESS_CLASSES = 64


def compress_preorder(pre: PreorderTrie, class_of: np.ndarray,
                      max_nodes: int | None = None) -> PreorderTrie | None:
    """``pre`` with sibling edges merged when their bytes share a class of ``class_of``;
    None if that trie would have more than ``max_nodes`` nodes (not worth walking).

    For an automaton whose byte classes refine ``class_of``, a walk over the result gives
    every token the same end state as over ``pre`` while visiting far fewer nodes (all
    lower-case letters in one class: 274k -> ~6k nodes). ~1 ms on Llama-3's trie.
    """
    cls = np.ascontiguousarray(class_of, dtype=np.int32)
    n_classes = int(cls.max()) + 1
    if cls.shape != (256,) or n_classes > MAX_COMPRESS_CLASSES:
        raise ValueError(f"class_of must map 256 bytes to at most {MAX_COMPRESS_CLASSES} classes")
    # one pass: the table is allocated for the most nodes allowed but left uninitialised
    # (pages never touched cost nothing), so only the rows made are written
    cap = pre.n_nodes if max_nodes is None else max(1, min(max_nodes, pre.n_nodes))
    comp_of = np.empty(pre.n_nodes, dtype=np.int32)
    child = np.empty((cap, n_classes), dtype=np.int32)
    rep = np.zeros(cap, dtype=np.uint8)
    count = _merge(pre.byte, pre.depth, cls, child, rep, comp_of, pre.max_depth)
    if count < 0:
        return None
    byte, depth, skip, ptr, ids, pos = _compressed_layout(child, rep, comp_of, count, pre.tok_ptr,
                                                          pre.tok_ids)
    old = pre.node_of_token
    node_of_token = np.where(old >= 0, pos[comp_of[np.maximum(old, 0)]], -1).astype(np.int32)
    tag = hashlib.sha1(cls.tobytes()).hexdigest()[:16]
    return _frozen(f"{pre.fingerprint}/{tag}", byte, depth, skip, ptr, ids, node_of_token,
                   pre.max_depth)


@njit(cache=True, nogil=True)
def _walk(table: np.ndarray, class_of: np.ndarray, byte: np.ndarray, depth: np.ndarray,
          skip: np.ndarray, tok_bit: np.ndarray, tok_ptr: np.ndarray, tok_ids: np.ndarray,
          words: np.ndarray,
          out_nodes: np.ndarray, out_states: np.ndarray, stack: np.ndarray, i: int,
          m: int, visited: int, ex: Any) -> tuple[int, int, int]:  # pragma: no cover - compiled
    """Walk from preorder node ``i`` on; ``stack[d]`` = state at depth ``d`` (``stack[0]``
    the start). Live nodes and their states go to ``out_*[m:]`` (ascending), the bits of
    their tokens into ``words``. Returns (``n`` when done, ``-(i + 1)`` for an unknown
    transition at node ``i``, or ``i`` itself when the output buffers are full; live nodes
    written; nodes visited). With ``ex`` (``LazyDFA.expand_view``, its lock held) unknown
    rows are computed in place; only one that needs Python returns."""
    n = byte.shape[0]
    cap = out_nodes.shape[0]
    while i < n:
        d = depth[i]
        t = table[stack[d - 1], class_of[byte[i]]]
        if t < 0 and ex is not None and expand_row(stack[d - 1], *ex) == 0:
            continue
        visited += 1
        if t <= 0:
            if t < 0:
                return -(i + 1), m, visited
            i = skip[i]
            continue
        if m == cap:
            return i, m, visited - 1
        stack[d] = t
        out_nodes[m] = i
        out_states[m] = t
        m += 1
        b = tok_bit[i]
        if b >= 0:
            words[b >> 5] |= np.uint32(1) << np.uint32(b & 31)
        else:
            for k in range(tok_ptr[i], tok_ptr[i + 1]):
                b = tok_ids[k] + TOKEN_BIT_OFFSET
                words[b >> 5] |= np.uint32(1) << np.uint32(b & 31)
        i += 1
    return n, m, visited


# live-node buffers of a walk start this small and grow 4x when full: most walks keep a
# few hundred nodes, and two trie-sized buffers per mask cost ~2 us of allocation
_WALK_BUFFER = 1024


def walk_tokens(pre: PreorderTrie, dfa: Any, state: int, n_words: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Every token whose bytes keep ``dfa`` alive from ``state``.

    Returns (bitmask words ``int32[n_words]``, live nodes (ascending preorder ids), the
    state at each, nodes visited); token ``t``'s end state is the state of node
    ``pre.node_of_token[t]``. ``dfa`` is a table DFA: unknown rows of a LazyDFA are
    expanded on the way.
    """
    buf, words = token_words(n_words)
    if state <= 0:
        empty = np.zeros(0, dtype=np.int32)
        return words.view(np.int32), empty, empty.copy(), 0
    cap = min(_WALK_BUFFER, pre.n_nodes)
    out_nodes = np.empty(cap, dtype=np.int32)
    out_states = np.empty(cap, dtype=np.int32)
    stack = np.empty(pre.max_depth + 1, dtype=np.int32)
    stack[0] = state
    i, m, visited = 1, 0, 0
    n = pre.n_nodes
    with dfa_lock(dfa):  # rows computed in place
        while True:
            table, class_of, _, _ = dfa.kernel_view()
            ex = expand_args(dfa)
            i, m, visited = _walk(table, class_of, pre.byte, pre.depth, pre.skip, pre.tok_bit,
                                  pre.tok_ptr, pre.tok_ids, buf, out_nodes, out_states, stack,
                                  i, m, visited, ex)
            if i == n:
                break
            if i < 0:
                i = -i - 1
                dfa.expand(int(stack[pre.depth[i] - 1]))
            else:  # buffers full
                cap = min(4 * cap, n)
                out_nodes = np.concatenate([out_nodes, np.empty(cap - m, dtype=np.int32)])
                out_states = np.concatenate([out_states, np.empty(cap - m, dtype=np.int32)])
    if m < cap // 2:
        return words.view(np.int32), out_nodes[:m].copy(), out_states[:m].copy(), visited
    return words.view(np.int32), out_nodes[:m], out_states[:m], visited


def end_state(pre: PreorderTrie, nodes: np.ndarray, states: np.ndarray, token_id: int) -> int:
    """From a walk's live ``nodes``/``states``: the state after ``token_id`` (0: not live)."""
    node = int(pre.node_of_token[token_id]) if 0 <= token_id < pre.node_of_token.shape[0] else -1
    if node < 0:
        return 0
    k = int(nodes.searchsorted(np.int32(node)))  # same dtype: no cast of ``nodes``
    return int(states[k]) if k < nodes.shape[0] and int(nodes[k]) == node else 0


# status codes of _lex_walk besides "expand this state" (>= 0)
_DONE = -1
_GROW = -2


@njit(cache=True, nogil=True)
def _lex_walk(table: np.ndarray, class_of: np.ndarray, accepting: np.ndarray, byte: np.ndarray,
              depth: np.ndarray, skip: np.ndarray, tok_bit: np.ndarray, tok_ptr: np.ndarray,
              tok_ids: np.ndarray,
              entries: np.ndarray, start: int, words: np.ndarray, end_nodes: np.ndarray,
              end_from: np.ndarray, stack: np.ndarray, cur: np.ndarray,
              forks: np.ndarray | None, ex: Any) -> int:  # pragma: no cover
    """Lexer walk (grammar masks): like :func:`_walk`, and a dead byte right after an
    accepting state records (node, state) as a lexeme end. With a fork table
    (``LazyDFA(track_forks=True)``; None compiles a variant without the check), a live
    byte with a fork id f also records (node, -f) and the walk goes on. ``cur`` = [entry index (-1:
    from the root), node (-1: entry not started), subtree end, ends written] is saved on
    every return so the walk resumes. Returns _DONE, _GROW (end buffers full) or a state
    whose row must be expanded first. With ``ex`` (``LazyDFA.expand_view``, the DFA's
    lock held) unknown rows are computed in place (``automata.rows.expand_row``); only a
    row that needs Python (growth, a fork row, a limit) returns."""
    k = cur[0]
    i = cur[1]
    stop = cur[2]
    m = cur[3]
    cap = end_nodes.shape[0]
    n_entries = entries.shape[0]
    while True:
        if i < 0:  # enter entry node k: its own byte starts a new lexeme from ``start``
            e = entries[k]
            t = table[start, class_of[byte[e]]]
            if t < 0:
                if ex is not None and expand_row(start, *ex) == 0:
                    continue
                cur[0], cur[1], cur[2], cur[3] = k, i, stop, m
                return start
            if t == 0:
                k += 1
                if k >= n_entries:
                    break
                continue
            stack[depth[e]] = t
            b = tok_bit[e]
            if b >= 0:
                words[b >> 5] |= np.uint32(1) << np.uint32(b & 31)
            else:
                for j in range(tok_ptr[e], tok_ptr[e + 1]):
                    b = tok_ids[j] + TOKEN_BIT_OFFSET
                    words[b >> 5] |= np.uint32(1) << np.uint32(b & 31)
            i = e + 1
            stop = skip[e]
        while i < stop:
            s = stack[depth[i] - 1]
            c = class_of[byte[i]]
            t = table[s, c]
            if t <= 0:
                if t < 0:
                    if ex is not None and expand_row(s, *ex) == 0:
                        continue
                    cur[0], cur[1], cur[2], cur[3] = k, i, stop, m
                    return s
                if accepting[s]:
                    if m == cap:
                        cur[0], cur[1], cur[2], cur[3] = k, i, stop, m
                        return _GROW
                    end_nodes[m] = i
                    end_from[m] = s
                    m += 1
                i = skip[i]
                continue
            if forks is not None and accepting[s]:
                f = forks[s, c]
                if f > 0:
                    if m == cap:
                        cur[0], cur[1], cur[2], cur[3] = k, i, stop, m
                        return _GROW
                    end_nodes[m] = i
                    end_from[m] = -f
                    m += 1
            stack[depth[i]] = t
            b = tok_bit[i]
            if b >= 0:
                words[b >> 5] |= np.uint32(1) << np.uint32(b & 31)
            else:
                for j in range(tok_ptr[i], tok_ptr[i + 1]):
                    b = tok_ids[j] + TOKEN_BIT_OFFSET
                    words[b >> 5] |= np.uint32(1) << np.uint32(b & 31)
            i += 1
        if k < 0 or k + 1 >= n_entries:
            break
        k += 1
        i = -1
    cur[0], cur[1], cur[2], cur[3] = k, i, stop, m
    return _DONE


def lexer_walk_nodes(pre: PreorderTrie, dfa: Any, q: int, entries: np.ndarray | None,
                     start: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A grammar lexer walk over ``pre``.

    ``entries is None``: from the root in DFA state ``q``; otherwise from each entry node
    (ascending preorder ids), whose own byte starts a new lexeme in state ``start``.
    Returns (bitmask words ``uint32`` of the tokens that stay inside a lexeme, the nodes
    whose byte is dead right after an accepting state, that state for each). A DFA that
    tracks forks also yields the nodes whose byte goes on at a fork, with minus the fork
    id in place of the state (``LexerMode.accepting`` reads both).
    """
    n_words = (pre.node_of_token.shape[0] + 31) // 32
    buf, words = token_words(n_words)
    cap = 1024
    end_nodes = np.empty(cap, dtype=np.int32)
    end_from = np.empty(cap, dtype=np.int32)
    stack = np.empty(pre.max_depth + 1, dtype=np.int32)
    if entries is None:
        ents = np.zeros(0, dtype=np.int32)
        cur = np.array([-1, 1, pre.n_nodes, 0], dtype=np.int64)
        stack[0] = q
    else:
        ents = np.ascontiguousarray(entries, dtype=np.int32)
        if ents.size == 0:
            return words, end_nodes[:0], end_from[:0]
        cur = np.array([0, -1, 0, 0], dtype=np.int64)
    # the DFA's lock is held for the whole walk: rows are computed inside the kernel
    # (no other thread may intern or grow meanwhile)
    with dfa_lock(dfa):
        return _lex_walk_locked(pre, dfa, start, buf, words, ents, end_nodes, end_from, stack,
                                cur, cap)


@njit(cache=True, nogil=True)
def or_words_at(words: np.ndarray, idx: np.ndarray, vals: np.ndarray) -> None:  # pragma: no cover - compiled
    """``words[idx[i]] |= vals[i]`` for every i, indices may repeat (``np.bitwise_or.at``
    in one compiled loop: a cold grammar mask ORs the sparse live parts of its walks at
    the end, and ``ufunc.at`` took ~8 us for a hundred words)."""
    for i in range(idx.shape[0]):
        words[idx[i]] |= vals[i]


@njit(cache=True, nogil=True)
def nonzero_words(words: np.ndarray, limit: int) -> np.ndarray:  # pragma: no cover - compiled
    """Indices of the non-zero words of a bitmask, ascending; past ``limit`` of them it
    stops and returns the first ``limit + 1`` (the caller keeps such a mask dense).
    ``np.flatnonzero`` took ~8 us on Llama-3's 4,008 words, after every lexer walk."""
    out = np.empty(min(limit, words.shape[0]) + 1, np.int64)
    n = 0
    for i in range(words.shape[0]):
        if words[i] != 0:
            out[n] = i
            n += 1
            if n > limit:
                break
    return out[:n]


@njit(cache=True, nogil=True)
def distinct_sorted(values: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """The distinct values of an int32 array, ascending (``np.unique`` in one call: a
    lexer walk's end states are grouped after every walk, where numpy's per-call
    overhead was most of the ~18 us it took)."""
    srt = np.sort(values)
    out = np.empty_like(srt)
    n = 0
    for i in range(srt.shape[0]):
        if n == 0 or srt[i] != out[n - 1]:
            out[n] = srt[i]
            n += 1
    return out[:n]


@njit(cache=True, nogil=True)
def bucket_nodes(nodes: np.ndarray, keys: np.ndarray, distinct: np.ndarray, group_of: np.ndarray,
                 n_groups: int) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """int32 ``nodes`` bucketed by group, each bucket ascending: node ``i`` belongs to group
    ``group_of[j]`` where ``distinct[j] == keys[i]`` (``distinct`` ascending; a negative
    group drops the node). Returns (the nodes bucket after bucket, bucket bounds
    ``int64[n_groups + 1]``)."""
    bounds = np.zeros(n_groups + 1, np.int64)
    group = np.empty(nodes.shape[0], np.int64)
    for i in range(nodes.shape[0]):
        g = group_of[np.searchsorted(distinct, keys[i])]
        group[i] = g
        if g >= 0:
            bounds[g + 1] += 1
    for g in range(n_groups):
        bounds[g + 1] += bounds[g]
    out = np.empty(bounds[n_groups], np.int32)  # walks give int32 node ids
    pos = bounds[:n_groups].copy()
    for i in range(nodes.shape[0]):
        g = group[i]
        if g >= 0:
            out[pos[g]] = nodes[i]
            pos[g] += 1
    for g in range(n_groups):  # walks end nodes in preorder, so a bucket is mostly sorted
        a, b = bounds[g], bounds[g + 1]
        for j in range(a + 1, b):
            if out[j] < out[j - 1]:
                out[a:b] = np.sort(out[a:b])
                break
    return out, bounds


def _lex_walk_locked(pre: PreorderTrie, dfa: Any, start: int, buf: np.ndarray,
                     words: np.ndarray, ents: np.ndarray, end_nodes: np.ndarray,
                     end_from: np.ndarray, stack: np.ndarray, cur: np.ndarray,
                     cap: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`lexer_walk_nodes`' resume loop (the DFA's lock held)."""
    while True:
        table, class_of, accepting, forks = dfa.kernel_view()
        ex = expand_args(dfa)
        status = _lex_walk(table, class_of, accepting, pre.byte, pre.depth, pre.skip,
                           pre.tok_bit, pre.tok_ptr, pre.tok_ids, ents, start, buf, end_nodes,
                           end_from, stack, cur, forks, ex)
        if status == _DONE:
            break
        if status == _GROW:
            cap *= 4
            grown_n = np.empty(cap, dtype=np.int32)
            grown_f = np.empty(cap, dtype=np.int32)
            m = int(cur[3])
            grown_n[:m] = end_nodes[:m]
            grown_f[:m] = end_from[:m]
            end_nodes, end_from = grown_n, grown_f
        else:
            dfa.expand(int(status))
    m = int(cur[3])
    return words, end_nodes[:m], end_from[:m]


@njit(cache=True, nogil=True)
def _restrict(depth: np.ndarray, skip: np.ndarray, tok_ptr: np.ndarray, tok_ids: np.ndarray,
              keep: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                         np.ndarray]:  # pragma: no cover - compiled
    """The nodes (old preorder ids, still in preorder) that lead to a kept token, their
    depths and subtree ends in the restricted numbering, and its node->tokens CSR."""
    n = depth.shape[0]
    parent = np.empty(n, np.int32)
    at_depth = np.empty(n + 1, np.int32)
    parent[0] = -1
    at_depth[0] = 0
    for i in range(1, n):
        parent[i] = at_depth[depth[i] - 1]
        at_depth[depth[i]] = i
    used = np.zeros(n, np.bool_)
    used[0] = True
    for i in range(n - 1, 0, -1):  # children come after their parent: one backward pass
        if not used[i]:
            for j in range(tok_ptr[i], tok_ptr[i + 1]):
                if keep[tok_ids[j]]:
                    used[i] = True
                    break
        if used[i]:
            used[parent[i]] = True
    count = 0
    for i in range(n):
        if used[i]:
            count += 1
    old = np.empty(count, np.int32)
    new_depth = np.empty(count, np.int32)
    k = 0
    for i in range(n):
        if used[i]:
            old[k] = i
            new_depth[k] = depth[i]
            k += 1
    new_skip = _subtree_ends(new_depth)
    ptr = np.zeros(count + 1, np.int32)
    for i in range(count):
        c = 0
        for j in range(tok_ptr[old[i]], tok_ptr[old[i] + 1]):
            if keep[tok_ids[j]]:
                c += 1
        ptr[i + 1] = ptr[i] + c
    ids = np.empty(ptr[count], np.int32)
    m = 0
    for i in range(count):
        for j in range(tok_ptr[old[i]], tok_ptr[old[i] + 1]):
            if keep[tok_ids[j]]:
                ids[m] = tok_ids[j]
                m += 1
    return old, new_depth, new_skip, ptr, ids


def restrict_preorder(pre: PreorderTrie, keep: np.ndarray, tag: str) -> PreorderTrie:
    """``pre`` with only the tokens where ``keep`` (bool per token id) is set, and the
    nodes leading to them (~2 ms on Llama-3's trie); ``tag`` names the subset."""
    keep_b = np.zeros(pre.node_of_token.shape[0], dtype=np.bool_)
    keep_b[: keep.shape[0]] = keep[: keep_b.shape[0]]
    old, depth, skip, ptr, ids = _restrict(pre.depth, pre.skip, pre.tok_ptr, pre.tok_ids, keep_b)
    byte = np.ascontiguousarray(pre.byte[old])
    pos = np.full(pre.n_nodes, -1, dtype=np.int32)
    pos[old] = np.arange(old.shape[0], dtype=np.int32)
    node_of_token = np.where(keep_b & (pre.node_of_token >= 0),
                             pos[np.maximum(pre.node_of_token, 0)], -1).astype(np.int32)
    return _frozen(f"{pre.fingerprint}|{tag}", byte, depth, skip, ptr, ids, node_of_token,
                   pre.max_depth)


@njit(cache=True, nogil=True)
def _slice_of_tokens(byte: np.ndarray, depth: np.ndarray, tok_ptr: np.ndarray,
                     tok_ids: np.ndarray, u_next: np.ndarray, bounds: np.ndarray,
                     n_vocab: int) -> np.ndarray:  # pragma: no cover - compiled
    """Per token id: 0, or ``k + 1`` when it is spelled in the slice alphabet ``u_next``
    (``[alphabet state, byte]`` -> next state, -1 outside; whole characters: it ends in
    state 0) and its length is at most ``bounds[k]`` (first such k)."""
    out = np.zeros(n_vocab, np.int8)
    ustate = np.zeros(depth.max() + 1, np.int64)
    for i in range(1, byte.shape[0]):
        d = depth[i]
        prev = ustate[d - 1]
        ustate[d] = -1 if prev < 0 else u_next[prev, byte[i]]
        if ustate[d] == 0:
            k = 0
            while k < bounds.shape[0] and d > bounds[k]:
                k += 1
            for j in range(tok_ptr[i], tok_ptr[i + 1]):
                out[tok_ids[j]] = k + 1
    return out
