"""Regular constraints: a regex (or byte AST, or list of choices) compiled against a vocabulary.

The automaton is a :class:`~constrained.automata.literals.TrieDFA` for small finite
languages (choices, word alternations) and a :class:`~constrained.automata.dfa.LazyDFA`
otherwise; a matcher's state is a DFA state id. The first time a state is seen, one trie walk gives every token's end
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
from .automata.dfa import TableDFA
from .errors import CompileError
from .gcpause import collector_paused
from .masks.bitmask import bitmask_words
from .masks.kernels import (
    MAX_COMPRESS_CLASSES,
    PreorderTrie,
    compress_preorder,
    end_state,
    walk_tokens,
)
from .masks.slices import SliceLevels
from .masks.trie import TokenTrie
from .matcher import Constraint, Matcher
from .vocab import Vocabulary

__all__ = [
    "RegexConstraint",
    "RegexMatcher",
    "StateMasks",
    "compile_choice",
    "compile_regex",
    "compile_regex_node",
]

# per-constraint budget for cached per-state walk results (bytes)
_STATE_CACHE_BYTES = 256 * 1024 * 1024


# byte-trie nodes visited by a constraint's walks after which the class-compressed trie is
# built: its cost (~3 ms on Llama-3's trie) in visits of wide walks (7-10 ns each, measured)
_COMPRESS_AFTER_VISITS = 400_000
#: byte classes from which a compressed trie is given up past an eighth of the byte trie
_MANY_CLASSES = 32
# regexes whose NFA has at most this many states are determinised at compile time when
# their DFA has at most _EAGER_DFA_STATES states (~10 us per state): masks then never stop
# to expand rows (measured: a phone-number regex's cold masks 16 -> 8 us mean, compile
# +0.2 ms); bigger automata (JSON schemas) stay lazy
_EAGER_NFA_STATES = 2_000
_EAGER_DFA_STATES = 64


class StateMasks:
    """Cached walk result of one DFA state: the allowed non-EOS tokens and where each leads.

    ``words``: read-only int32 bitmask row; ``nodes`` / ``states``: the live trie nodes of
    the walk (ascending) and the DFA state at each, so a token's end state is one binary
    search for the node it ends at (a few bytes per live node instead of per token).
    Tokens of slices allowed wholesale (``masks.slices``) are not in the walked trie: their
    end state is computed by stepping their bytes.
    """

    __slots__ = ("_dfa", "_tokens", "nbytes", "nodes", "state", "states", "trie", "words")

    def __init__(self, state: int, words: np.ndarray, nodes: np.ndarray, states: np.ndarray,
                 trie: PreorderTrie, dfa: Any, tokens: Sequence[bytes]) -> None:
        self.state = state
        self.words = words
        self.nodes = nodes
        self.states = states
        self.trie = trie
        self._dfa = dfa
        self._tokens = tokens
        self.nbytes = int(words.nbytes + nodes.nbytes + states.nbytes) + 200

    def end_state(self, token_id: int) -> int:
        """DFA state after token ``token_id`` (0 if it is not allowed here)."""
        if not 0 <= token_id < self.words.shape[0] * 32 \
                or not (int(self.words[token_id >> 5]) >> (token_id & 31)) & 1:
            return 0
        end = end_state(self.trie, self.nodes, self.states, token_id)
        if end == 0:  # allowed with its slice, not walked
            end = int(self._dfa.walk(self.state, self._tokens[token_id]))
        return end


class RegexConstraint(Constraint):
    """A regular language over bytes, compiled against one vocabulary (immutable, thread-safe)."""

    def __init__(self, node: Node, vocab: Vocabulary, limits: Any = None,
                 source: str | None = None) -> None:
        self.vocab = vocab
        self.node = node
        self.source = source
        self.dfa: TableDFA = _automaton(node, limits)
        if self.dfa.start <= 0:
            where = f" {source!r}" if source is not None else ""
            raise CompileError(f"the constraint{where} matches no string at all")
        self.trie = TokenTrie.for_vocab(vocab)
        # the trie compressed by the DFA's byte classes, once byte-trie walks cost more
        self._walk_pre: PreorderTrie | None = None
        self._compressible = self.dfa.n_classes <= MAX_COMPRESS_CLASSES
        self._byte_visits = 0
        # DFA state -> slices allowed wholesale
        self._slice_levels = SliceLevels(self.dfa, self.trie.slices.longest)
        _ = self.trie.slices  # built once per vocabulary
        self._n_words = bitmask_words(vocab.logit_width)
        self._states: dict[int, StateMasks] = {}
        self._cached_bytes = 0
        self._lock = threading.Lock()
        self._frozen = True

    def __setattr__(self, name: str, value: Any) -> None:
        if getattr(self, "_frozen", False):
            raise AttributeError(f"a compiled constraint is immutable (cannot set {name!r})")
        object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        return f"RegexConstraint({self.source!r}, {self.vocab!r})"

    def matcher(self, max_rollback: int | None = None) -> RegexMatcher:
        return RegexMatcher(self, self.dfa.start, max_rollback)

    def accepts(self, data: bytes | str) -> bool:
        if isinstance(data, str):
            data = data.encode("utf-8")
        state = self._run(self.dfa.start, bytes(data))
        return state > 0 and bool(self.dfa.is_accepting(state))

    def state_masks(self, state: int) -> StateMasks:
        """The cached walk result of DFA ``state`` (computed on first use).

        One compiled depth-first walk (``masks.kernels``) over the byte trie; once the
        byte-trie walks of this constraint have visited more nodes than building the trie
        compressed by the DFA's byte classes costs (ski rental), later walks use that
        smaller trie instead (letters-as-one-class patterns: 274k -> a few thousand nodes).
        """
        entry = self._states.get(state)
        if entry is not None:
            return entry
        level = 0
        if self._walk_pre is not None:
            pre = self._walk_pre
        else:
            # slices of tokens the state allows wholesale are OR-ed in, not walked
            level = self._slice_levels(state)
            pre = self.trie.slices.tries[level]
        words, nodes, states, visited = walk_tokens(pre, self.dfa, state, self._n_words)
        self.trie.slices.add_to(words, level)
        if self._walk_pre is None and self._compressible:
            with self._lock:
                object.__setattr__(self, "_byte_visits", self._byte_visits + visited)
                if self._byte_visits > _COMPRESS_AFTER_VISITS and self._walk_pre is None:
                    # many classes (letters told apart) barely shrink the trie: past half
                    # its nodes the byte trie is kept (Github_easy o10009, 60 classes: a
                    # 142 ms mask grew dense tables three times to find that out), past
                    # an eighth with 32 classes or more (MaskBench sample of 500: five
                    # such tries, all given up after 2-58 ms of one mask; the one that
                    # compressed had 18 classes and 81k of 274k nodes)
                    n_nodes = self.trie.preorder.n_nodes
                    cap = n_nodes // 2 if self.dfa.n_classes < _MANY_CLASSES else n_nodes // 8
                    pre_c = compress_preorder(self.trie.preorder, self.dfa.class_of, cap)
                    object.__setattr__(self, "_walk_pre", pre_c)
                    if pre_c is None:
                        object.__setattr__(self, "_compressible", False)
        for a in (words, nodes, states):
            a.setflags(write=False)
        entry = StateMasks(state, words, nodes, states, pre, self.dfa, self.vocab.tokens)
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

    def _run(self, state: int, data: bytes) -> int:
        step = self.dfa.step
        for b in data:
            state = step(state, b)
            if state <= 0:
                return 0
        return state


def _automaton(node: Node, limits: Any) -> TableDFA:
    """The DFA of a constraint: the complete trie of a small finite language (choices,
    alternations of words), else a lazy DFA, determinised at once when it is small."""
    from .automata.dfa import LazyDFA
    from .automata.literals import literal_dfa

    trie = literal_dfa(node, limits)
    if trie is not None:
        return trie
    dfa = LazyDFA([node], limits)
    if dfa.start > 0 and dfa.nfa.n_states <= _EAGER_NFA_STATES:
        dfa.explore_small(_EAGER_DFA_STATES)
    return dfa


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

        with collector_paused():  # a burst of short-lived objects (gcpause.py)
            return RegexConstraint(parse_regex(pattern, flags), vocab, limits, source=pattern)

    key = ("regex", pattern, int(flags), vocab.fingerprint, _limits_key(limits))
    return _CACHE.get_or_build(key, build)


def compile_regex_node(node: Node, vocab: Vocabulary, limits: Any = None) -> RegexConstraint:
    """Compile a byte-level regex AST (``constrained.automata.ast``) against ``vocab`` (cached)."""
    if not isinstance(vocab, Vocabulary):
        raise CompileError(f"vocab must be a Vocabulary, got {type(vocab).__name__}")
    key = ("node", node, vocab.fingerprint, _limits_key(limits))
    def build() -> RegexConstraint:
        with collector_paused():
            return RegexConstraint(node, vocab, limits)

    return _CACHE.get_or_build(key, build)


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
