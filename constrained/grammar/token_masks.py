"""Exact token masks for a grammar state: one trie walk that crosses lexeme boundaries.

From the current lexer state, a token either dies, stays inside the open lexeme, or
crosses one or more lexeme boundaries. The walk advances frontiers of trie nodes with a
vectorised DFA step per level; where a node's byte kills the lexeme and its parent's
state accepts, the lexeme is finished through the parser (once per distinct accepting
state, not per token) and the same node is re-entered in the new lexer context. Frontiers
are grouped by context (parser set, mode, ignore count), so tokens sharing a prefix share
all the work, and a context reached through many boundaries is expanded together.
See docs/grammars.md for the measurements behind this design.
"""
from __future__ import annotations

import numpy as np

from ..masks.bitmask import bool_to_bitmask
from ..masks.trie import TokenTrie
from .compiled import CompiledGrammar, LexerMode, LexState

_Ctx = tuple[object, object, int]  # (parser set, lexer mode, ignored in a row)


def allowed_nodes(cg: CompiledGrammar, trie: TokenTrie, state: LexState) -> np.ndarray:
    """bool[n_nodes]: trie nodes whose bytes, fed from ``state``, keep the output viable."""
    ok = np.zeros(trie.n_nodes, dtype=bool)
    cs, ce, byte = trie.child_start, trie.child_end, trie.byte
    # pending[ctx] = (list of node arrays, list of state arrays): nodes already consumed in
    # ctx whose children are still to be expanded
    pending: dict[_Ctx, tuple[LexState, list[np.ndarray], list[np.ndarray]]] = {}

    def push(st: LexState, nodes: np.ndarray, states: np.ndarray) -> None:
        key = (st.parser, st.mode, st.n_ignored)
        entry = pending.get(key)
        if entry is None:
            pending[key] = (st, [nodes], [states])
        else:
            entry[1].append(nodes)
            entry[2].append(states)

    if state.mode.dfa is None:
        return ok
    # the root: the parser-independent part of the walk (nodes inside the open lexeme, and
    # nodes where it ends, grouped by accepting state) is cached per (mode, state)
    live, groups = lexer_walk(trie, state.mode, state.q)
    ok[live] = True
    for q, nodes in groups:
        _enter(cg, state, q, nodes, byte, ok, push)
    while pending:
        key = next(iter(pending))
        ctx, node_list, state_list = pending.pop(key)
        mode = ctx.mode
        dfa = mode.dfa
        if dfa is None:
            continue
        frontier = np.concatenate(node_list) if len(node_list) > 1 else node_list[0]
        states = np.concatenate(state_list) if len(state_list) > 1 else state_list[0]
        if len(node_list) > 1:
            packed = np.unique(frontier.astype(np.int64) << 32 | states.astype(np.int64))
            frontier = (packed >> 32).astype(np.int32)
            states = (packed & 0xFFFFFFFF).astype(np.int32)
        while frontier.size:
            starts = cs[frontier]
            counts = ce[frontier] - starts
            has = counts > 0
            if not has.all():
                starts, counts, states = starts[has], counts[has], states[has]
            total = int(counts.sum())
            if total == 0:
                break
            ends = np.cumsum(counts)
            children = (np.arange(total, dtype=np.int32)
                        + np.repeat(starts - (ends - counts), counts)).astype(np.int32)
            parent_states = np.repeat(states, counts)
            nxt = np.asarray(dfa.step_many(parent_states, byte[children]), dtype=np.int32)
            live = nxt > 0
            ended = ~live & _accepting_mask(mode, parent_states)
            if ended.any():
                _boundaries(cg, ctx, children[ended], parent_states[ended], byte, ok, push)
            frontier = children[live]
            states = nxt[live]
            ok[frontier] = True
    return ok


def _boundaries(cg: CompiledGrammar, ctx: LexState, nodes: np.ndarray, parent_states: np.ndarray,
                byte: np.ndarray, ok: np.ndarray, push: object) -> None:
    """Nodes whose byte ended the lexeme (parent state accepting): finish it per parent
    state, then re-enter the nodes in the context after it."""
    for q in np.unique(parent_states).tolist():
        _enter(cg, ctx, q, nodes[parent_states == q], byte, ok, push)


def _enter(cg: CompiledGrammar, ctx: LexState, q: int, sel: np.ndarray, byte: np.ndarray,
           ok: np.ndarray, push: object) -> None:
    """Finish the lexeme in accepting state ``q`` and start the next one at nodes ``sel``."""
    probe = LexState(ctx.parser, ctx.mode, q, True, ctx.n_ignored)
    nxt: LexState | None = cg.finish(probe, q)
    if nxt is None or nxt.mode.dfa is None:
        return
    entered = np.asarray(nxt.mode.dfa.step_many(np.full(sel.size, nxt.q, dtype=np.int32),
                                                 byte[sel]), dtype=np.int32)
    live = entered > 0
    if live.any():
        sel, entered = sel[live], entered[live]
        ok[sel] = True
        push(nxt, sel, entered)  # type: ignore[operator]


def lexer_walk(trie: TokenTrie, mode: LexerMode, q: int
               ) -> tuple[np.ndarray, list[tuple[int, np.ndarray]]]:
    """Walk the whole trie from DFA state ``q`` of ``mode`` (cached on the mode).

    Returns the nodes that stay inside the lexeme and, per accepting state ``q'``, the
    nodes whose byte ends a lexeme that was in ``q'`` just before (boundary candidates).
    """
    key = (trie.fingerprint, q)
    found = mode.walks.get(key)
    if found is not None:
        return found  # type: ignore[return-value]
    dfa = mode.dfa
    cs, ce, byte = trie.child_start, trie.child_end, trie.byte
    live_parts: list[np.ndarray] = []
    dead_nodes: list[np.ndarray] = []
    dead_from: list[np.ndarray] = []
    frontier = np.zeros(1, dtype=np.int32)
    states = np.full(1, q, dtype=np.int32)
    while frontier.size:
        starts = cs[frontier]
        counts = ce[frontier] - starts
        has = counts > 0
        if not has.all():
            starts, counts, states = starts[has], counts[has], states[has]
        total = int(counts.sum())
        if total == 0:
            break
        ends = np.cumsum(counts)
        children = (np.arange(total, dtype=np.int32)
                    + np.repeat(starts - (ends - counts), counts)).astype(np.int32)
        parent_states = np.repeat(states, counts)
        nxt = np.asarray(dfa.step_many(  # type: ignore[union-attr]
            parent_states, byte[children]), dtype=np.int32)
        live = nxt > 0
        acc = _accepting_mask(mode, parent_states)
        ended = ~live & acc
        if ended.any():
            dead_nodes.append(children[ended])
            dead_from.append(parent_states[ended])
        frontier = children[live]
        states = nxt[live]
        live_parts.append(frontier)
    live_all = np.concatenate(live_parts) if live_parts else np.zeros(0, dtype=np.int32)
    groups: list[tuple[int, np.ndarray]] = []
    if dead_nodes:
        dn, df = np.concatenate(dead_nodes), np.concatenate(dead_from)
        for qa in np.unique(df).tolist():
            groups.append((qa, dn[df == qa]))
    result = (live_all, groups)
    mode.walks[key] = result
    return result


def _accepting_mask(mode: LexerMode, states: np.ndarray) -> np.ndarray:
    """bool per state: accepting in ``mode``'s DFA."""
    return np.asarray(mode.dfa.is_accepting_many(states), dtype=bool)  # type: ignore[union-attr]


def allowed_token_words(cg: CompiledGrammar, trie: TokenTrie, state: LexState,
                        n_words: int) -> np.ndarray:
    """Bitmask words (int32[n_words]) of the tokens allowed from ``state`` (EOS excluded)."""
    ok = allowed_nodes(cg, trie, state)
    ids = trie.token_ids[ok[trie.token_nodes]]
    bits = np.zeros(n_words * 32, dtype=bool)
    bits[ids] = True
    return bool_to_bitmask(bits)
