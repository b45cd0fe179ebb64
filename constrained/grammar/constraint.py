"""Grammar constraints: a compiled grammar bound to a vocabulary, and its matcher."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..automata import Limits
from ..automata.dfa import LazyDFA
from ..masks.bitmask import bitmask_words
from ..masks.kernels import PreorderTrie, compress_preorder
from ..masks.slices import SliceLevels
from ..masks.trie import TokenTrie
from ..matcher import Constraint, Matcher
from ..parser.earley import ParserLimits
from ..vocab import Vocabulary
from .compiled import CompiledGrammar, LexState

#: a grammar matcher's state: every lexing still alive (see ``Grammar.lexing``)
Readings = tuple[LexState, ...]
from .ir import Grammar
from .token_masks import allowed_token_words

# grammars whose walk partition has at most this many byte classes walk a compressed trie
_COMPRESS_MAX_CLASSES = 16


class GrammarConstraint(Constraint):
    """A context-free grammar over lexemes compiled against one vocabulary (immutable)."""

    def __init__(self, grammar: Grammar, vocab: Vocabulary, *, dfa_limits: Limits | None = None,
                 parser_limits: ParserLimits | None = None,
                 compiled: CompiledGrammar | None = None, explore_lexer: bool = True) -> None:
        self.vocab = vocab
        self.grammar = grammar
        # a CompiledGrammar is vocabulary-independent: one may serve several vocabularies
        self.compiled = compiled or CompiledGrammar(grammar, dfa_limits, parser_limits,
                                                    explore_lexer)
        self.trie = TokenTrie.for_vocab(vocab)
        self._walk_trie: PreorderTrie | None = None
        # per lexer DFA (one per grammar; per mode past the growing lexer's cap): slice checks
        self._levels: dict[LazyDFA, SliceLevels] = {}
        _ = self.trie.slices  # built once per vocabulary
        # the walk trie of this grammar and vocabulary (a compressed copy for grammars with
        # few byte classes, ~3 ms on Llama-3): part of compiling, not of the first mask
        self.walk_trie()
        self.n_words = bitmask_words(vocab.logit_width)

    @classmethod
    def from_compiled(cls, compiled: CompiledGrammar, vocab: Vocabulary) -> GrammarConstraint:
        """Bind an already compiled grammar to ``vocab`` (masks are cached per vocabulary)."""
        return cls(compiled.grammar, vocab, compiled=compiled)

    def walk_trie(self) -> PreorderTrie:
        """The trie masks walk (preorder layout): the vocabulary's, with sibling edges
        merged by the lexer DFA's byte classes when there are few (every walk treats a
        class alike; arithmetic, 11 classes: 274k -> 9k nodes on Llama-3 in ~3 ms).
        Grammars that tell letters apart (JSON literals, SQL and C keywords: 41-58
        classes) would only halve the trie for 30-110 ms, so they walk the byte trie."""
        trie = self._walk_trie
        if trie is None:
            part = self.compiled.walk_partition()
            trie = self.trie.preorder
            if part is not None and int(np.max(part)) < _COMPRESS_MAX_CLASSES:
                trie = compress_preorder(trie, part) or trie
            self._walk_trie = trie  # benign race: every thread builds the same trie
        return trie

    def _slice_levels(self, dfa: LazyDFA) -> SliceLevels:
        """The slice check of one lexer DFA (see ``CompiledGrammar.lexer``)."""
        found = self._levels.get(dfa)
        if found is None:
            found = self._levels[dfa] = SliceLevels(dfa, self.trie.slices.longest)  # benign race
        return found

    def matcher(self, max_rollback: int | None = None) -> GrammarMatcher:
        return GrammarMatcher(self, (self.compiled.initial,), max_rollback)

    def allowed_words(self, state: LexState) -> np.ndarray:
        """Bitmask words of the tokens allowed in ``state``, cached on the parser set."""
        key = (self.trie.fingerprint, state.mode, state.q, state.in_lexeme, state.n_ignored)
        cache = state.parser.cache
        words = cache.get(key)
        if words is None:
            trie = self.walk_trie()
            level = 0
            if trie is self.trie.preorder and state.mode.dfa is not None:
                # slices of tokens that stay inside the open lexeme wholesale are OR-ed in
                # (masks.slices); the walks then skip them
                level = self._slice_levels(state.mode.dfa)(state.q)
                trie = self.trie.slices.tries[level]
            words = allowed_token_words(self.compiled, trie, state, self.n_words)
            self.trie.slices.add_to(words, level)
            words.setflags(write=False)
            cache[key] = words
        return words  # type: ignore[return-value]


class GrammarMatcher(Matcher[Readings]):
    """Per-sequence matcher over immutable readings: a tuple of :class:`LexState`, one
    per lexing still alive (one unless the grammar keeps every lexing)."""

    _constraint: GrammarConstraint

    def _allowed_words(self, state: Readings) -> np.ndarray:
        words = self._constraint.allowed_words(state[0])
        if len(state) > 1:
            words = words.copy()
            for st in state[1:]:
                np.bitwise_or(words, self._constraint.allowed_words(st), out=words)
        return words

    def _advance_bytes(self, state: Readings, data: bytes) -> Readings | None:
        return self._constraint.compiled.advance_all(state, data)

    def _is_accepting(self, state: Readings) -> bool:
        compiled = self._constraint.compiled
        return any(compiled.is_accepting(st) for st in state)

    def _forced_bytes(self, state: Readings) -> bytes:
        compiled = self._constraint.compiled
        forced = compiled.forced_bytes(state[0])
        for st in state[1:]:  # what every reading forces
            other = compiled.forced_bytes(st)
            n = 0
            while n < min(len(forced), len(other)) and forced[n] == other[n]:
                n += 1
            forced = forced[:n]
        return forced


def compile_grammar(grammar: Grammar, vocab: Vocabulary, **options: Any) -> GrammarConstraint:
    """Compile a grammar IR against ``vocab``. Options: ``dfa_limits=``,
    ``parser_limits=``, ``explore_lexer=`` (default True: determinise a small lexer at
    compile time; schemas pass False to keep their time to first mask low)."""
    return GrammarConstraint(grammar, vocab, **options)
