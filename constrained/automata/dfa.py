"""LazyDFA: on-demand subset construction over a trimmed byte NFA.

A DFA state is the set of live NFA byte/accept states it stands for (an int32 slice of
one pool, in identity order, found again through a hash table; lexemes derived on first
use). A state's row (its successor for every byte equivalence class) is computed the
first time any of its transitions is needed, in one go, by a compiled kernel
(``automata/rows.py``) that groups the classes by which NFA states accept them, closes
each distinct target once and interns the targets; compiled trie walks call it in place
(``expand_view``) and return to Python only for growth, fork rows and limits. Rows live in a
growable ``int32[states, n_classes]`` table (-1 = not yet computed, state 0 = dead), so
a batch of lookups is one numpy ``take``. Growth is serialised by a lock; the language
of every state never changes, so the object is logically immutable.

``TableDFA`` holds the queries every table-driven DFA shares (``literals.TrieDFA`` is
the other one). A *growing* LazyDFA (``LazyDFA.growing``) starts with no lexemes and
gets them with ``add_lexemes`` as a grammar's lexer modes need them; existing states
keep their meaning, only the byte classes may be refined (table columns remapped).
"""
from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import numpy as np

from ..errors import ConstraintTooComplex
from . import rows
from .ast import Node
from .limits import DEFAULT_LIMITS, Deadline, Limits
from .nfa import KIND_BYTE, NFA, GrowingNFA, build_nfa

DEAD = 0


def _doubled(size: int, need: int) -> int:
    """``size`` doubled until it holds ``need`` (growth stays amortised O(1))."""
    while size < need:
        size *= 2
    return size


class TableDFA:
    """Queries shared by every table-driven byte DFA (lazy or complete).

    Subclasses set ``start``, ``_accepting``, ``_lock`` and the view ``_tc`` = (table
    ``int32[capacity, n_classes]`` (-1 = row not computed, 0 = dead), byte -> class as
    intp[256] and as int32[256], the bytes of each class), and override ``_expand`` when
    rows are computed on demand. The table and the classes are published together as one
    tuple: a DFA whose lexemes grow (``LazyDFA.add_lexemes``) refines its classes and
    remaps the table's columns, and a reader must never pair the new classes with the
    old table. Readers take one ``_tc`` and, after expanding a row, take it again.
    """

    start: int
    _tc: tuple[np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]]
    _accepting: np.ndarray
    _lock: threading.RLock

    @property
    def n_states(self) -> int:
        """States created so far (including the dead state 0)."""
        raise NotImplementedError

    def _expand(self, state: int) -> None:
        """Compute the row of ``state`` (a complete table has none to compute)."""

    @property
    def n_classes(self) -> int:
        return int(self._tc[0].shape[1])

    @property
    def _table(self) -> np.ndarray:
        return self._tc[0]

    @property
    def _class_of(self) -> np.ndarray:
        return self._tc[1]

    @property
    def class_of(self) -> np.ndarray:
        """Byte -> equivalence class (read-only copy)."""
        return self._tc[1].copy()

    @property
    def accepting(self) -> np.ndarray:
        """bool[n_states]: accepting flag of every state created so far (a view)."""
        return self._accepting[: self.n_states]

    def kernel_view(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """(transition table ``int32[capacity, n_classes]``, byte -> class ``int32[256]``,
        accepting flags ``bool[capacity]``, fork table or None (see
        :meth:`LazyDFA.fork_lexemes`)) for compiled walks; -1 marks a row not computed yet
        (:meth:`expand` it and re-read: growth reallocates the arrays, so they are read
        together under the lock). Callers must not write to them."""
        with self._lock:
            table, _, class_of32, _ = self._tc
            return table, class_of32, self._accepting, self._forks

    #: ``int32[capacity, n_classes]`` fork ids (see ``LazyDFA``); None: forks not tracked
    _forks: np.ndarray | None = None

    def expand(self, state: int) -> None:
        """Compute the transition row of ``state`` if it is not known yet."""
        self._expand(state)

    def step(self, state: int, byte: int) -> int:
        """Successor of ``state`` on ``byte`` (0 = dead)."""
        table, class_of = self._tc[0], self._tc[1]
        t = table[state, class_of[byte]]
        if t < 0:
            self._expand(state)
            table, class_of = self._tc[0], self._tc[1]
            t = table[state, class_of[byte]]
        return int(t)

    def step_many(self, states: np.ndarray, bytes_: np.ndarray) -> np.ndarray:
        """Vectorised ``step``: ``int32[n]`` successors of ``states[i]`` on ``bytes_[i]``.

        One flat ``take`` on the table; rows still unknown are expanded (once per unique
        state) and the lookup repeated.
        """
        if isinstance(bytes_, (bytes, bytearray, memoryview)):
            bytes_ = np.frombuffer(bytes_, dtype=np.uint8)
        states = np.asarray(states)
        byte_arr = np.asarray(bytes_)
        for attempt in (0, 1):
            table, _, class_of32, _ = self._tc
            n_classes = table.shape[1]
            cls = class_of32[byte_arr]
            idx: np.ndarray
            if states.dtype == np.int32 and table.size < 2**31:
                idx = states * np.int32(n_classes)
            else:
                idx = states.astype(np.int64) * n_classes
            idx += cls
            out = table.reshape(-1).take(idx)
            n = len(out)
            if attempt or not n or (min(out.tolist()) if n <= 16 else int(np.minimum.reduce(out))) >= 0:
                break
            for s in np.unique(states[out < 0]).tolist():
                self._expand(int(s))
        return out

    def transitions(self, state: int) -> np.ndarray:
        """``int32[n_classes]``: successor of ``state`` for every byte class (classes of
        the current :attr:`class_of`; use :meth:`byte_transitions` where the lexemes of a
        growing DFA may be added concurrently)."""
        table = self._tc[0]
        if table[state, 0] < 0:
            self._expand(state)
            table = self._tc[0]
        return table[state].copy()

    def byte_transitions(self, state: int) -> np.ndarray:
        """``int32[256]``: successor of ``state`` for every byte."""
        table, class_of = self._tc[0], self._tc[1]
        if table[state, 0] < 0:
            self._expand(state)
            table, class_of = self._tc[0], self._tc[1]
        return table[state][class_of]

    def walk(self, state: int, data: bytes) -> int:
        """State after ``data`` from ``state`` (0 as soon as it dies)."""
        for b in data:
            state = self.step(state, b)
            if state == DEAD:
                return DEAD
        return state

    def matches(self, data: bytes) -> bool:
        """Does the union language contain ``data``?"""
        return self.is_accepting(self.walk(self.start, data))

    def is_accepting(self, state: int) -> bool:
        return bool(self._accepting[state])

    def is_accepting_many(self, states: np.ndarray) -> np.ndarray:
        """bool[n]: accepting flags of ``states``."""
        return self._accepting[np.asarray(states, dtype=np.intp)]

    def forced_bytes(self, state: int) -> bytes:
        """The bytes every continuation from ``state`` must start with.

        Stops at an accepting state (the output may end there) or where more than one
        byte is possible.
        """
        out = bytearray()
        seen = {state}
        while state != DEAD and not self._accepting[state]:
            row = self.byte_transitions(state)
            alive = np.flatnonzero(row != DEAD)
            if len(alive) != 1:
                break
            out.append(int(alive[0]))
            state = int(row[alive[0]])
            if state in seen:
                break
            seen.add(state)
        return bytes(out)


def _remap_columns(table: np.ndarray, old_of_new: np.ndarray, used: int,
                   fill: int) -> np.ndarray:
    """``table[:, old_of_new]`` (C order) when byte classes split: only the first ``used``
    rows are gathered, the spare capacity is filled with ``fill`` (gathering a whole
    table that doubles as it grows took 0.4 ms a split on large schemas)."""
    out = np.empty((table.shape[0], old_of_new.shape[0]), dtype=table.dtype)
    np.take(table[:used], old_of_new, axis=1, out=out[:used])
    out[used:] = fill
    return out


class LazyDFA(TableDFA):
    """Deterministic automaton for the union of ``nodes`` (lexeme ``i`` = ``nodes[i]``).

    State 0 is dead; ``start`` is the initial state (0 if the language is empty). Every
    other state is live: some continuation reaches acceptance (the NFA is trimmed).

    ``track_forks``: also record, per accepting state and byte class, the lexemes that
    accept in the state but are dead after the byte while the DFA itself goes on (another
    lexeme extends). A greedy lexer drops those endings; a grammar whose lexing keeps
    every split (``Grammar.lexing == "all"``) reads them as *forks*: the lexeme may end
    there with the byte starting the next one. The table holds a fork id per (state,
    class), 0 = none; :meth:`fork_lexemes` names the lexemes of an id.
    """

    def __init__(self, nodes: Sequence[Node], limits: Limits | None = None,
                 nfa: NFA | None = None, track_forks: bool = False) -> None:
        self.limits = limits or DEFAULT_LIMITS
        # ``nfa``: an already built NFA of ``nodes`` (e.g. a union of cached lexeme NFAs)
        self.nfa: NFA = nfa if nfa is not None else build_nfa(list(nodes), self.limits)
        self.n_lexemes = len(nodes) if nfa is None else len(nfa.starts)
        self._lock = threading.RLock()
        nfa = self.nfa
        cap = 64
        table = np.full((cap, nfa.n_classes), -1, dtype=np.int32)
        table[DEAD] = DEAD
        self._tc = (table, nfa.class_of.astype(np.intp), nfa.class_of.astype(np.int32),
                    nfa.class_bytes)
        self._accepting = np.zeros(cap, dtype=bool)
        # the states' NFA sets, in one pool (``automata/rows.py`` interns them): state s
        # is ``_pool[_ptr[s]:_ptr[s + 1]]``, byte states sorted then accept states sorted
        # (its identity), the first ``_nbyte[s]`` byte states; ``_ht`` finds a set's id.
        # Lexemes are derived on first ask (a third of the states a schema's masks
        # create are never expanded, and few are asked for their lexemes)
        self._pool = np.empty(1024, dtype=np.int32)
        self._ptr = np.zeros(cap + 1, dtype=np.int64)
        self._nbyte = np.zeros(cap, dtype=np.int32)
        self._ht = np.zeros(4 * cap, dtype=np.int32)
        self._counts = np.zeros(5, dtype=np.int64)
        self._counts[rows.N_STATES] = 1  # the dead state, whose set is empty
        self._lex_cache: dict[int, tuple[tuple[int, ...], tuple[int, ...]]] = {}
        self._kind_l: list[int] | None = None
        self._lex_l: list[int] | None = None
        self._expand_seconds = 0.0
        self._starts: dict[frozenset[int], int] = {}
        self._store: GrowingNFA | None = None  # set by ``growing``
        if track_forks:
            self._forks = np.zeros((cap, nfa.n_classes), dtype=np.int32)
        self._fork_sets: list[tuple[int, ...]] = [()]
        self._fork_index: dict[tuple[int, ...], int] = {}
        self._mark = np.zeros(0, dtype=np.int32)
        self._stack = np.zeros(0, dtype=np.int32)
        self._refresh_view()
        with self._lock:
            start_set = frozenset().union(*(nfa.closure(s) for s in nfa.starts if s >= 0))
            self.start: int = self._intern(start_set)

    # --- construction ----------------------------------------------------------------
    def _refresh_view(self) -> None:
        """Re-make :meth:`expand_view` after the arrays or the NFA changed (lock held)."""
        nfa = self.nfa
        if self._mark.shape[0] < nfa.n_states:  # the row kernel's scratch, room to grow
            self._mark = np.zeros(2 * max(nfa.n_states, 1), dtype=np.int32)
            self._stack = np.empty(2 * max(nfa.n_states, 1), dtype=np.int32)
            self._counts[rows.STAMP] = 0
        table = self._tc[0]
        self._rowbuf = np.zeros(table.shape[1], dtype=np.int32)
        self._ex = (table, self._accepting, self._pool, self._ptr, self._nbyte, self._ht,
                    self._counts, self._rowbuf, nfa.label, nfa.label_classes, nfa.succ,
                    nfa.kind, nfa.live, nfa.eps_ptr, nfa.eps_dst, self._mark, self._stack,
                    self._forks is not None, self.limits.max_states,
                    self.limits.max_state_set_total)

    def expand_view(self) -> tuple[object, ...]:
        """The arguments after the state of ``rows.expand_row`` for this DFA, taken under
        the lock together with :meth:`kernel_view` (a compiled walk that holds the lock
        expands rows in place; it returns to Python on any status but ROW_DONE)."""
        return self._ex

    def _canonical(self, states: frozenset[int]) -> tuple[np.ndarray, int]:
        """An NFA state set in the identity order (byte states sorted, then accept states
        sorted, as the row kernel writes them) and its accept-state count."""
        kind_l, _ = self._nfa_lists()
        byte_l = sorted(m for m in states if kind_l[m] == KIND_BYTE)
        acc_l = sorted(m for m in states if kind_l[m] != KIND_BYTE)
        return np.array(byte_l + acc_l, dtype=np.int32), len(acc_l)

    def _intern(self, states: frozenset[int]) -> int:
        """Id of the DFA state for an NFA state set, creating it if new (lock held)."""
        arr, n_acc = self._canonical(states)
        self._reserve(int(self._counts[rows.N_STATES]) + 1,
                      int(self._counts[rows.POOL_USED]) + len(arr))
        sid = rows.intern_state(arr, n_acc, self._pool, self._ptr, self._nbyte,
                                self._accepting, self._ht, self._counts,
                                self.limits.max_states, self.limits.max_state_set_total)
        if sid < 0:
            self._limit_error(-sid)
        return int(sid)

    def _limit_error(self, status: int) -> None:
        if status == rows.ROW_MAX_STATES:
            raise ConstraintTooComplex(
                f"DFA exceeds {self.limits.max_states} states (Limits.max_states)")
        raise ConstraintTooComplex(
            f"DFA state sets exceed {self.limits.max_state_set_total} NFA states in total "
            "(Limits.max_state_set_total)")

    def _reserve(self, n_states: int, n_pool: int) -> None:
        """Grow the state arrays, the pool and the hash table to hold ``n_states`` states
        and ``n_pool`` pool entries (lock held; readers keep valid old arrays)."""
        changed = False
        if n_states >= len(self._accepting):
            self._grow(_doubled(len(self._accepting), n_states + 1))
            changed = True
        if n_pool > len(self._pool):
            pool = np.empty(_doubled(len(self._pool), n_pool), dtype=np.int32)
            used = int(self._counts[rows.POOL_USED])
            pool[:used] = self._pool[:used]
            self._pool = pool
            changed = True
        if 2 * n_states > len(self._ht):
            ht = np.zeros(_doubled(len(self._ht), 2 * n_states), dtype=np.int32)
            rows.rehash(ht, self._ptr, self._pool, int(self._counts[rows.N_STATES]))
            self._ht = ht
            changed = True
        if changed:
            self._refresh_view()

    def _members(self, state: int) -> np.ndarray:
        """The NFA states of ``state`` (identity order; a view of the pool)."""
        return self._pool[int(self._ptr[state]) : int(self._ptr[state + 1])]

    def _lexemes(self, state: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(accepting, live) lexemes of ``state``, computed from its NFA states on first
        use (a benign race: concurrent readers compute the same tuples)."""
        hit = self._lex_cache.get(state)
        if hit is None:
            lex = self.nfa.lexeme[self._members(state)].tolist()
            hit = (tuple(sorted(set(lex[int(self._nbyte[state]):]))), tuple(sorted(set(lex))))
            self._lex_cache[state] = hit
        return hit

    def _nfa_lists(self) -> tuple[list[int], list[int]]:
        """The NFA's kind and lexeme arrays as Python lists (built on first use)."""
        if self._kind_l is None:
            self._kind_l = self.nfa.kind.tolist()
            self._lex_l = self.nfa.lexeme.tolist()
        assert self._lex_l is not None
        return self._kind_l, self._lex_l

    def _grow(self, cap: int) -> None:
        old, class_of, class_of32, class_bytes = self._tc
        table = np.full((cap, old.shape[1]), -1, dtype=np.int32)
        table[: len(old)] = old
        accepting = np.zeros(cap, dtype=bool)
        accepting[: len(self._accepting)] = self._accepting
        self._accepting = accepting
        ptr = np.zeros(cap + 1, dtype=np.int64)
        ptr[: len(self._ptr)] = self._ptr
        self._ptr = ptr
        nbyte = np.zeros(cap, dtype=np.int32)
        nbyte[: len(self._nbyte)] = self._nbyte
        self._nbyte = nbyte
        if self._forks is not None:
            forks = np.zeros((cap, old.shape[1]), dtype=np.int32)
            forks[: len(self._forks)] = self._forks
            self._forks = forks
        # readers holding the old table still see valid rows
        self._tc = (table, class_of, class_of32, class_bytes)

    def _expand(self, state: int) -> None:
        """Compute the whole transition row of ``state`` (no-op if already known)."""
        with self._lock:
            if self._table[state, 0] >= 0:
                return
            t0 = time.monotonic()
            while True:
                status = rows.expand_row(state, *self._ex)
                if status == rows.ROW_DONE:
                    break
                if status == rows.ROW_GROW:
                    self._reserve(int(self._counts[rows.NEED_STATES]),
                                  int(self._counts[rows.NEED_POOL]))
                    continue
                if status == rows.ROW_FORKS:
                    row = self._rowbuf.copy()
                    assert self._forks is not None
                    self._forks[state] = self._fork_row(state, row)  # before the row is published
                    table = self._table
                    table[state, 1:] = row[1:]
                    table[state, 0] = row[0]
                    break
                self._limit_error(status)
            self._expand_seconds += time.monotonic() - t0
            if self._expand_seconds > self.limits.max_seconds:
                raise ConstraintTooComplex(
                    f"determinisation has taken over {self.limits.max_seconds:g} s in total "
                    "(Limits.max_seconds)")

    def _fork_row(self, state: int, row: np.ndarray) -> np.ndarray:
        """Fork ids of an accepting ``state`` per class: the lexemes accepting here that
        are dead in the successor while the successor lives (lock held)."""
        acc = self._lexemes(state)[0]
        out = np.zeros(len(row), dtype=np.int32)
        for t in set(row.tolist()):
            if t == DEAD:
                continue
            live = self._lexemes(t)[1]
            ending = tuple(x for x in acc if x not in live)
            if ending:
                fid = self._fork_index.get(ending)
                if fid is None:
                    fid = self._fork_index[ending] = len(self._fork_sets)
                    self._fork_sets.append(ending)
                out[row == t] = fid
        return out

    def fork(self, state: int, byte: int) -> int:
        """The fork id of ``state`` on ``byte`` (0: none, or forks not tracked); the row
        must be known (``step`` first)."""
        if self._forks is None:
            return 0
        with self._lock:
            return int(self._forks[state, self._tc[1][byte]])

    def fork_lexemes(self, fork_id: int) -> tuple[int, ...]:
        """Lexemes (sorted) that may end at a fork with id ``fork_id`` (> 0)."""
        return self._fork_sets[fork_id]

    def explore(self, max_seconds: float | None = None) -> int:
        """Build every reachable state (for small automata); returns ``n_states``."""
        deadline = Deadline(self.limits.max_seconds if max_seconds is None else max_seconds,
                            "DFA exploration")
        i = 0
        while i < self.n_states:
            self._expand(i)
            i += 1
            if i & 0x3F == 0:
                deadline.check()
        return self.n_states

    def explore_small(self, max_states: int) -> bool:
        """Build every reachable state if there are at most ``max_states``; True if done.

        Stops early (leaving the rest lazy) once more states than that exist. Used at
        compile time for small regexes, so masks never pause for determinisation.
        """
        i = 1
        while i < self.n_states:
            if self.n_states > max_states:
                return False
            self._expand(i)
            i += 1
        return self.n_states <= max_states

    @classmethod
    def growing(cls, n_lexemes: int, limits: Limits | None = None,
                max_nfa_states: int | None = None, track_forks: bool = False) -> LazyDFA:
        """A DFA over lexemes ``0..n_lexemes-1`` that holds none yet: add them with
        :meth:`add_lexemes` before :meth:`start_for` names them (see ``GrowingNFA``)."""
        limits = limits or DEFAULT_LIMITS
        store = GrowingNFA(n_lexemes, max_nfa_states or limits.max_nfa_states)
        dfa = cls([], limits, nfa=store.snapshot(), track_forks=track_forks)
        dfa._store = store
        return dfa

    def has_lexemes(self, lexemes: Sequence[int]) -> bool:
        """Whether every one of ``lexemes`` can be started (always, unless growing)."""
        starts = self.nfa.starts
        return all(starts[i] >= 0 for i in lexemes)

    def add_lexemes(self, parts: dict[int, NFA]) -> None:
        """Add lexemes (id -> single-lexeme NFA) to a :meth:`growing` DFA.

        Existing states keep their NFA sets, rows and ids: the new lexemes' NFA states are
        disjoint from the old ones, so only the byte classes can change. When the new
        labels split a class, every column of the table is remapped (a new class
        inherits the transitions of the old class it came from: no old state tells its
        bytes apart) and the table and classes are published together. Raises
        ConstraintTooComplex past the NFA size cap (nothing is changed then).
        """
        store = self._store
        if store is None:
            raise TypeError("add_lexemes needs a DFA made by LazyDFA.growing")
        with self._lock:
            todo = {i: p for i, p in parts.items() if not store.has(i)}
            if not todo:
                return
            n_old = store.n
            store.add(todo)
            nfa = store.snapshot()
            nfa.max_closure_total = self.limits.max_state_set_total
            table, old_class_of, _, _ = self._tc
            if not np.array_equal(nfa.class_of, old_class_of):
                old_of_new = old_class_of[[int(b[0]) for b in nfa.class_bytes]]
                table = _remap_columns(table, old_of_new, int(self._counts[rows.N_STATES]), -1)
                if self._forks is not None:
                    self._forks = _remap_columns(self._forks, old_of_new,
                                                 int(self._counts[rows.N_STATES]), 0)
            if self._kind_l is not None:
                assert self._lex_l is not None
                self._kind_l.extend(nfa.kind[n_old:].tolist())
                self._lex_l.extend(nfa.lexeme[n_old:].tolist())
            self.nfa = nfa
            self._tc = (table, nfa.class_of.astype(np.intp), nfa.class_of.astype(np.int32),
                        nfa.class_bytes)
            self._refresh_view()

    def start_for(self, lexemes: frozenset[int]) -> int:
        """The state that starts a match of any of ``lexemes`` only (0 if none can match).

        One DFA then serves every subset of its lexemes (a grammar's lexer contexts):
        states are interned by NFA state set, so after the first byte, contexts that keep
        the same lexemes alive share states, rows and everything cached per state.
        """
        hit = self._starts.get(lexemes)
        if hit is None:
            with self._lock:
                nfa = self.nfa
                if any(nfa.starts[i] < 0 for i in lexemes):
                    raise ValueError("start_for names a lexeme not added yet (add_lexemes)")
                states = frozenset().union(*(nfa.closure(nfa.starts[i]) for i in lexemes))
                hit = self._intern(states)
                self._starts[lexemes] = hit
        return hit

    @property
    def n_states(self) -> int:
        """States created so far (including the dead state 0)."""
        return int(self._counts[rows.N_STATES])

    def accepting_lexemes(self, state: int) -> tuple[int, ...]:
        """Indices of the lexemes that accept in ``state`` (sorted)."""
        return self._lexemes(state)[0] if self._accepting[state] else ()

    def live_lexemes(self, state: int) -> tuple[int, ...]:
        """Indices of the lexemes still alive in ``state`` (accepting now or later)."""
        return self._lexemes(state)[1]


def is_prefix_free(dfa: LazyDFA) -> bool:
    """True if no accepted string is a proper prefix of another (explores the DFA)."""
    dfa.explore()
    for s in range(1, dfa.n_states):
        if dfa.is_accepting(s) and (dfa.transitions(s) != DEAD).any():
            return False
    return True


def product_transitions(
    components: list[tuple[Node, bool]], limits: Limits, deadline: Deadline
) -> tuple[int, list[bool], list[list[tuple[int, int]]]]:
    """Explicit DFA of the intersection of components (each possibly complemented).

    Returns ``(n_states, accepting, edges)``; state 0 is the start; ``edges[q]`` lists
    ``(target, byte-set bits)``. Complement is with respect to all byte strings. Rows
    are computed per joint byte class (the common refinement of the components'
    classes), so the Python work per product state is per class, not per byte.
    """
    dfas = [LazyDFA([node], limits) for node, _ in components]
    negated = [neg for _, neg in components]
    k = len(dfas)
    joint_key = np.zeros(256, dtype=np.int64)
    for d in dfas:
        joint_key = joint_key * (d.n_classes + 1) + d._class_of
    _, rep, joint_of = np.unique(joint_key, return_index=True, return_inverse=True)
    joint_of = joint_of.reshape(-1)
    joint_bits = [0] * len(rep)
    for b in range(256):
        joint_bits[int(joint_of[b])] |= 1 << b
    rep_classes = [d._class_of[rep] for d in dfas]  # per component: class of each joint class
    must_live = [i for i in range(k) if not negated[i]]
    zeros = [DEAD] * len(rep)
    # per component: state -> successor for each joint class (Python list)
    row_cache: list[dict[int, list[int]]] = [{} for _ in dfas]

    def dead(tup: tuple[int, ...]) -> bool:
        for m in must_live:
            if tup[m] == DEAD:
                return True
        return False

    start = tuple(d.start for d in dfas)
    index: dict[tuple[int, ...], int] = {start: 0}
    order = [start]
    accepting: list[bool] = []
    edges: list[list[tuple[int, int]]] = []
    i = 0
    while i < len(order):
        tup = order[i]
        i += 1
        if i & 0x3F == 0:
            deadline.check()
        if dead(tup):
            accepting.append(False)
            edges.append([])
            continue
        accepting.append(all(d.is_accepting(q) != neg for d, q, neg in zip(dfas, tup, negated)))
        cols = []
        for c_i, q in enumerate(tup):
            col = row_cache[c_i].get(q)
            if col is None:
                col = (dfas[c_i].transitions(q)[rep_classes[c_i]].tolist() if q != DEAD
                       else zeros)
                row_cache[c_i][q] = col
            cols.append(col)
        keys = list(zip(*cols))
        grouped: dict[tuple[int, ...], int] = {}
        for j, key in enumerate(keys):
            grouped[key] = grouped.get(key, 0) | joint_bits[j]
        out: list[tuple[int, int]] = []
        for key, bits in grouped.items():
            if dead(key):
                continue
            target = index.get(key)
            if target is None:
                if len(order) >= limits.max_states:
                    raise ConstraintTooComplex(
                        f"intersection/complement automaton exceeds {limits.max_states} "
                        "states (Limits.max_states)")
                target = index[key] = len(order)
                order.append(key)
            out.append((target, bits))
        edges.append(out)
    return len(order), accepting, edges
