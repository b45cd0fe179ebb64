"""One lazy-DFA row in a compiled kernel (numba): class grouping and epsilon closures.

A DFA state's row maps each byte class to the DFA state of the NFA states reached:
the successors of the member byte states whose label accepts the class, closed under
epsilon moves. In Python this was the cold cost of schema masks: over the MaskBench
sample of 500, 175k rows took 4.8 s of 11.8 s of mask time (a row with 17-64 members,
a lexer mode over dozens of JSON keys, ~72 us; an epsilon closure ~10 us of list and
numpy-scalar work). The kernel groups the classes by their member bitset and computes
each distinct target set once; Python only interns the sets (``LazyDFA._intern``).
"""
from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["RowScratch", "row_targets"]

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


class RowScratch:
    """The row kernel's work arrays of one DFA (visit stamps and a DFS stack, one slot
    per NFA state, re-made when its NFA outgrows them); used under that DFA's lock."""

    __slots__ = ("mark", "stack", "stamp")

    def __init__(self, n_states: int) -> None:
        self.mark = np.zeros(max(n_states, 1), np.int32)
        self.stack = np.empty(max(n_states, 1), np.int32)
        self.stamp = 0


def row_targets(members: np.ndarray, label: np.ndarray, label_classes: np.ndarray,
                succ: np.ndarray, kind: np.ndarray, live: np.ndarray, eps_ptr: np.ndarray,
                eps_dst: np.ndarray, scratch: RowScratch
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For the byte states ``members`` of a DFA state: ``(group_of, ptr, states, n_acc)``
    where class ``c`` leads to target set ``group_of[c]`` (-1: dead) and target set
    ``g`` is the live NFA byte/accept states ``states[ptr[g]:ptr[g + 1]]``, byte states
    sorted then its ``n_acc[g]`` accept states sorted (``LazyDFA``'s identity order)."""
    if scratch.stamp > (1 << 30):
        scratch.mark[:] = 0
        scratch.stamp = 0
    group_of, ptr, states, n_acc, scratch.stamp = _row_targets(
        members, label, label_classes, succ, kind, live, eps_ptr, eps_dst,
        scratch.mark, scratch.stack, scratch.stamp)
    return group_of, ptr, states, n_acc
