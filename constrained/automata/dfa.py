"""LazyDFA: on-demand subset construction over a trimmed byte NFA.

A DFA state is the set of live NFA byte/accept states it stands for (a sorted int32
array, interned by its bytes; records derived from it on first use). A state's row
(its successor for every byte equivalence class) is computed the first time any of its
transitions is needed, in one go, by a compiled kernel (``automata/rows.py``) that
groups the classes by which NFA states accept them and closes each distinct target
once; Python only interns the target sets. Rows live in a
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
from .ast import Node
from .limits import DEFAULT_LIMITS, Deadline, Limits
from .nfa import KIND_BYTE, NFA, GrowingNFA, build_nfa
from .rows import RowScratch, row_targets

DEAD = 0
# rows of states with several NFA byte states come from the compiled kernel
# (automata/rows.py); a single byte state's row is one memoised closure, set in Python
# (tests turn this off to run those rows through the kernel too)
_SINGLE_STATE_ROWS_IN_PYTHON = True


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
        # per DFA state: its NFA states (int32, the byte states sorted, then the accept
        # states sorted: the state's identity), how many are byte states, and lexemes
        # derived on first use (a third of the states a schema's masks create are never
        # expanded, and few are asked for their lexemes)
        self._members: list[np.ndarray] = [np.zeros(0, dtype=np.int32)]
        self._n_byte: list[int] = [0]
        self._acc_lex: list[tuple[int, ...] | None] = [()]
        self._live_lex: list[tuple[int, ...] | None] = [()]
        self._kind_l: list[int] | None = None
        self._lex_l: list[int] | None = None
        self._label_l: list[int] = []
        # NFA states in identity order (their int32 bytes) -> id: the row kernel's target
        # sets are looked up without building a frozenset each (that and its hash were
        # most of a new state)
        self._index_bytes: dict[bytes, int] = {b"": DEAD}
        self._scratch: RowScratch | None = None  # the row kernel's work arrays (lock held)
        self._succ_closure: dict[int, tuple[np.ndarray, bytes, int]] = {}
        self._set_total = 0
        self._expand_seconds = 0.0
        self._label_classes: dict[int, list[int]] = {}
        self._starts: dict[frozenset[int], int] = {}
        self._store: GrowingNFA | None = None  # set by ``growing``
        if track_forks:
            self._forks = np.zeros((cap, nfa.n_classes), dtype=np.int32)
        self._fork_sets: list[tuple[int, ...]] = [()]
        self._fork_index: dict[tuple[int, ...], int] = {}
        with self._lock:
            start_set = frozenset().union(*(nfa.closure(s) for s in nfa.starts if s >= 0))
            self.start: int = self._intern(start_set)

    # --- construction ----------------------------------------------------------------
    def _canonical(self, states: frozenset[int]) -> tuple[np.ndarray, bytes, int]:
        """An NFA state set in the identity order (byte states sorted, then accept states
        sorted, as the row kernel writes them), its bytes and its accept-state count."""
        kind_l, _ = self._nfa_lists()
        byte_l = sorted(m for m in states if kind_l[m] == KIND_BYTE)
        acc_l = sorted(m for m in states if kind_l[m] != KIND_BYTE)
        arr = np.array(byte_l + acc_l, dtype=np.int32)
        return arr, arr.tobytes(), len(acc_l)

    def _intern(self, states: frozenset[int]) -> int:
        """Id of the DFA state for an NFA state set, creating it if new (lock held)."""
        arr, key, n_acc = self._canonical(states)
        sid = self._index_bytes.get(key)
        return sid if sid is not None else self._add_state(arr, key, n_acc)

    def _add_state(self, arr: np.ndarray, key: bytes, n_acc: int) -> int:
        """A new DFA state for the NFA states ``arr`` in identity order (``key`` = their
        bytes, not interned yet; the last ``n_acc`` are accept states) (lock held)."""
        sid = len(self._members)
        if sid >= self.limits.max_states:
            raise ConstraintTooComplex(
                f"DFA exceeds {self.limits.max_states} states (Limits.max_states)")
        self._set_total += len(arr)
        if self._set_total > self.limits.max_state_set_total:
            raise ConstraintTooComplex(
                f"DFA state sets exceed {self.limits.max_state_set_total} NFA states in total "
                "(Limits.max_state_set_total)")
        if sid >= len(self._accepting):
            self._grow(2 * len(self._accepting))
        # fill every per-state record before publishing the id (readers never lock)
        self._accepting[sid] = n_acc > 0
        self._n_byte.append(len(arr) - n_acc)
        self._acc_lex.append(None if n_acc else ())
        self._live_lex.append(None)
        self._members.append(arr)
        self._index_bytes[key] = sid
        return sid

    def _lexemes(self, state: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(accepting, live) lexemes of ``state``, computed from its NFA states on first
        use (a benign race: concurrent readers compute the same tuples)."""
        acc, live = self._acc_lex[state], self._live_lex[state]
        if acc is None or live is None:
            lex = self.nfa.lexeme[self._members[state]].tolist()
            acc = tuple(sorted(set(lex[self._n_byte[state]:])))
            live = tuple(sorted(set(lex)))
            self._acc_lex[state], self._live_lex[state] = acc, live
        return acc, live

    def _nfa_lists(self) -> tuple[list[int], list[int]]:
        """The NFA's kind and lexeme arrays as Python lists (built on first use)."""
        if self._kind_l is None:
            self._kind_l = self.nfa.kind.tolist()
            self._lex_l = self.nfa.lexeme.tolist()
            self._label_l = self.nfa.label.tolist()
        assert self._lex_l is not None
        return self._kind_l, self._lex_l

    def _grow(self, cap: int) -> None:
        old, class_of, class_of32, class_bytes = self._tc
        table = np.full((cap, old.shape[1]), -1, dtype=np.int32)
        table[: len(old)] = old
        accepting = np.zeros(cap, dtype=bool)
        accepting[: len(self._accepting)] = self._accepting
        self._accepting = accepting
        if self._forks is not None:
            forks = np.zeros((cap, old.shape[1]), dtype=np.int32)
            forks[: len(self._forks)] = self._forks
            self._forks = forks
        # readers holding the old table still see valid rows
        self._tc = (table, class_of, class_of32, class_bytes)

    def _label_class_list(self, label: int) -> list[int]:
        """Byte classes of an NFA label as a Python list (memoised)."""
        hit = self._label_classes.get(label)
        if hit is None:
            hit = np.flatnonzero(self.nfa.label_classes[label]).tolist()
            self._label_classes[label] = hit
        return hit

    def _succ(self, s: int) -> tuple[np.ndarray, bytes, int]:
        """The closure of NFA byte state ``s``'s successor (``_canonical``; memoised)."""
        hit = self._succ_closure.get(s)
        if hit is None:
            hit = self._succ_closure[s] = self._canonical(self.nfa.closure(int(self.nfa.succ[s])))
        return hit

    def _expand(self, state: int) -> None:
        """Compute the whole transition row of ``state`` (no-op if already known)."""
        with self._lock:
            if self._table[state, 0] >= 0:
                return
            t0 = time.monotonic()
            k = self._n_byte[state]
            if k == 1 and _SINGLE_STATE_ROWS_IN_PYTHON:
                # one NFA state: its label's classes go to its (memoised) successor closure
                m0 = int(self._members[state][0])
                arr, key, n_acc = self._succ(m0)
                sid = self._index_bytes.get(key)
                if sid is None:
                    sid = self._add_state(arr, key, n_acc)
                row = np.zeros(self._tc[0].shape[1], dtype=np.int32)
                row[self._label_class_list(self._label_l[m0])] = sid
            elif k:
                row = self._kernel_row(self._members[state][:k])
            else:
                row = np.zeros(self._tc[0].shape[1], dtype=np.int32)
            if self._forks is not None and self._accepting[state]:
                self._forks[state] = self._fork_row(state, row)  # before the row is published
            self._table[state] = row
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

    def _kernel_row(self, byte_states: list[int] | np.ndarray) -> np.ndarray:
        """The row of a state with these NFA byte states, grouped and closed by the
        compiled kernel (``automata.rows``); only interning stays in Python (lock held)."""
        nfa = self.nfa
        scratch = self._scratch
        if scratch is None or scratch.mark.shape[0] < nfa.n_states:  # first row, or grown
            scratch = self._scratch = RowScratch(2 * nfa.n_states)  # room to grow
        members = np.asarray(byte_states, dtype=np.int32)
        group_of, ptr, states, n_accepts = row_targets(
            members, nfa.label, nfa.label_classes, nfa.succ, nfa.kind, nfa.live,
            nfa.eps_ptr, nfa.eps_dst, scratch)
        # target sets are looked up by their states' bytes (identity order); a new one
        # keeps its slice of ``states``
        ptr_l = ptr.tolist()
        raw = states.tobytes()
        by_bytes = self._index_bytes
        sids: list[int] = []
        for g in range(len(ptr_l) - 1):
            a, b = ptr_l[g], ptr_l[g + 1]
            key = raw[4 * a : 4 * b]
            sid = by_bytes.get(key)
            if sid is None:
                sid = self._add_state(states[a:b], key, int(n_accepts[g]))
            sids.append(sid)
        sids.append(DEAD)  # group -1
        return np.array(sids, dtype=np.int32)[group_of]

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
                table = np.ascontiguousarray(table[:, old_of_new])
                if self._forks is not None:
                    self._forks = np.ascontiguousarray(self._forks[:, old_of_new])
                self._label_classes = {}  # class ids changed (unchanged: the memo holds)
            if self._kind_l is not None:
                assert self._lex_l is not None
                self._kind_l.extend(nfa.kind[n_old:].tolist())
                self._lex_l.extend(nfa.lexeme[n_old:].tolist())
                self._label_l.extend(nfa.label[n_old:].tolist())
            self.nfa = nfa
            self._tc = (table, nfa.class_of.astype(np.intp), nfa.class_of.astype(np.int32),
                        nfa.class_bytes)

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
        return len(self._members)

    def accepting_lexemes(self, state: int) -> tuple[int, ...]:
        """Indices of the lexemes that accept in ``state`` (sorted)."""
        acc = self._acc_lex[state]
        return acc if acc is not None else self._lexemes(state)[0]

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
