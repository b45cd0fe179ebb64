"""Exact token masks for a grammar state: trie walks that cross lexeme boundaries.

From the current lexer state a token either dies, stays inside the open lexeme, or
crosses one or more lexeme boundaries. Everything except the parser is independent of
the parse: a *lexer walk* advances a frontier of trie nodes with one vectorised DFA step
per level and returns (a) the nodes that stay inside the lexeme and (b) per accepting
DFA state, the nodes whose byte ended a lexeme there. Lexer walks are cached on the
lexer mode, keyed by where they start (the root in a DFA state, or the content of the
node group a previous walk ended), so across steps and sequences they are computed once.

A walk keeps its live part as token bitmask words (computed once), so a mask is a small
recursion over boundary groups: per group the parser is asked once (finish the lexeme; a
parser scan, memoised on the Earley set), and the group's nodes are re-entered in the
next lexer context through another cached walk. Per mask the cost is one OR of bitmask
words per visited walk plus one parser step per group — never per token or per trie
node. All lexer modes share one DFA, so walks are shared across contexts too (the walk
inside a JSON string is computed once per grammar). See docs/grammars.md for measurements.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import ConstraintTooComplex
from ..masks.trie import TokenTrie
from ..masks.walk import tokens_at
from .compiled import CompiledGrammar, LexerMode, LexState

# A lexer walk: (bitmask words of the tokens that stay inside the lexeme, or None if
# none do; [(lexeme ids accepted, nodes ending it there)])
Walk = tuple[np.ndarray | None, list[tuple[frozenset[int], np.ndarray]]]
#: cached lexer walks kept per grammar before the cache is reset
MAX_WALKS = 50_000


def allowed_token_words(cg: CompiledGrammar, trie: TokenTrie, state: LexState, n_words: int,
                        max_visits: int = 100_000) -> np.ndarray:
    """int32[n_words]: bitmask of the tokens whose bytes, fed from ``state``, keep the
    output viable (EOS not included).

    Runs in rounds: every context (parser set, mode, ignore count) reached in a round is
    walked once over the union of the node groups that reached it, so a context reached
    through several boundaries (``)`` after NUMBER and after NAME) costs one walk.
    """
    out = np.zeros(n_words, dtype=np.int32)
    if state.mode.dfa is None:
        return out
    ok = out[:_trie_words(trie)]
    nfb = cg.not_followed_by or None
    live, groups = lexer_walk(trie, state.mode, ("root", state.q), state.q, None, nfb)
    if live is not None:
        np.bitwise_or(ok, live, out=ok)
    visits = 1
    rnd: dict[tuple[object, object, int], tuple[LexState, list[np.ndarray]]] = {}
    _spread(cg, state, groups, rnd)
    while rnd:
        nxt_round: dict[tuple[object, object, int], tuple[LexState, list[np.ndarray]]] = {}
        for ctx, parts in rnd.values():
            visits += 1
            if visits > max_visits:
                raise ConstraintTooComplex(
                    f"token mask needed more than {max_visits} lexer walks")
            nodes = parts[0] if len(parts) == 1 else np.unique(np.concatenate(parts))
            # a node group is named by its content: the same nodes entered in the same
            # mode give the same walk whatever path led there (shared across masks)
            live, groups = lexer_walk(trie, ctx.mode, ("entry", ctx.mode.start, nodes.tobytes()),
                                      ctx.q, nodes, nfb)
            if live is not None:
                np.bitwise_or(ok, live, out=ok)
            _spread(cg, ctx, groups, nxt_round)
        rnd = nxt_round
    return out


def _spread(cg: CompiledGrammar, ctx: LexState, groups: list[tuple[frozenset[int], np.ndarray]],
            into: dict[tuple[object, object, int], tuple[LexState, list[np.ndarray]]]) -> None:
    """Finish the lexeme of each group through the parser; file its nodes under the
    context that follows (merging groups that reach the same context)."""
    for acc, nodes in groups:
        nxt = cg.finish_lexemes(ctx, acc)
        if nxt is None or nxt.mode.dfa is None:
            continue
        sig = (nxt.parser, nxt.mode, nxt.n_ignored)
        entry = into.get(sig)
        if entry is None:
            into[sig] = (nxt, [nodes])
        else:
            entry[1].append(nodes)


def lexer_walk(trie: TokenTrie, mode: LexerMode, key: tuple[object, ...], q: int,
               entry: np.ndarray | None,
               not_followed_by: dict[int, frozenset[int]] | None = None) -> Walk:
    """The parser-independent walk of ``mode``'s DFA over part of the trie (cached).

    ``entry is None``: from the root in DFA state ``q``. Otherwise ``entry`` are nodes
    whose byte starts a new lexeme (from ``mode.start``); ``key`` names that node group
    (its content, so equal keys mean equal groups).
    """
    cache_key = (trie.fingerprint, key)
    found = mode.walks.get(cache_key)
    if found is not None:
        return found  # type: ignore[return-value]
    dfa = mode.dfa
    assert dfa is not None
    cs, ce, byte = trie.child_start, trie.child_end, trie.byte
    live_parts: list[np.ndarray] = []
    ended_nodes: list[np.ndarray] = []
    ended_from: list[np.ndarray] = []
    if entry is None:
        frontier = np.zeros(1, dtype=np.int32)
        states = np.full(1, q, dtype=np.int32)
    else:
        # the entry nodes' own byte is the first byte of the new lexeme (empty lexemes
        # do not exist, so a node that dies here is simply not viable)
        entered = np.asarray(dfa.step_many(np.full(entry.size, mode.start, dtype=np.int32),
                                           byte[entry]), dtype=np.int32)
        keep = entered > 0
        frontier, states = entry[keep], entered[keep]
        live_parts.append(frontier)
    lists: tuple[Sequence[int], Sequence[int], Sequence[int]] | None = None
    while frontier.size:
        if frontier.size <= _SCALAR_FRONTIER:
            # a handful of nodes left: finish in plain Python, level by level, and go
            # back to the vectorised step as soon as a level grows wide again
            if lists is None:
                lists = trie.flat_children
            frontier, states = _scalar_levels(lists, dfa, frontier.tolist(), states.tolist(),
                                              live_parts, ended_nodes, ended_from)
            if not frontier.size:
                break
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
        ended = ~live & np.asarray(dfa.is_accepting_many(parent_states), dtype=bool)
        if ended.any():
            ended_nodes.append(children[ended])
            ended_from.append(parent_states[ended])
        frontier = children[live]
        states = nxt[live]
        live_parts.append(frontier)
    live_words = _node_words(trie, live_parts)
    # group the ending nodes by the set of lexemes accepted (many DFA states, e.g. every
    # keyword prefix of NAME, finish the same lexemes: one parser step per set)
    groups: list[tuple[frozenset[int], np.ndarray]] = []
    if ended_nodes:
        dn, df = np.concatenate(ended_nodes), np.concatenate(ended_from)
        order = np.argsort(df, kind="stable")
        dn, df = dn[order], df[order]
        cuts = np.flatnonzero(np.diff(df)) + 1
        by_acc: dict[frozenset[int], list[np.ndarray]] = {}
        for part_nodes, part_from in zip(np.split(dn, cuts), np.split(df, cuts)):
            acc = mode.accepting(int(part_from[0]))
            restricted = [i for i in acc if not_followed_by and i in not_followed_by]
            if not restricted:
                by_acc.setdefault(acc, []).append(part_nodes)
                continue
            # lexemes with a lookahead rule end only before bytes they allow: split the
            # nodes by their byte (the first byte of what follows)
            node_bytes = trie.byte[part_nodes]
            for b in np.unique(node_bytes).tolist():
                allowed = frozenset(i for i in acc
                                    if b not in not_followed_by.get(i, ()))  # type: ignore[union-attr]
                if allowed:
                    by_acc.setdefault(allowed, []).append(part_nodes[node_bytes == b])
        for acc, parts in by_acc.items():
            groups.append((acc, np.sort(np.concatenate(parts))))
    result: Walk = (live_words, groups)
    if len(mode.walks) >= MAX_WALKS:
        mode.walks.clear()  # bounded memory: start over rather than grow without limit
    mode.walks[cache_key] = result
    return result


#: frontier size at or below which a lexer walk steps its remaining levels in Python
_SCALAR_FRONTIER = 8
#: a Python-stepped level wider than this goes back to numpy
_SCALAR_LEVEL = 48
def _scalar_levels(lists: tuple[Sequence[int], Sequence[int], Sequence[int]], dfa: object,
                   frontier: list[int], states: list[int], live_parts: list[np.ndarray],
                   ended_nodes: list[np.ndarray], ended_from: list[np.ndarray]
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Step a small frontier level by level in Python (same results as the vectorised
    loop); returns the frontier (as arrays) when a level gets wide, else empty arrays."""
    cs, ce, byte = lists
    step = dfa.step  # type: ignore[attr-defined]
    is_acc = dfa.is_accepting  # type: ignore[attr-defined]
    live: list[int] = []
    end_n: list[int] = []
    end_f: list[int] = []
    while frontier:
        if sum(ce[n] - cs[n] for n in frontier) > _SCALAR_LEVEL:
            break
        nf: list[int] = []
        ns: list[int] = []
        for n, s in zip(frontier, states):
            acc = None
            for c in range(cs[n], ce[n]):
                t = step(s, byte[c])
                if t > 0:
                    nf.append(c)
                    ns.append(t)
                else:
                    if acc is None:
                        acc = is_acc(s)
                    if acc:
                        end_n.append(c)
                        end_f.append(s)
        live.extend(nf)
        frontier, states = nf, ns
    if live:
        live_parts.append(np.asarray(live, dtype=np.int32))
    if end_n:
        ended_nodes.append(np.asarray(end_n, dtype=np.int32))
        ended_from.append(np.asarray(end_f, dtype=np.int32))
    return np.asarray(frontier, dtype=np.int32), np.asarray(states, dtype=np.int32)


def _trie_words(trie: TokenTrie) -> int:
    """Bitmask words covering every token id of ``trie``'s vocabulary."""
    return (trie.node_of_token.size + 31) // 32


_TOKEN_INDEX: dict[str, np.ndarray] = {}


def _token_index(trie: TokenTrie) -> np.ndarray:
    """int32[32 * words]: each token id's trie node, -1 for ids with none (cached, 4 tries)."""
    found = _TOKEN_INDEX.get(trie.fingerprint)
    if found is None:
        found = np.full(_trie_words(trie) * 32, -1, dtype=np.int32)
        found[:trie.node_of_token.size] = trie.node_of_token
        if len(_TOKEN_INDEX) >= 4:
            _TOKEN_INDEX.clear()
        _TOKEN_INDEX[trie.fingerprint] = found
    return found


def _node_words(trie: TokenTrie, parts: list[np.ndarray]) -> np.ndarray | None:
    """Bitmask words of the tokens that end at the nodes in ``parts`` (None if none do).

    Few nodes: their tokens come from the trie's node->tokens index (cost ~ live
    nodes); many nodes (inside a string: most of the trie): one gather over all token ids.
    """
    parts = [p for p in parts if p.size]
    if not parts:
        return None
    n = sum(p.size for p in parts)
    ptr, by_node = trie.node_token_ptr, trie.node_token_ids
    if ptr is not None and by_node is not None and n <= trie.n_nodes // 16:
        nodes = parts[0] if len(parts) == 1 else np.concatenate(parts)
        ids, _ = tokens_at(trie, nodes[nodes > 0])  # the root is never a token
        if ids.size == 0:
            return None
        bits = np.zeros(_trie_words(trie) * 32, dtype=bool)
        bits[ids] = True
    else:
        flags = np.zeros(trie.n_nodes + 1, dtype=bool)  # last slot: ids without a node
        for p in parts:
            flags[p] = True
        flags[0] = False
        bits = flags[_token_index(trie)]
        if not bits.any():
            return None
    words = np.packbits(bits, bitorder="little").view("<i4").astype(np.int32)
    words.setflags(write=False)
    return words
