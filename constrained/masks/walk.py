"""One vectorised walk of the token trie from one automaton state.

The walk advances the frontier of live trie nodes one level (one byte) at a time with a
single ``step_many`` call per level, dropping nodes whose state is dead, so its cost is
proportional to the number of live prefixes, not to the vocabulary. Any automaton with
``step_many(states: int32[n], bytes: uint8[n]) -> int32[n]`` (0 = dead) works: regex
DFAs and lexer DFAs of grammars alike.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np

from .trie import TokenTrie

__all__ = ["StepMany", "walk", "token_end_states"]


class StepMany(Protocol):
    """What a walk needs from an automaton: vectorised transitions, 0 = dead state."""

    def step_many(self, states: np.ndarray, data: np.ndarray) -> np.ndarray: ...


def walk(trie: TokenTrie, dfa: StepMany, state: int) -> np.ndarray:
    """State of every trie node when its bytes are fed from ``state``: int32[n_nodes], 0 = dead.

    The root gets ``state`` itself. Children of dead nodes are never visited.
    """
    out = np.zeros(trie.n_nodes, dtype=np.int32)
    if state <= 0:
        return out
    out[0] = state
    frontier = np.zeros(1, dtype=np.int32)
    states = np.full(1, state, dtype=np.int32)
    cs, ce, byte = trie.child_start, trie.child_end, trie.byte
    while frontier.size:
        starts = cs[frontier]
        counts = ce[frontier] - starts
        total = int(counts.sum())
        if total == 0:
            break
        keep_parent = counts > 0
        if not keep_parent.all():
            starts, counts, states = starts[keep_parent], counts[keep_parent], states[keep_parent]
        # children of each frontier node are contiguous: expand the ranges in one go
        ends = np.cumsum(counts)
        children = np.arange(total, dtype=np.int32) + np.repeat(starts - (ends - counts), counts)
        nxt = np.asarray(dfa.step_many(np.repeat(states, counts), byte[children]), dtype=np.int32)
        live = nxt > 0
        frontier = children[live]
        states = nxt[live]
        out[frontier] = states
    return out


def token_end_states(trie: TokenTrie, node_states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """From a walk: (ascending ids of tokens whose bytes stay alive, their end states)."""
    ends = node_states[trie.token_nodes]
    ok = ends > 0
    return trie.token_ids[ok], ends[ok]
