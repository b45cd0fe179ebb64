"""Regular constraints: a regex (or byte AST, or list of choices) compiled against a vocabulary.

The automaton is one :class:`~constrained.automata.dfa.LazyDFA`; a matcher's state is a
DFA state id. The first time a state is seen, one trie walk gives every token's end
state; the allowed-token bitmask and the (token id -> end state) table are cached per
state on the compiled constraint, so later masks are a copy and advances a lookup.
Compiled constraints are cached per (pattern, flags, vocabulary fingerprint, limits).
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from .automata.ast import Node, alt, literal
from .errors import CompileError
from .masks.bitmask import bitmask_words
from .masks.trie import TokenTrie
from .masks.walk import _walk_from, live_tokens, walk_sparse
from .matcher import Constraint, Matcher
from .vocab import Vocabulary

__all__ = ["RegexConstraint", "RegexMatcher", "StateMasks", "compile_regex", "compile_regex_node",
           "compile_choice"]

# per-constraint budget for cached per-state walk results (bytes)
_STATE_CACHE_BYTES = 256 * 1024 * 1024


# transitions a walk may take on the uncompressed trie before the class-compressed one is built
_BYTE_TRIE_BUDGET = 5_000
# allowed-token count up to which the token -> end-state lookup is a dict, not a dense array
_DICT_LOOKUP_MAX = 4096
# allowed-token count up to which that dict is built with the walk result (cheap); above,
# only after a few advances from the state (measured: a 1k-entry dict costs ~60 us, more
# than the DFA steps of the few tokens advanced from a state in a cold pass)
_EAGER_DICT_MAX = 64
# walks with at least this many live nodes look their token set up by node set; at most
# this many distinct node sets are kept per constraint (FIFO)
_SHARE_MIN_NODES = 2
_SHARE_MAX_SETS = 64
# advances from one (large) state after which its token -> end-state table is built
_DENSE_AFTER = 4


class StateMasks:
    """Cached walk result of one DFA state: allowed non-EOS tokens and where each leads.

    ``words``: read-only int32 bitmask row; ``token_ids`` / ``end_states``: the allowed
    tokens (walk order) and the DFA state after each. ``end_state(tid)``: the DFA steps
    the token's bytes until this state has been advanced from a few times, then a lookup
    table is built (a dict for few tokens, a dense array for many), so cold walks stay cheap.
    """

    __slots__ = ("state", "words", "token_ids", "end_states", "_lookup", "_misses", "_dfa",
                 "_tokens", "nbytes")

    def __init__(self, state: int, words: np.ndarray, token_ids: np.ndarray,
                 end_states: np.ndarray, dfa: Any, tokens: tuple[bytes, ...]) -> None:
        self.state = state
        self.words = words
        self.token_ids = token_ids
        self.end_states = end_states
        self._lookup: dict[int, int] | np.ndarray | None = None
        self._misses = 0
        self._dfa = dfa
        self._tokens = tokens
        if token_ids.shape[0] <= _EAGER_DICT_MAX:
            self._lookup = dict(zip(token_ids.tolist(), end_states.tolist()))
            extra = 100 * token_ids.shape[0]
        elif token_ids.shape[0] <= _DICT_LOOKUP_MAX:
            extra = 100 * token_ids.shape[0]  # room for the dict built on repeated advances
        else:
            extra = 4 * len(tokens)  # room for the dense table
        self.nbytes = int(words.nbytes + token_ids.nbytes + end_states.nbytes + extra)

    def end_state(self, token_id: int) -> int:
        """DFA state after token ``token_id`` (0 if it is not allowed here)."""
        lookup = self._lookup
        if isinstance(lookup, dict):
            return lookup.get(token_id, 0)
        if lookup is not None:
            return int(lookup[token_id]) if token_id < lookup.shape[0] else 0
        if token_id >= len(self._tokens) or not (int(self.words[token_id >> 5]) >> (token_id & 31)) & 1:
            return 0
        self._misses += 1
        if self._misses >= _DENSE_AFTER and self.token_ids.shape[0] <= _DICT_LOOKUP_MAX:
            table = dict(zip(self.token_ids.tolist(), self.end_states.tolist()))
            self._lookup = table  # benign race: every thread builds the same table
            return table.get(token_id, 0)
        if self._misses >= _DENSE_AFTER:
            dense = np.zeros(len(self._tokens), dtype=np.int32)
            dense[self.token_ids] = self.end_states
            dense.setflags(write=False)
            self._lookup = dense  # benign race: every thread builds the same table
            return int(dense[token_id])
        return int(self._dfa.walk(self.state, self._tokens[token_id]))


class RegexConstraint(Constraint):
    """A regular language over bytes, compiled against one vocabulary (immutable, thread-safe)."""

    def __init__(self, node: Node, vocab: Vocabulary, limits: Any = None,
                 source: str | None = None) -> None:
        from .automata.dfa import LazyDFA

        self.vocab = vocab
        self.node = node
        self.source = source
        self.dfa = LazyDFA([node], limits)
        if self.dfa.start <= 0:
            where = f" {source!r}" if source is not None else ""
            raise CompileError(f"the constraint{where} matches no string at all")
        self.trie = TokenTrie.for_vocab(vocab)
        self._walk_trie: TokenTrie | None = None  # trie compressed by the DFA's byte classes
        t = self.trie
        self._root_kids = np.arange(int(t.child_start[0]), int(t.child_end[0]), dtype=np.int32)
        self._root_bytes = t.byte[self._root_kids]
        self._root_sizes = t.subtree_size[self._root_kids]
        self._n_words = bitmask_words(vocab.logit_width)
        self._states: dict[int, StateMasks] = {}
        # live-node set of a walk -> (token ids, tokens per node, bitmask row), shared
        # by DFA states whose walks reach the same nodes
        self._node_sets: dict[tuple[bool, bytes], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._cached_bytes = 0
        self._lock = threading.Lock()
        self._frozen = True

    def __setattr__(self, name: str, value: Any) -> None:
        if getattr(self, "_frozen", False):
            raise AttributeError(f"a compiled constraint is immutable (cannot set {name!r})")
        object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        return f"RegexConstraint({self.source!r}, {self.vocab!r})"

    def matcher(self, max_rollback: int | None = None) -> "RegexMatcher":
        return RegexMatcher(self, self.dfa.start, max_rollback)

    def accepts(self, data: bytes | str) -> bool:
        if isinstance(data, str):
            data = data.encode("utf-8")
        state = self._run(self.dfa.start, bytes(data))
        return state > 0 and bool(self.dfa.is_accepting(state))

    def state_masks(self, state: int) -> StateMasks:
        """The cached walk result of DFA ``state`` (computed on first use)."""
        entry = self._states.get(state)
        if entry is not None:
            return entry
        trie = self._walk_trie
        result = None
        if trie is None:
            # small walks run on the shared byte trie; the first big one pays for a trie
            # compressed by this DFA's byte classes, which all later walks then use.
            # The first level comes from the state's transition row (no numpy walk
            # round); bound on the walk: the subtrees under the live first bytes.
            t = self.trie
            first = self.dfa.byte_transitions(state)[self._root_bytes]
            live = first > 0
            bound = int(self._root_sizes[live].sum())
            root = np.zeros(1, dtype=np.int32)
            start = np.full(1, state, dtype=np.int32)
            if bound <= _BYTE_TRIE_BUDGET:
                result = _walk_from(t, self.dfa, self._root_kids[live], first[live].astype(np.int32))
            else:
                result = _walk_from(t, self.dfa, self._root_kids[live], first[live].astype(np.int32),
                                    max_steps=_BYTE_TRIE_BUDGET)
            if result is not None:
                trie = self.trie
                result = (np.concatenate((root, result[0])), np.concatenate((start, result[1])))
            else:
                trie = self.trie.compress(self.dfa.class_of)
                object.__setattr__(self, "_walk_trie", trie)
        if result is None:
            # compressed tries are small and deep: scalar steps pay off earlier (measured:
            # 8192 with the walk's cached Python lists, i.e. tries of <= 65536 nodes)
            result = walk_sparse(trie, self.dfa, state,
                                 scalar_finish=96 if trie is self.trie
                                 else 8192 if trie.n_nodes <= 1 << 16 else 512)
            assert result is not None
        nodes, node_states = result
        shared = None
        key: tuple[bool, bytes] | None = None
        if trie.node_token_ptr is not None and nodes.shape[0] >= _SHARE_MIN_NODES:
            # DFA states with the same live trie nodes allow the same tokens (e.g. the
            # positions of a counted repeat): reuse the token ids and the bitmask row,
            # only the end states differ (same walk order, so one repeat gives them)
            key = (trie is self.trie, nodes.tobytes())
            shared = self._node_sets.get(key)
        if shared is not None:
            ids, counts, words = shared
            ends = np.repeat(node_states, counts)
        else:
            ids, ends = live_tokens(trie, nodes, node_states)
            words = self._words_of(ids)
            ptr = trie.node_token_ptr
            if key is not None and ptr is not None:
                counts = ptr[nodes + 1] - ptr[nodes]
                for a in (words, ids):
                    a.setflags(write=False)
                with self._lock:
                    while len(self._node_sets) >= _SHARE_MAX_SETS:
                        self._node_sets.pop(next(iter(self._node_sets)))
                    self._node_sets[key] = (ids, counts, words)
        for a in (words, ids, ends):
            a.setflags(write=False)
        entry = StateMasks(state, words, ids, ends, self.dfa, self.vocab.tokens)
        with self._lock:
            existing = self._states.get(state)
            if existing is not None:
                return existing
            # FIFO eviction under a byte budget (read path stays lock-free)
            while self._states and self._cached_bytes + entry.nbytes > _STATE_CACHE_BYTES:
                old = next(iter(self._states))
                object.__setattr__(self, "_cached_bytes", self._cached_bytes - self._states.pop(old).nbytes)
            self._states[state] = entry
            object.__setattr__(self, "_cached_bytes", self._cached_bytes + entry.nbytes)
        return entry

    def _words_of(self, ids: np.ndarray) -> np.ndarray:
        """The bitmask row (int32[n_words]) with the bits of ``ids`` set."""
        if ids.shape[0] <= 8:  # a handful of tokens: Python ors beat numpy calls
            acc = np.zeros(self._n_words, dtype=np.uint32)
            for i in ids.tolist():
                acc[i >> 5] |= 1 << (i & 31)
            return acc.view(np.int32)
        if ids.shape[0] <= 512:  # few tokens: set their bits directly (measured crossover)
            acc = np.zeros(self._n_words, dtype=np.uint32)
            np.bitwise_or.at(acc, ids >> 5, np.left_shift(np.uint32(1), (ids & 31).astype(np.uint32)))
            return acc.view(np.int32)
        allowed = np.zeros(self._n_words * 32, dtype=bool)
        allowed[ids] = True
        return np.packbits(allowed, bitorder="little").view("<i4").astype(np.int32, copy=False)

    def _run(self, state: int, data: bytes) -> int:
        step = self.dfa.step
        for b in data:
            state = step(state, b)
            if state <= 0:
                return 0
        return state


class RegexMatcher(Matcher[int]):
    """Matcher of a :class:`RegexConstraint`; the state is a DFA state id (> 0)."""

    _constraint: RegexConstraint

    def __init__(self, constraint: RegexConstraint, initial_state: int,
                 max_rollback: int | None = None) -> None:
        super().__init__(constraint, initial_state, max_rollback)
        self._dfa = constraint.dfa
        self._masks = constraint.state_masks

    def _allowed_words(self, state: int) -> np.ndarray:
        return self._masks(state).words

    def _advance_token(self, state: int, token_id: int) -> int | None:
        end = self._masks(state).end_state(token_id)
        return end if end > 0 else None

    def _advance_bytes(self, state: int, data: bytes) -> int | None:
        end = self._constraint._run(state, data)
        return end if end > 0 else None

    def _is_accepting(self, state: int) -> bool:
        return bool(self._dfa.is_accepting(state))

    def _forced_bytes(self, state: int) -> bytes:
        return bytes(self._dfa.forced_bytes(state))


class _ConstraintCache:
    """Bounded LRU of compiled constraints, keyed explicitly (thread-safe)."""

    def __init__(self, capacity: int = 64) -> None:
        self._capacity = capacity
        self._items: OrderedDict[Any, RegexConstraint] = OrderedDict()
        self._lock = threading.Lock()

    def get_or_build(self, key: Any, build: Any) -> RegexConstraint:
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                return hit
        built = build()
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                return hit
            self._items[key] = built
            while len(self._items) > self._capacity:
                self._items.popitem(last=False)
        return built


_CACHE = _ConstraintCache()


def _limits_key(limits: Any) -> Any:
    if limits is None:
        return None
    try:
        hash(limits)
        return limits
    except TypeError:
        return id(limits)


def compile_regex(pattern: str, vocab: Vocabulary, flags: int = 0,
                  limits: Any = None) -> RegexConstraint:
    """Compile a Python ``re`` pattern (full-match semantics) against ``vocab``.

    Raises ``RegexSyntaxError`` / ``RegexUnsupported`` for bad patterns and
    ``ConstraintTooComplex`` when ``limits`` are exceeded. Cached per
    (pattern, flags, vocabulary fingerprint, limits).
    """
    if not isinstance(pattern, str):
        raise CompileError(f"pattern must be a str, got {type(pattern).__name__}")
    if not isinstance(vocab, Vocabulary):
        raise CompileError(f"vocab must be a Vocabulary, got {type(vocab).__name__}")

    def build() -> RegexConstraint:
        from .automata.regex_syntax import parse_regex

        return RegexConstraint(parse_regex(pattern, flags), vocab, limits, source=pattern)

    key = ("regex", pattern, int(flags), vocab.fingerprint, _limits_key(limits))
    return _CACHE.get_or_build(key, build)


def compile_regex_node(node: Node, vocab: Vocabulary, limits: Any = None) -> RegexConstraint:
    """Compile a byte-level regex AST (``constrained.automata.ast``) against ``vocab`` (cached)."""
    if not isinstance(vocab, Vocabulary):
        raise CompileError(f"vocab must be a Vocabulary, got {type(vocab).__name__}")
    key = ("node", node, vocab.fingerprint, _limits_key(limits))
    return _CACHE.get_or_build(key, lambda: RegexConstraint(node, vocab, limits))


def compile_choice(choices: Sequence[str | bytes], vocab: Vocabulary,
                   limits: Any = None) -> RegexConstraint:
    """A constraint accepting exactly one of ``choices`` (strings are UTF-8 encoded)."""
    if isinstance(choices, (str, bytes)) or not isinstance(choices, Sequence):
        raise CompileError("choices must be a list of strings")
    if not choices:
        raise CompileError("choices must not be empty")
    for choice in choices:
        if not isinstance(choice, (str, bytes)):
            raise CompileError(f"choice {choice!r} is not a string")
    node = alt(*(literal(choice) for choice in dict.fromkeys(choices)))
    return compile_regex_node(node, vocab, limits)
