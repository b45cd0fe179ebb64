"""A grammar compiled for matching: lexeme ids, Earley parser, lexer modes, byte stepping.

Lexing is greedy and contextual: at each point the lexer matches only the lexemes the
parser expects (plus ``%ignore`` lexemes); a lexeme ends only when the next byte cannot
extend any of them (maximal munch), and the span then counts as every expected lexeme
that accepts it. One lazy DFA covers all lexemes; a mode (an allowed set) is a start
state in it, made on first use, so a grammar pays only for the contexts it reaches and
contexts share every state after their first byte.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from ..automata import DEFAULT_LIMITS, LazyDFA, Limits
from ..automata.ast import Node, structural_ids
from ..automata.nfa import NFA, build_nfa, union_nfa
from ..errors import ConstraintTooComplex, GrammarSyntaxError
from ..parser.earley import EarleyParser, EarleySet, ParserLimits
from .ir import Grammar

_MISSING = object()
#: first field of :meth:`CompiledGrammar.finish_lexemes`' memo keys on an Earley set's
#: cache (``grammar/token_masks.py`` reads that memo inline on its hot path)
FINISH_MEMO = "finish"
#: grammars with more lexemes than this (large schema grammars) build a DFA per lexer mode:
#: sizing the union up front took seconds at 1,567 lexemes, most never reached
MAX_SHARED_LEXEMES = 256
#: NFA states a growing lexer (above) may hold, as a multiple of Limits.max_nfa_states: it
#: replaces per-mode DFAs whose unions together held more; past it, new modes build their own
GROWING_NFA_FACTOR = 4
#: readings (lexings) a grammar that keeps every lexing may follow at once
MAX_READINGS = 64
#: lexer DFA states determinised at compile time (beyond it, states are made on demand)
EXPLORE_STATES = 1024
#: ... for lexers whose NFA has at most this many states
EXPLORE_MAX_NFA = 2000


class LexerMode:
    """One lexer context: the allowed lexeme ids and where they start in the grammar's DFA.

    All modes share one lazy DFA over every distinct lexeme regex of the grammar
    (``CompiledGrammar.lexer``): a mode is only a start state (:meth:`LazyDFA.start_for`
    its regexes), so states reached after the first byte, their rows, accepting sets and
    cached trie walks are shared by every context that keeps the same lexemes alive
    (inside a string is one state whichever context opened it). Grammars with very many
    lexemes, or whose lexemes together exceed the NFA size limit (schemas with many large
    patterns), share one growing DFA whose lexemes are added as modes need them; past its
    cap, a mode gets a DFA of its own over its lexemes. ``dfa`` is None when nothing may
    follow (the parse is complete and no ignore is allowed).

    A DFA lexeme is a distinct regex; ``members`` names the grammar lexemes spelled by
    it, and :meth:`accepting` returns all of them (a superset of the mode's own ids where
    lexemes share a regex; harmless: the parser only scans the ones it expects).
    """

    __slots__ = ("_accepting", "_members", "_to_dfa", "dfa", "ids", "start", "walks")

    def __init__(self, ids: tuple[int, ...], shared: LazyDFA | None,
                 dfa_ids: tuple[int, ...], members: Sequence[tuple[int, ...]],
                 limits: Limits | None, accepting: dict[int, frozenset[int]],
                 walks: dict[tuple[object, ...], object],
                 lexeme_nfa: Callable[[int], NFA], track_forks: bool = False) -> None:
        self.ids = ids
        self._members = members
        self.dfa: LazyDFA | None
        self._to_dfa: tuple[int, ...] | None
        if not ids:
            self.dfa, self.start, self._to_dfa = None, 0, None
            self._accepting: dict[int, frozenset[int]] = {}
            self.walks: dict[tuple[object, ...], object] = {}
        elif shared is not None:
            self.dfa = shared
            self.start = shared.start_for(frozenset(dfa_ids))
            # the shared DFA's lexeme k is the grammar's DFA lexeme k; both caches are
            # shared with every mode of the grammar (walks are filled by token_masks.py)
            self._to_dfa = None
            self._accepting = accepting
            self.walks = walks
        else:
            # the union of all lexemes is too big for one automaton: this mode's own DFA,
            # over one cached NFA per regex (lowering the regexes again for every mode
            # cost most of a cold mask on big schemas)
            parts = [lexeme_nfa(k) for k in dfa_ids]
            self.dfa = LazyDFA([], limits, nfa=union_nfa(parts, limits), track_forks=track_forks)
            self.start = int(self.dfa.start)
            self._to_dfa = dfa_ids
            self._accepting = {}
            self.walks = {}

    def accepting(self, q: int) -> frozenset[int]:
        """Grammar lexeme ids that accept in DFA state ``q`` (empty when not accepting);
        ``q < 0`` names fork id ``-q`` instead: the lexemes that may end there
        (``LazyDFA.fork_lexemes``)."""
        found = self._accepting.get(q)
        if found is None:
            if q == 0 or self.dfa is None or (q > 0 and not self.dfa.is_accepting(q)):
                found = frozenset()
            else:
                lex = self.dfa.accepting_lexemes(q) if q > 0 else self.dfa.fork_lexemes(-q)
                to_dfa, members = self._to_dfa, self._members
                found = frozenset(i for k in lex
                                  for i in members[k if to_dfa is None else to_dfa[k]])
            self._accepting[q] = found  # benign race: every thread computes the same set
        return found


class LexState(NamedTuple):
    """Immutable matching state: parser set, lexer mode, DFA state inside the lexeme.

    ``in_lexeme`` is False right after a lexeme boundary (no byte of the next lexeme read);
    ``n_ignored`` counts ignored lexemes in a row (bounded by ``Grammar.max_ignore``).
    A named tuple: masks make thousands per cold mask, and a frozen dataclass's
    ``__init__`` (one ``object.__setattr__`` per field) cost ~4x a tuple's.
    """

    parser: EarleySet
    mode: LexerMode
    q: int
    in_lexeme: bool
    n_ignored: int


#: ``tuple.__new__(LexState, fields)``: a LexState without the named tuple's Python-level
#: ``__new__`` (half the cost; fresh states are made per boundary in every cold mask)
_new_state = tuple.__new__


class CompiledGrammar:
    """A :class:`Grammar` lowered to ids: the parser, the lexemes and the lexer modes.

    Immutable in meaning; the mode table and the parser's interned sets grow on demand
    under locks, so one instance serves many threads and sequences.
    """

    def __init__(self, grammar: Grammar, dfa_limits: Limits | None = None,
                 parser_limits: ParserLimits | None = None, explore_lexer: bool = True) -> None:
        self.grammar = grammar
        rules = _productive_rules(grammar)
        self.lexeme_names: tuple[str, ...] = tuple(sorted(grammar.lexemes))
        lex_id = {n: i for i, n in enumerate(self.lexeme_names)}
        nonterms = sorted(rules)
        nt_id = {n: len(self.lexeme_names) + i for i, n in enumerate(nonterms)}
        sym = {**lex_id, **nt_id}
        productions = [(nt_id[lhs], tuple(sym[s] for s in alt))
                       for lhs in nonterms for alt in rules[lhs]]
        self.symbol_names = {v: k for k, v in sym.items()}
        self.nodes: tuple[Node, ...] = tuple(grammar.lexemes[n].regex for n in self.lexeme_names)
        self.ignore_ids = frozenset(lex_id[n] for n in grammar.ignore)
        # lexeme id -> bytes that may not follow it (trailing negative lookahead)
        self.not_followed_by: dict[int, frozenset[int]] = {
            lex_id[n]: lx.not_followed_by for n, lx in grammar.lexemes.items()
            if lx.not_followed_by}
        self.max_ignore = grammar.max_ignore
        self.all_lexings = grammar.lexing == "all"
        # lexemes spelled by equal regexes share one DFA lexeme: schema grammars repeat a
        # value language per property (Github_ultra---o15627: 1,503 lexemes, 350 distinct
        # regexes), and copies in different modes made disjoint DFA states for one language
        # (structural ids, not node hashes: hashing compares trees, ~24 M calls there)
        dfa_of: dict[int, int] = {}
        dfa_lexeme: list[int] = []
        dfa_nodes: list[Node] = []
        members: list[list[int]] = []
        for i, (sid, node) in enumerate(zip(structural_ids(self.nodes), self.nodes)):
            k = dfa_of.get(sid)
            if k is None:  # the first lexeme spelled by this regex
                k = dfa_of[sid] = len(dfa_nodes)
                dfa_nodes.append(node)
                members.append([])
            dfa_lexeme.append(k)
            members[k].append(i)
        self.dfa_lexeme: tuple[int, ...] = tuple(dfa_lexeme)
        self.dfa_nodes: tuple[Node, ...] = tuple(dfa_nodes)
        self._members = tuple(tuple(m) for m in members)
        self.parser = EarleyParser(len(self.lexeme_names), productions, nt_id[grammar.start],
                                   parser_limits)
        # one lazy DFA over every lexeme; lexer modes are start states in it. Past
        # MAX_SHARED_LEXEMES or the NFA size limit, the DFA grows lexeme by lexeme
        self._dfa_limits = dfa_limits
        self.lexer: LazyDFA | None = None
        self._growing = False
        if 0 < len(self.dfa_nodes) <= MAX_SHARED_LEXEMES:
            try:
                self.lexer = LazyDFA(self.dfa_nodes, dfa_limits, track_forks=self.all_lexings)
            except ConstraintTooComplex:
                pass  # too big as one automaton built up front
        if (explore_lexer and self.lexer is not None
                and self.lexer.nfa.n_states <= EXPLORE_MAX_NFA):
            # small lexers of hand-written grammars: determinise up front what the start
            # over every lexeme reaches (most states any lexer mode uses after its first
            # byte), so cold masks rarely pause for a DFA row (~20 us each; 140-300 per
            # cold pass on the benchmark grammars, 3-8 ms here). Schema grammars turn it
            # off: a document visits few of their states (keys), and their time to first
            # mask is 5 ms, not 50 (MaskBench sample: p50 4.5 -> 11 ms with it)
            self.lexer.start_for(frozenset(range(len(self.dfa_nodes))))
            self.lexer.explore_small(EXPLORE_STATES)
        if self.lexer is None and self.nodes:
            # one DFA whose lexemes are added as lexer modes first need them
            limits = dfa_limits or DEFAULT_LIMITS
            self.lexer = LazyDFA.growing(len(self.dfa_nodes), dfa_limits,
                                         GROWING_NFA_FACTOR * limits.max_nfa_states,
                                         track_forks=self.all_lexings)
            self._growing = True
        self._accepting: dict[int, frozenset[int]] = {}
        self._walks: dict[tuple[object, ...], object] = {}
        self._modes: dict[frozenset[int], LexerMode] = {}
        self._mode_of_expected: dict[tuple[frozenset[int], bool], LexerMode] = {}
        self._lexeme_nfas: dict[int, NFA] = {}
        self._lock = threading.Lock()
        self.initial = self.fresh(self.parser.initial, 0)  # type: ignore[arg-type]

    # -- lexer modes ------------------------------------------------------------------------
    def walk_partition(self) -> np.ndarray | None:
        """The byte partition trie walks may merge edges by (None: walk the byte trie).

        The shared lexer DFA's classes, refined so that every lookahead set
        (``not_followed_by``) is a union of classes (walks split ending nodes by byte)."""
        if self.lexer is None or self._growing:
            return None  # a growing lexer refines its classes as lexemes are added
        key = self.lexer.class_of.astype(np.int64)
        for banned in sorted(set(self.not_followed_by.values()), key=sorted):
            member = np.zeros(256, dtype=np.int64)
            member[sorted(banned)] = 1
            key = key * 2 + member
        return np.unique(key, return_inverse=True)[1].reshape(-1)

    def _lexeme_nfa(self, k: int) -> NFA:
        """The NFA of DFA lexeme ``k`` alone (built once; for the growing lexer and
        per-mode fallback DFAs)."""
        found = self._lexeme_nfas.get(k)
        if found is None:
            found = self._lexeme_nfas[k] = build_nfa([self.dfa_nodes[k]], self._dfa_limits)
        return found

    def mode(self, allowed: frozenset[int]) -> LexerMode:
        """The (cached) lexer mode over ``allowed`` lexeme ids."""
        m = self._modes.get(allowed)
        if m is None:
            shared = self.lexer
            dfa_ids = tuple(sorted({self.dfa_lexeme[i] for i in allowed}))
            if self._growing and allowed:
                try:
                    with self._lock:
                        assert shared is not None
                        missing = [k for k in dfa_ids if not shared.has_lexemes((k,))]
                        if missing:
                            shared.add_lexemes({k: self._lexeme_nfa(k) for k in missing})
                except ConstraintTooComplex:
                    shared = None  # the shared lexer is full: this mode gets a DFA of its own
            m = LexerMode(tuple(sorted(allowed)), shared, dfa_ids, self._members,
                          self._dfa_limits, self._accepting, self._walks, self._lexeme_nfa,
                          self.all_lexings)
            with self._lock:
                m = self._modes.setdefault(allowed, m)
        return m

    def fresh(self, parser: EarleySet, n_ignored: int) -> LexState:
        """The state at a lexeme boundary after ``parser`` (no byte of a lexeme read yet)."""
        ignoring = bool(self.ignore_ids) and (self.max_ignore is None
                                              or n_ignored < self.max_ignore)
        # keyed by the set's own frozenset, whose hash is cached: no union is built and
        # hashed per new parser set (sets share ``expected`` objects through predictions)
        key = (parser.expected, ignoring)
        mode = self._mode_of_expected.get(key)
        if mode is None:
            mode = self.mode(parser.expected | self.ignore_ids if ignoring else parser.expected)
            self._mode_of_expected[key] = mode  # benign race: same mode either way
        return _new_state(LexState, (parser, mode, mode.start, False, n_ignored))

    # -- stepping ------------------------------------------------------------------------
    def finish(self, state: LexState, q: int) -> LexState | None:
        """End the current lexeme in DFA state ``q``: feed it to the parser (or skip it as
        ignored) and return the fresh state after it; None if it cannot end here."""
        return self.finish_lexemes(state, state.mode.accepting(q))

    def finish_lexemes(self, state: LexState, acc: frozenset[int]) -> LexState | None:
        """End the current lexeme as any of the lexeme ids ``acc`` (see :meth:`finish`).

        A span that is both an expected lexeme and an ignored one is read as the
        expected lexeme (the parser reading is preferred; documented policy)."""
        if not acc:
            return None
        memo_key = (FINISH_MEMO, acc, state.n_ignored)
        memo = state.parser.cache.get(memo_key, _MISSING)
        if memo is not _MISSING:
            return memo  # type: ignore[return-value]
        result = self._finish_uncached(state, acc)
        state.parser.cache[memo_key] = result
        return result

    def _finish_uncached(self, state: LexState, acc: frozenset[int]) -> LexState | None:
        gram = acc & state.parser.expected  # a new frozenset already
        if gram:
            nxt = self.parser.scan(state.parser, gram)
            if nxt is not None:
                return self.fresh(nxt, 0)
        if acc & self.ignore_ids and (self.max_ignore is None or state.n_ignored < self.max_ignore):
            return self.fresh(state.parser, state.n_ignored + 1)
        return None

    def allowed_before(self, acc: frozenset[int], byte: int) -> frozenset[int]:
        """The lexemes of ``acc`` that may end right before ``byte`` (lookahead rules)."""
        if not self.not_followed_by:
            return acc
        return frozenset(i for i in acc if byte not in self.not_followed_by.get(i, ()))

    def step(self, state: LexState, byte: int) -> LexState | None:
        """The state after one byte (greedy: extend the lexeme whenever possible)."""
        mode = state.mode
        if mode.dfa is not None:
            q2 = int(mode.dfa.step(state.q, byte))
            if q2 > 0:
                return _new_state(LexState, (state.parser, mode, q2, True, state.n_ignored))
        if not state.in_lexeme:
            return None
        return self._end_then_step(state, mode.accepting(state.q), byte)

    def _end_then_step(self, state: LexState, acc: frozenset[int], byte: int) -> LexState | None:
        """End the open lexeme as ``acc`` and read ``byte`` as the next one's first."""
        nxt = self.finish_lexemes(state, self.allowed_before(acc, byte))
        if nxt is None or nxt.mode.dfa is None:
            return None
        q3 = int(nxt.mode.dfa.step(nxt.q, byte))
        if q3 <= 0:
            return None
        return LexState(nxt.parser, nxt.mode, q3, True, nxt.n_ignored)

    def step_all(self, state: LexState, byte: int) -> list[LexState]:
        """The states after one byte when every lexing is kept (``Grammar.lexing``): the
        greedy step, plus, where the byte goes on at a fork of the lexer DFA, the lexemes
        that end there finished and the byte read as the next lexeme's first."""
        mode = state.mode
        if mode.dfa is None:
            return []
        q2 = int(mode.dfa.step(state.q, byte))
        out: list[LexState] = []
        if q2 > 0:
            out.append(LexState(state.parser, mode, q2, True, state.n_ignored))
            fork = mode.dfa.fork(state.q, byte) if state.in_lexeme else 0
            if not fork:
                return out
            acc = mode.accepting(-fork)
        elif not state.in_lexeme:
            return out
        else:
            acc = mode.accepting(state.q)
        ended = self._end_then_step(state, acc, byte)
        if ended is not None:
            out.append(ended)
        return out

    def advance(self, state: LexState, data: bytes) -> LexState | None:
        """The state after ``data`` under greedy lexing; None when no accepted output
        continues this way (grammars that keep every lexing: :meth:`advance_all`)."""
        cur: LexState | None = state
        for b in data:
            cur = self.step(cur, b)  # type: ignore[arg-type]
            if cur is None:
                return None
        return cur

    def advance_all(self, states: tuple[LexState, ...], data: bytes) -> tuple[LexState, ...] | None:
        """The readings after ``data`` from every reading in ``states`` (one, unless the
        grammar keeps every lexing); None when none continues."""
        if not self.all_lexings:
            out = self.advance(states[0], data)
            return None if out is None else (out,)
        cur = states
        for b in data:
            seen: dict[LexState, None] = {}
            for st in cur:
                for nxt in self.step_all(st, b):
                    seen[nxt] = None
            if not seen:
                return None
            if len(seen) > MAX_READINGS:
                raise ConstraintTooComplex(
                    f"the input has more than {MAX_READINGS} lexings at once (Grammar.lexing='all')")
            cur = tuple(seen)
        return cur

    def is_accepting(self, state: LexState) -> bool:
        """Whether the input so far is a complete sentence (the open lexeme ends here)."""
        if not state.in_lexeme:
            return state.parser.accepting
        nxt = self.finish(state, state.q)
        return nxt is not None and nxt.parser.accepting

    def forced_bytes(self, state: LexState) -> bytes:
        """Bytes forced inside the current lexeme (none when it may end here)."""
        mode = state.mode
        if mode.dfa is None or (not state.in_lexeme and state.parser.accepting):
            return b""
        return bytes(mode.dfa.forced_bytes(state.q))

    def accepts(self, data: bytes) -> bool:
        """String-level full match (lexer + parser)."""
        sts = self.advance_all((self.initial,), data)
        return sts is not None and any(self.is_accepting(st) for st in sts)


def _productive_rules(grammar: Grammar) -> dict[str, list[tuple[str, ...]]]:
    """Rules with unproductive alternatives removed; errors for undefined symbols."""
    for r in grammar.rules.values():
        for alt in r.alternatives:
            for s in alt:
                if s not in grammar.rules and s not in grammar.lexemes:
                    raise GrammarSyntaxError(f"rule {r.name!r} uses undefined symbol {s!r}")
    for n in grammar.ignore:
        if n not in grammar.lexemes:
            raise GrammarSyntaxError(f"ignored lexeme {n!r} is not defined")
    if grammar.start not in grammar.rules:
        raise GrammarSyntaxError(f"start rule {grammar.start!r} is not defined")
    productive: set[str] = set(grammar.lexemes)
    changed = True
    while changed:
        changed = False
        for r in grammar.rules.values():
            if r.name not in productive and any(all(s in productive for s in a)
                                                for a in r.alternatives):
                productive.add(r.name)
                changed = True
    if grammar.start not in productive:
        raise GrammarSyntaxError(f"start rule {grammar.start!r} derives no finite string")
    return {r.name: [a for a in r.alternatives if all(s in productive for s in a)]
            for r in grammar.rules.values() if r.name in productive}
