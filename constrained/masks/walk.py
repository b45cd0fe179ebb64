"""One vectorised walk of the token trie from one automaton state.

The walk advances the frontier of live trie nodes one level (one byte) at a time with a
single ``step_many`` call per level, dropping nodes whose state is dead, so its cost is
proportional to the number of live prefixes, not to the vocabulary. Any automaton with
``step_many(states: int32[n], bytes: uint8[n]) -> int32[n]`` (0 = dead) works: regex
DFAs and lexer DFAs of grammars alike.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from .trie import TokenTrie

__all__ = ["StepMany", "walk", "walk_sparse", "token_end_states", "live_tokens", "tokens_at"]


class StepMany(Protocol):
    """What a walk needs from an automaton: vectorised transitions, 0 = dead state.

    Automata that also have a scalar ``step(state, byte)`` let the walk finish small,
    deep frontiers (long tokens) node by node instead of one numpy round per level.
    """

    def step_many(self, states: np.ndarray, data: np.ndarray) -> np.ndarray: ...


# finish the walk node by node once the subtrees left hold at most this many nodes
_SCALAR_FINISH_NODES = 96  # measured best on the byte trie; class-compressed tries: 512


def walk_sparse(trie: TokenTrie, dfa: StepMany, state: int, max_steps: int | None = None,
                scalar_finish: int = _SCALAR_FINISH_NODES) -> tuple[np.ndarray, np.ndarray] | None:
    """The live nodes of a walk from ``state`` and their states: (int32[m], int32[m]), root first.

    Level by level, one ``step_many`` per level over the children of live nodes only;
    when the remaining subtrees are small the rest is stepped node by node. With
    ``max_steps``, gives up (returns None) once more transitions than that were needed.
    ``scalar_finish``: remaining-subtree size (nodes) below which scalar steps take over.
    """
    if state <= 0:
        return np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int32)
    root = np.zeros(1, dtype=np.int32)
    return _walk_from(trie, dfa, root, np.full(1, state, dtype=np.int32), max_steps, scalar_finish)


def _walk_from(trie: TokenTrie, dfa: StepMany, frontier: np.ndarray, states: np.ndarray,
               max_steps: int | None = None,
               scalar_finish: int = _SCALAR_FINISH_NODES) -> tuple[np.ndarray, np.ndarray] | None:
    """:func:`walk_sparse` below a given live frontier (one trie level; included in the result)."""
    budget = -1 if max_steps is None else max_steps
    node_parts = [frontier]
    state_parts = [states]
    cs, ce, byte, size = trie.child_start, trie.child_end, trie.byte, trie.subtree_size
    step = getattr(dfa, "step", None)
    while frontier.size:
        if step is not None and frontier.size <= 4 * scalar_finish \
                and int(size[frontier].sum()) - frontier.size <= scalar_finish:
            extra_nodes, extra_states = _finish_scalar(trie, step, frontier.tolist(), states.tolist(), dfa)
            if extra_nodes:
                node_parts.append(np.asarray(extra_nodes, dtype=np.int32))
                state_parts.append(np.asarray(extra_states, dtype=np.int32))
            break
        starts = cs[frontier]
        counts = ce[frontier] - starts  # zero for leaves: np.repeat drops them
        total = int(counts.sum())
        if total == 0:
            break
        if budget >= 0:
            budget -= total
            if budget < 0:
                return None
        # children of each frontier node are contiguous: expand the ranges in one go
        ends = np.cumsum(counts)
        children = np.arange(total, dtype=np.int32) + np.repeat(starts - (ends - counts), counts)
        nxt = np.asarray(dfa.step_many(np.repeat(states, counts), byte[children]), dtype=np.int32)
        live = nxt > 0
        frontier = children[live]
        states = nxt[live]
        node_parts.append(frontier)
        state_parts.append(states)
    if len(node_parts) == 1:
        return node_parts[0], state_parts[0]
    return np.concatenate(node_parts), np.concatenate(state_parts)


def _finish_scalar(trie: TokenTrie, step: Any, frontier: list[int],
                   states: list[int], dfa: Any = None) -> tuple[list[int], list[int]]:
    """Depth-first rest of a walk below ``frontier`` (small subtrees), one byte at a time.

    With a DFA exposing ``transitions``/``class_of`` (LazyDFA), each state's row is read
    once as a Python list and tries with at most ``_LIST_NODES`` nodes use cached Python
    copies of their child ranges and bytes: a step is then two list lookups.
    """
    out_nodes: list[int] = []
    out_states: list[int] = []
    stack = list(zip(frontier, states))
    transitions = getattr(dfa, "transitions", None)
    class_of = getattr(dfa, "class_of", None)
    lists = _trie_lists(trie)
    if lists is None or transitions is None or class_of is None:
        cs, ce, byte = trie.child_start, trie.child_end, trie.byte
        while stack:
            node, st = stack.pop()
            for child in range(int(cs[node]), int(ce[node])):
                nxt = step(st, int(byte[child]))
                if nxt > 0:
                    out_nodes.append(child)
                    out_states.append(nxt)
                    stack.append((child, nxt))
        return out_nodes, out_states
    cs_l, ce_l, byte_l = lists
    cls = np.asarray(class_of).tolist()
    rows: dict[int, list[int]] = {}
    while stack:
        node, st = stack.pop()
        row = rows.get(st)
        if row is None:
            row = rows[st] = transitions(st).tolist()
        for child in range(cs_l[node], ce_l[node]):
            nxt = row[cls[byte_l[child]]]
            if nxt > 0:
                out_nodes.append(child)
                out_states.append(nxt)
                stack.append((child, nxt))
    return out_nodes, out_states


# tries up to this many nodes (class-compressed ones) use Python copies for scalar finishes
_LIST_NODES = 1 << 16


def _trie_lists(trie: TokenTrie) -> tuple[Sequence[int], Sequence[int], Sequence[int]] | None:
    """A small trie's :attr:`TokenTrie.flat_children` (None for large tries)."""
    return trie.flat_children if trie.n_nodes <= _LIST_NODES else None


def walk(trie: TokenTrie, dfa: StepMany, state: int) -> np.ndarray:
    """State of every trie node when its bytes are fed from ``state``: int32[n_nodes], 0 = dead.

    The root gets ``state`` itself. Children of dead nodes are never visited.
    """
    out = np.zeros(trie.n_nodes, dtype=np.int32)
    result = walk_sparse(trie, dfa, state)
    assert result is not None  # no budget given
    out[result[0]] = result[1]
    return out


def token_end_states(trie: TokenTrie, node_states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """From a dense walk: (ascending ids of tokens whose bytes stay alive, their end states)."""
    ends = node_states[trie.token_nodes]
    ok = ends > 0
    return trie.token_ids[ok], ends[ok]


def tokens_at(trie: TokenTrie, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ids of the tokens ending at ``nodes``, how many end at each node), from the trie's
    node->tokens index (which the caller checked exists); O(nodes + tokens)."""
    ptr, by_node = trie.node_token_ptr, trie.node_token_ids
    assert ptr is not None and by_node is not None
    starts = ptr[nodes]
    counts = ptr[nodes + 1] - starts
    total = int(counts.sum())
    ends = np.cumsum(counts)
    idx = np.arange(total, dtype=np.int32) + np.repeat(starts - (ends - counts), counts)
    return by_node[idx], counts


def live_tokens(trie: TokenTrie, nodes: np.ndarray, states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """From a sparse walk: (ids of tokens ending at live nodes, their end states).

    With the trie's node->tokens index this costs O(live nodes + allowed tokens) (node
    order); without it, one gather over all tokens (ascending ids).
    """
    if trie.node_token_ptr is None or trie.node_token_ids is None:
        dense = np.zeros(trie.n_nodes, dtype=np.int32)
        dense[nodes] = states
        return token_end_states(trie, dense)
    ids, counts = tokens_at(trie, nodes)
    return ids, np.repeat(states, counts)
