"""Exact token masks for a grammar state: trie walks that cross lexeme boundaries.

From the current lexer state a token either dies, stays inside the open lexeme, or
crosses one or more lexeme boundaries. Everything except the parser is independent of
the parse: a *lexer walk* (one compiled depth-first pass over the preorder trie,
``masks.kernels``) returns (a) the tokens that stay inside the lexeme and (b) per
accepting DFA state, the nodes whose byte ended a lexeme there. Lexer walks are cached on the
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

import numpy as np

from ..errors import ConstraintTooComplex
from ..masks.kernels import (
    TOKEN_BIT_OFFSET,
    PreorderTrie,
    bucket_nodes,
    dfa_lock,
    distinct_sorted,
    lexer_walk_nodes,
    nonzero_words,
    or_words_at,
)
from .compiled import FINISH_MEMO, CompiledGrammar, LexerMode, LexState

# A node group ending a lexeme: (lexeme ids accepted, its nodes ascending, the nodes'
# bytes, which name the group in walk caches; a bytes object caches its hash, so a group
# reached again costs no re-hash of its content)
Group = tuple[frozenset[int], np.ndarray, bytes]
# The tokens of a walk that stay inside the lexeme: None (none do), int32 bitmask words,
# or for a few tokens the (word index, word) pairs of the non-zero words (a walk from a
# narrow node group allows a handful of tokens; OR-ing 16 KB per such walk was ~1 us)
Live = np.ndarray | tuple[np.ndarray, np.ndarray] | None
# A lexer walk: (its live tokens; the groups of nodes whose byte ended a lexeme)
Walk = tuple[Live, list[Group]]
# A context of one round: the state after a boundary, and the groups entering it
_Round = dict[tuple[object, object, int], tuple[LexState, list[Group]]]
#: cached lexer walks kept per grammar before the cache is reset
MAX_WALKS = 50_000
_MISSING = object()
#: walks whose tokens fill at most this many bitmask words keep them sparse
_SPARSE_WORDS = 64
#: entry walks from at most this many nodes first try the plain-Python walk ...
_TINY_ENTRIES = 2
#: ... which gives up past this many visited nodes (the compiled walk runs instead)
_TINY_VISITS = 6


def allowed_token_words(cg: CompiledGrammar, trie: PreorderTrie, state: LexState, n_words: int,
                        max_visits: int = 100_000) -> np.ndarray:
    """int32[n_words]: bitmask of the tokens whose bytes, fed from ``state``, keep the
    output viable (EOS not included).

    Runs in rounds: every context (parser set, mode, ignore count) reached in a round is
    walked once over the union of the node groups that reached it, so a context reached
    through several boundaries (``)`` after NUMBER and after NAME) costs one walk. This
    loop runs hundreds of times per cold mask on expression grammars (one context per
    lexeme sequence inside some token), so cache hits are looked up inline.
    """
    out = np.zeros(n_words, dtype=np.int32)
    if state.mode.dfa is None:
        return out
    ok = out[:_trie_words(trie)]
    nfb = cg.not_followed_by or None
    fp = trie.fingerprint
    sparse: list[tuple[np.ndarray, np.ndarray]] = []  # sparse live parts, OR-ed at the end
    live, groups = lexer_walk(trie, state.mode, (fp, state.q), state.q, None, nfb)
    if live is not None:
        if isinstance(live, tuple):
            sparse.append(live)
        else:
            np.bitwise_or(ok, live, out=ok)
    visits = 1
    rnd: _Round = {}
    _spread(cg, state, groups, rnd)
    while rnd:
        nxt_round: _Round = {}
        for ctx, parts in rnd.values():
            visits += 1
            if visits > max_visits:
                raise ConstraintTooComplex(
                    f"token mask needed more than {max_visits} lexer walks")
            mode = ctx.mode
            if len(parts) == 1:
                nodes, name = parts[0][1], parts[0][2]
            else:
                nodes = distinct_sorted(np.concatenate([g[1] for g in parts]))
                name = nodes.tobytes()
            # a node group is named by its content: the same nodes entered in the same
            # mode give the same walk whatever path led there (shared across masks)
            key = (fp, mode.start, name)
            walk = mode.walks.get(key)
            if walk is None:
                walk = lexer_walk(trie, mode, key, ctx.q, nodes, nfb)
            live, groups = walk  # type: ignore[misc]
            if live is not None:
                if isinstance(live, tuple):
                    sparse.append(live)
                else:
                    np.bitwise_or(ok, live, out=ok)
            _spread(cg, ctx, groups, nxt_round)
        rnd = nxt_round
    if sparse:
        if len(sparse) == 1:
            idx, vals = sparse[0]
        else:
            idx = np.concatenate([p[0] for p in sparse])
            vals = np.concatenate([p[1] for p in sparse])
        or_words_at(ok, idx, vals)  # indices may repeat across walks
    return out


def _spread(cg: CompiledGrammar, ctx: LexState, groups: list[Group], into: _Round) -> None:
    """Finish the lexeme of each group through the parser; file the group under the
    context that follows (merging groups that reach the same context)."""
    cache = ctx.parser.cache
    n_ignored = ctx.n_ignored
    for group in groups:
        # CompiledGrammar.finish_lexemes' memo, looked up inline
        nxt: LexState | None = cache.get((FINISH_MEMO, group[0], n_ignored), _MISSING)  # type: ignore[assignment]
        if nxt is _MISSING:
            nxt = cg.finish_lexemes(ctx, group[0])
        if nxt is None or nxt[1].dfa is None:
            continue
        # (parser, mode, n_ignored) by index: a LexState's named fields are properties
        sig = (nxt[0], nxt[1], nxt[4])
        entry = into.get(sig)
        if entry is None:
            into[sig] = (nxt, [group])
        else:
            entry[1].append(group)


def lexer_walk(trie: PreorderTrie, mode: LexerMode, key: tuple[object, ...], q: int,
               entry: np.ndarray | None,
               not_followed_by: dict[int, frozenset[int]] | None = None) -> Walk:
    """The parser-independent walk of ``mode``'s DFA over part of the trie (cached).

    ``entry is None``: from the root in DFA state ``q``, cached as ``key`` =
    ``(trie.fingerprint, q)``. Otherwise ``entry`` are nodes whose byte starts a new
    lexeme (from ``mode.start``), cached as ``key`` = ``(trie.fingerprint, mode.start,
    the nodes' bytes)``: a node group is named by its content, so equal keys mean equal
    groups (the lengths tell the two kinds apart). The walk itself is one compiled
    depth-first pass (``masks.kernels.lexer_walk_nodes``).
    """
    found = mode.walks.get(key)
    if found is not None:
        return found  # type: ignore[return-value]
    dfa = mode.dfa
    assert dfa is not None
    if entry is not None and entry.shape[0] <= _TINY_ENTRIES:
        tiny = _tiny_walk(trie, mode, entry, not_followed_by)
        if tiny is not None:
            return _keep(mode, key, tiny)
    words, dn, df = lexer_walk_nodes(trie, dfa, q, entry, mode.start)
    live_words: Live = None
    nz = nonzero_words(words, _SPARSE_WORDS)
    if nz.size > _SPARSE_WORDS:
        live_words = words.view(np.int32)
        live_words.setflags(write=False)
    elif nz.size:
        live_words = (nz, words[nz].view(np.int32))
    # group the ending nodes by the set of lexemes accepted (many DFA states, e.g. every
    # keyword prefix of NAME, finish the same lexemes: one parser step per set)
    groups: list[Group] = []
    if dn.size:
        groups = _group_ends(trie, mode, dn, df, not_followed_by)
    return _keep(mode, key, (live_words, groups))


def _keep(mode: LexerMode, key: tuple[object, ...], walk: Walk) -> Walk:
    """Cache ``walk`` under ``key`` (bounded: past MAX_WALKS the cache starts over)."""
    if len(mode.walks) >= MAX_WALKS:
        mode.walks.clear()  # bounded memory: start over rather than grow without limit
    mode.walks[key] = walk
    return walk


def _tiny_walk(trie: PreorderTrie, mode: LexerMode, entry: np.ndarray,
               not_followed_by: dict[int, frozenset[int]] | None) -> Walk | None:
    """:func:`lexer_walk` from one or two entry nodes in plain Python, or None once it
    has visited more than ``_TINY_VISITS`` nodes or meets a row not computed yet (the
    compiled walk then runs from the start).

    Most entry walks of expression grammars are a lexeme of one or two bytes followed
    by a byte that ends it: ``----`` (Llama-3 has long runs of dashes as tokens) is a
    unary minus per byte, one round and one new walk each; 83% of the new walks of a
    cold arithmetic pass keep at most four tokens and lexeme ends together. On such
    walks that keep tokens and end lexemes, the compiled walk with its grouping took a
    median 14.7 us (allocations, dispatch, three kernel calls), this 5.4 us. Same result
    as the compiled walk, forks of split lexing included (``tests/test_grammar_masks.py``
    holds the two equal)."""
    dfa = mode.dfa
    assert dfa is not None
    byte, depth, skip, tok_bit = trie.byte, trie.depth, trie.skip, trie.tok_bit
    words: dict[int, int] = {}
    ends: list[tuple[int, int]] = []
    visits = 0
    with dfa_lock(dfa):  # rows are read as the compiled walk reads them
        table, class_of, accepting, forks = dfa.kernel_view()
        start = mode.start
        for e in entry.tolist():
            t = table.item(start, class_of.item(byte.item(e)))
            if t <= 0:
                if t < 0:
                    return None
                continue
            stack = {depth.item(e): t}
            i, stop = e, skip.item(e)
            while True:  # node i is live in state t: its tokens, then its subtree
                visits += 1
                if visits > _TINY_VISITS:
                    return None
                b = tok_bit.item(i)
                if b != 0:  # the node's token(s) stay inside the lexeme
                    toks = ([b - TOKEN_BIT_OFFSET] if b > 0 else
                            trie.tok_ids[trie.tok_ptr[i]:trie.tok_ptr[i + 1]].tolist())
                    for tok in toks:
                        words[tok >> 5] = words.get(tok >> 5, 0) | 1 << (tok & 31)
                i += 1
                while i < stop:  # the next live node of the subtree
                    s = stack[depth.item(i) - 1]
                    c = class_of.item(byte.item(i))
                    t = table.item(s, c)
                    if t > 0:
                        if forks is not None and accepting.item(s) and forks.item(s, c) > 0:
                            ends.append((i, -forks.item(s, c)))  # a lexeme may end here too
                        stack[depth.item(i)] = t
                        break
                    if t < 0:
                        return None
                    if accepting.item(s):
                        ends.append((i, s))
                    i = skip.item(i)
                    visits += 1
                    if visits > _TINY_VISITS:
                        return None
                else:
                    break
    live: Live = None
    if words:
        idx = np.fromiter(words, dtype=np.int64, count=len(words))
        live = (idx, np.array(list(words.values()), dtype=np.uint32).view(np.int32))
    if not ends:
        return live, []
    if not_followed_by and any(not_followed_by.keys() & mode.accepting(q) for _, q in ends):
        dn = np.array([n for n, _ in ends], dtype=np.int32)
        df = np.array([q for _, q in ends], dtype=np.int32)
        return live, _group_ends(trie, mode, dn, df, not_followed_by)
    by_acc: dict[frozenset[int], list[int]] = {}
    for node, q in ends:
        acc = mode.accepting(q)
        if acc:
            by_acc.setdefault(acc, []).append(node)
    groups: list[Group] = []
    for acc, nodes in by_acc.items():
        arr = np.array(sorted(nodes), dtype=np.int32)
        groups.append((acc, arr, arr.tobytes()))
    return live, groups


def _group_ends(trie: PreorderTrie, mode: LexerMode, dn: np.ndarray, df: np.ndarray,
                not_followed_by: dict[int, frozenset[int]] | None) -> list[Group]:
    """Ending nodes ``dn`` grouped by the set of lexemes accepted in their
    state ``df``: many DFA states (every keyword prefix of NAME) finish the same lexemes,
    so the parser is asked once per set. Two compiled calls (the distinct states, then
    the nodes bucketed by group, ascending) around one Python pass over the distinct
    states: numpy's ``unique``/``argsort``/``searchsorted``/``sort`` took ~18 us a walk,
    and walks end after every lexeme boundary. Lexemes with a lookahead rule end only
    before bytes they allow: their nodes are split by their byte (the first byte of
    what follows)."""
    states = distinct_sorted(df)
    gid: dict[frozenset[int], int] = {}
    split: dict[frozenset[int], list[np.ndarray]] = {}
    group_of = np.empty(len(states), dtype=np.int64)
    for k, q in enumerate(states.tolist()):
        acc = mode.accepting(q)
        if not_followed_by and any(i in not_followed_by for i in acc):
            group_of[k] = -1  # split by byte here
            nodes = dn[df == q]
            node_bytes = trie.byte[nodes]
            for b in np.unique(node_bytes).tolist():
                allowed = frozenset(i for i in acc if b not in not_followed_by.get(i, ()))
                if allowed:
                    split.setdefault(allowed, []).append(nodes[node_bytes == b])
        else:
            group_of[k] = gid.setdefault(acc, len(gid)) if acc else -1
    bucketed, bounds = bucket_nodes(dn, df, states, group_of, len(gid))
    groups: list[Group] = []
    for acc, k in gid.items():
        nodes = bucketed[bounds[k]:bounds[k + 1]]
        extra = split.pop(acc, None)
        if extra is not None:
            nodes = np.sort(np.concatenate([nodes, *extra]))
        groups.append((acc, nodes, nodes.tobytes()))
    for acc, parts in split.items():
        nodes = np.sort(np.concatenate(parts))
        groups.append((acc, nodes, nodes.tobytes()))
    return groups


def _trie_words(trie: PreorderTrie) -> int:
    """Bitmask words covering every token id of ``trie``'s vocabulary."""
    return (trie.node_of_token.size + 31) // 32
