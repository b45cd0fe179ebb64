"""Lazy-DFA rows in a compiled kernel (numba): class grouping, epsilon closures, interning.

A DFA state's row maps each byte class to the DFA state of the NFA states reached:
the successors of the member byte states whose label accepts the class, closed under
epsilon moves. In Python this was the cold cost of schema masks: over the MaskBench
sample of 500, 175k rows took 4.8 s of 11.8 s of mask time (a row with 17-64 members,
a lexer mode over dozens of JSON keys, ~72 us; an epsilon closure ~10 us of list and
numpy-scalar work). The kernel groups the classes by their member bitset and computes
each distinct target set once.

Interning is compiled too (:func:`expand_row`): a DFA state is a slice of one int32
pool of NFA states (identity order), found again through an open-addressing hash table
of state ids, so a row needs no Python at all and a trie walk that meets an unknown row
computes it in place instead of returning to Python (``masks.kernels._lex_walk``). Python
interning was ~18 us a row: over the MaskBench sample, 189k rows were 29% of the mask
time, and each also cost the walk a return to Python and a re-entry.
"""
from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["ROW_DONE", "ROW_FORKS", "ROW_GROW", "ROW_MAX_STATES", "ROW_MAX_TOTAL", "expand_row",
           "intern_state", "rehash"]

_EPS = 1  # nfa.KIND_EPS (kept literal: the kernel is compiled once and cached on disk)
_ACCEPT = 2  # nfa.KIND_ACCEPT


@njit(cache=True, nogil=True)
def _row_targets(members: np.ndarray, label: np.ndarray, label_classes: np.ndarray,
                 succ: np.ndarray, kind: np.ndarray, live: np.ndarray, eps_ptr: np.ndarray,
                 eps_dst: np.ndarray, mark: np.ndarray, stack: np.ndarray,
                 stamp: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:  # pragma: no cover - compiled
    """(group of each class, -1 = dead; CSR pointers and the NFA states of each group's
    target set, byte states sorted then accept states sorted; each set's accept-state
    count; the last stamp used in ``mark``)."""
    k = members.shape[0]
    nc = label_classes.shape[1]
    nw = (k + 63) // 64
    sig = np.zeros((nc, nw), np.uint64)
    for i in range(k):
        lab = label[members[i]]
        w = i >> 6
        bit = np.uint64(1) << np.uint64(i & 63)
        for c in range(nc):
            if label_classes[lab, c]:
                sig[c, w] |= bit
    group_of = np.full(nc, -1, np.int32)
    reps = np.empty(nc, np.int32)
    ng = 0
    for c in range(nc):
        empty = True
        for w in range(nw):
            if sig[c, w] != 0:
                empty = False
                break
        if empty:
            continue
        found = -1
        for g in range(ng):
            r = reps[g]
            same = True
            for w in range(nw):
                if sig[r, w] != sig[c, w]:
                    same = False
                    break
            if same:
                found = g
                break
        if found < 0:
            reps[ng] = c
            found = ng
            ng += 1
        group_of[c] = found
    ptr = np.zeros(ng + 1, np.int64)
    n_acc = np.zeros(ng, np.int32)
    out = np.empty(max(16, 4 * k), np.int32)
    n_out = 0
    for g in range(ng):
        stamp += 1
        top = 0
        r = reps[g]
        for i in range(k):
            if (sig[r, i >> 6] >> np.uint64(i & 63)) & np.uint64(1):
                t = succ[members[i]]
                if mark[t] != stamp:
                    mark[t] = stamp
                    stack[top] = t
                    top += 1
        start = n_out
        while top:
            top -= 1
            s = stack[top]
            if not live[s]:
                continue
            if kind[s] != _EPS:
                if kind[s] == _ACCEPT:
                    n_acc[g] += 1
                if n_out == out.shape[0]:
                    bigger = np.empty(2 * out.shape[0], np.int32)
                    bigger[:n_out] = out[:n_out]
                    out = bigger
                out[n_out] = s
                n_out += 1
                continue
            for j in range(eps_ptr[s], eps_ptr[s + 1]):
                t = eps_dst[j]
                if mark[t] != stamp:
                    mark[t] = stamp
                    stack[top] = t
                    top += 1
        out[start:n_out].sort()
        if n_acc[g]:  # accept states last (a stable partition of the sorted slice)
            tmp = out[start:n_out].copy()
            j = start
            for s in tmp:
                if kind[s] != _ACCEPT:
                    out[j] = s
                    j += 1
            for s in tmp:
                if kind[s] == _ACCEPT:
                    out[j] = s
                    j += 1
        ptr[g + 1] = n_out
    return group_of, ptr, out[:n_out], n_acc, stamp


# expand_row / intern_state statuses (kept literal in the kernels: compiled once, cached)
ROW_DONE = 0
#: capacity is short: ``counts[3]`` states and ``counts[4]`` pool entries are needed
ROW_GROW = 1
#: an accepting state of a fork-tracking DFA: its row is in ``rowbuf``, its targets are
#: interned, and Python adds the fork row before publishing it
ROW_FORKS = 2
ROW_MAX_STATES = 3  # Limits.max_states reached
ROW_MAX_TOTAL = 4  # Limits.max_state_set_total reached
# ``counts`` slots: states made, pool entries used, the row kernel's visit stamp, and the
# capacity a ROW_GROW asks for
N_STATES, POOL_USED, STAMP, NEED_STATES, NEED_POOL = 0, 1, 2, 3, 4


@njit(cache=True, nogil=True)
def _hash(vals: np.ndarray, a: int, b: int) -> np.uint64:  # pragma: no cover - compiled
    """FNV-1a over ``vals[a:b]``, with a final avalanche (the table index takes low bits)."""
    h = np.uint64(14695981039346656037)
    for i in range(a, b):
        h = (h ^ np.uint64(vals[i] & 0xFFFFFFFF)) * np.uint64(1099511628211)
    h ^= h >> np.uint64(31)
    return h


@njit(cache=True, nogil=True)
def _find_or_add(vals: np.ndarray, a: int, b: int, n_acc: int, pool: np.ndarray,
                 ptr: np.ndarray, nbyte: np.ndarray, accepting: np.ndarray, ht: np.ndarray,
                 counts: np.ndarray, max_states: int, max_total: int) -> int:  # pragma: no cover
    """Id of the state whose NFA states are ``vals[a:b]`` (identity order, the last
    ``n_acc`` accept states), made if new; ``-ROW_MAX_*`` past a limit. The caller has
    reserved capacity (state arrays, pool and a hash table at most half full)."""
    n = b - a
    if n == 0:
        return 0  # the dead state
    mask = np.uint64(ht.shape[0] - 1)
    j = _hash(vals, a, b) & mask
    while True:
        sid = ht[j]
        if sid == 0:
            break
        p = ptr[sid]
        if ptr[sid + 1] - p == n:
            same = True
            for x in range(n):
                if pool[p + x] != vals[a + x]:
                    same = False
                    break
            if same:
                return sid
        j = (j + np.uint64(1)) & mask
    sid = counts[0]
    used = counts[1]
    if sid >= max_states:
        return -3
    if used + n > max_total:
        return -4
    pool[used:used + n] = vals[a:b]
    ptr[sid + 1] = used + n  # ptr[sid] == used: states are laid out in id order
    nbyte[sid] = n - n_acc
    accepting[sid] = n_acc > 0
    ht[j] = sid  # published last: the record is complete before the id can be found
    counts[0] = sid + 1
    counts[1] = used + n
    return sid


@njit(cache=True, nogil=True)
def intern_state(vals: np.ndarray, n_acc: int, pool: np.ndarray, ptr: np.ndarray,
                 nbyte: np.ndarray, accepting: np.ndarray, ht: np.ndarray, counts: np.ndarray,
                 max_states: int, max_total: int) -> int:  # pragma: no cover - compiled
    """:func:`_find_or_add` of a whole array (start states, made from Python)."""
    return _find_or_add(vals, 0, vals.shape[0], n_acc, pool, ptr, nbyte, accepting, ht,
                        counts, max_states, max_total)


@njit(cache=True, nogil=True)
def rehash(ht: np.ndarray, ptr: np.ndarray, pool: np.ndarray,
           n_states: int) -> None:  # pragma: no cover - compiled
    """Insert states ``1..n_states-1`` into the empty hash table ``ht``."""
    mask = np.uint64(ht.shape[0] - 1)
    for sid in range(1, n_states):
        j = _hash(pool, ptr[sid], ptr[sid + 1]) & mask
        while ht[j] != 0:
            j = (j + np.uint64(1)) & mask
        ht[j] = sid


@njit(cache=True, nogil=True)
def expand_row(s: int, table: np.ndarray, accepting: np.ndarray, pool: np.ndarray,
               ptr: np.ndarray, nbyte: np.ndarray, ht: np.ndarray, counts: np.ndarray,
               rowbuf: np.ndarray, label: np.ndarray, label_classes: np.ndarray,
               succ: np.ndarray, kind: np.ndarray, live: np.ndarray, eps_ptr: np.ndarray,
               eps_dst: np.ndarray, mark: np.ndarray, stack: np.ndarray, forks: bool,
               max_states: int, max_total: int) -> int:  # pragma: no cover - compiled
    """Compute, intern and publish the row of state ``s`` (its first column last, the
    "row known" flag readers check). Returns ROW_DONE, or a status for Python: ROW_GROW
    (nothing interned), ROW_FORKS (row in ``rowbuf``, not published), ROW_MAX_*."""
    if table[s, 0] >= 0:
        return 0
    if counts[2] > (1 << 30):
        mark[:] = 0
        counts[2] = 0
    p = ptr[s]
    members = pool[p:p + nbyte[s]]
    group_of, gptr, states, n_acc, stamp = _row_targets(
        members, label, label_classes, succ, kind, live, eps_ptr, eps_dst, mark, stack,
        counts[2])
    counts[2] = stamp
    ng = gptr.shape[0] - 1
    need_states = counts[0] + ng
    need_pool = counts[1] + states.shape[0]
    if (need_states >= table.shape[0] or need_pool > pool.shape[0]
            or 2 * need_states > ht.shape[0]):
        counts[3] = need_states
        counts[4] = need_pool
        return 1
    sids = np.empty(ng + 1, np.int32)
    for g in range(ng):
        sid = _find_or_add(states, gptr[g], gptr[g + 1], n_acc[g], pool, ptr, nbyte,
                           accepting, ht, counts, max_states, max_total)
        if sid < 0:
            return -sid
        sids[g] = sid
    sids[ng] = 0  # group -1: dead
    nc = table.shape[1]
    if forks and accepting[s]:
        for c in range(nc):
            rowbuf[c] = sids[group_of[c]]
        return 2
    for c in range(1, nc):
        table[s, c] = sids[group_of[c]]
    table[s, 0] = sids[group_of[0]]
    return 0
