"""Earley recogniser over lexemes with hash-consed, immutable Earley sets.

A parser state is one :class:`EarleySet`. Items refer to their origin *set objects*
rather than chart positions, so a set alone determines the parser's future: rollback is
dropping a reference, and sets with equal items (origins compared by identity) are
interned to one object, which makes the set itself the cache key for token masks.
Nullable rules follow Aycock & Horspool (predicting a nullable symbol also advances over
it), so completions with an empty span never need to be revisited.
"""
from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Optional

from ..errors import ConstraintTooComplex, GrammarSyntaxError

_MISSING: object = object()

# An item is (production index, dot, origin set or None for "this set").
Item = tuple[int, int, Optional["EarleySet"]]


@dataclass(frozen=True)
class ParserLimits:
    """Resource limits: items in one Earley set; how many recently built sets an LRU keeps
    alive (sets otherwise live only while referenced, so caches on them survive between
    sequences only through this LRU)."""

    max_items_per_set: int = 200_000
    keep_recent_sets: int = 8192


#: distinct predicted-nonterminal sets whose shared part is kept per parser
_MAX_PREDICTED = 4096
#: intern-table size below which dead entries are never swept
_MIN_SWEEP = 4096


@dataclass(frozen=True)
class _Predicted:
    """What every set predicting the same nonterminals shares: its predicted items
    (origin "this set") by the symbol after the dot, their count, the lexemes they scan."""

    by_next: dict[int, tuple[Item, ...]]
    n_items: int
    expected: frozenset[int]


class EarleySet:
    """One interned Earley set (immutable once built).

    ``items`` is the set's kernel (items with an explicit origin; the predicted items are
    shared per predicted-nonterminal set); ``by_next[symbol]`` lists all the items,
    predicted ones included, whose dot stands before ``symbol``;
    ``expected`` is the set of lexeme ids some item can scan; ``accepting`` says the
    augmented start production is complete. ``_next`` memoises scans by lexeme set.
    """

    __slots__ = (
        "__weakref__",
        "_next",
        "accepting",
        "by_next",
        "cache",
        "expected",
        "items",
        "uid",
    )

    def __init__(self, items: frozenset[Item], by_next: dict[int, tuple[Item, ...]],
                 expected: frozenset[int], accepting: bool, uid: int) -> None:
        self.items = items
        self.by_next = by_next
        self.expected = expected
        self.accepting = accepting
        # successors by lexeme set: a weak reference (or None = dead) so that memoised
        # transitions never keep a set alive on their own
        self._next: dict[frozenset[int], weakref.ref[EarleySet] | None] = {}
        self.uid = uid
        # per-set results of clients (token masks), dying with the set
        self.cache: dict[object, object] = {}

    def __repr__(self) -> str:
        return f"EarleySet(#{self.uid}, {len(self.items)} items, accepting={self.accepting})"


class EarleyParser:
    """Recogniser for one context-free grammar over lexeme ids ``0..n_lexemes-1``.

    Nonterminals are numbered from ``n_lexemes``. Production 0 is the augmented start
    ``S' -> start``. The parser is shareable across threads: the intern table and
    transition memo are guarded by a lock; sets themselves never change.
    """

    def __init__(self, n_lexemes: int, productions: list[tuple[int, tuple[int, ...]]],
                 start: int, limits: ParserLimits | None = None) -> None:
        self.n_lexemes = n_lexemes
        self.limits = limits or ParserLimits()
        aug = max([start, n_lexemes - 1] + [lhs for lhs, _ in productions]
                  + [s for _, rhs in productions for s in rhs]) + 1
        self.augmented_start = aug
        self.productions: list[tuple[int, tuple[int, ...]]] = [(aug, (start,))] + list(productions)
        by_lhs: dict[int, list[int]] = {}
        for i, (lhs, _) in enumerate(self.productions):
            by_lhs.setdefault(lhs, []).append(i)
        self.by_lhs: dict[int, tuple[int, ...]] = {k: tuple(v) for k, v in by_lhs.items()}
        for _, rhs in self.productions:
            for s in rhs:
                if s >= n_lexemes and s not in self.by_lhs:
                    raise GrammarSyntaxError(f"nonterminal #{s} has no productions")
        self.nullable = self._nullable()
        # the symbol after the dot of each (production, dot), -1 when complete: the
        # one-item kernels most scans produce are classified with one lookup
        self._after: list[tuple[int, ...]] = [rhs + (-1,) for _, rhs in self.productions]
        self._closure = {n: self._prediction_closure(n) for n in self.by_lhs}
        self._lock = threading.Lock()  # never taken twice by one thread
        # kernel -> weak reference to its set; dead entries are swept when the table
        # doubles (a WeakValueDictionary's per-entry callbacks cost ~2 us per new set)
        self._intern: dict[frozenset[Item], weakref.ref[EarleySet]] = {}
        self._sweep_at = _MIN_SWEEP
        self._recent: OrderedDict[int, EarleySet] = OrderedDict()
        self._pred_cache: dict[frozenset[int], _Predicted] = {}
        self._pred_by_seeds: dict[frozenset[int], _Predicted] = {}
        self._one: dict[int, tuple[dict[int, tuple[Item, ...]], tuple[Item, ...],
                                   frozenset[int]]] = {}
        self._uid = 0
        self.initial = self._build([(0, 0, None)])
        assert self.initial is not None

    def _nullable(self) -> frozenset[int]:
        nullable: set[int] = set()
        changed = True
        while changed:
            changed = False
            for lhs, rhs in self.productions:
                if lhs not in nullable and all(s in nullable for s in rhs):
                    nullable.add(lhs)
                    changed = True
        return frozenset(nullable)

    def _prediction_closure(self, nt: int) -> tuple[frozenset[Item], frozenset[int]]:
        """Items (origin None = "this set") that predicting ``nt`` adds, closed under
        prediction and nullable advancement, and the nonterminals it predicts.

        Such items are position-independent, so precomputing them turns most of a set's
        closure into one set union (completions, which need origins, stay dynamic)."""
        prods, n_lex, nullable = self.productions, self.n_lexemes, self.nullable
        items: set[Item] = set()
        predicted = {nt}
        work: list[Item] = [(q, 0, None) for q in self.by_lhs[nt]]
        while work:
            it = work.pop()
            if it in items:
                continue
            items.add(it)
            p, d, _ = it
            rhs = prods[p][1]
            if d < len(rhs) and rhs[d] >= n_lex:
                m = rhs[d]
                if m not in predicted:
                    predicted.add(m)
                    work.extend((q, 0, None) for q in self.by_lhs[m])
                if m in nullable:
                    work.append((p, d + 1, None))
        return frozenset(items), frozenset(predicted)

    # -- core ------------------------------------------------------------------------
    def _predicted_from(self, seeds: frozenset[int]) -> _Predicted:
        """:meth:`_predicted` of everything ``seeds`` predict, cached by the seeds (each
        ``closure[nt]`` is closed under prediction, so the seeds determine it)."""
        found = self._pred_by_seeds.get(seeds)
        if found is None:
            closure = self._closure
            if len(seeds) == 1:
                nts = closure[next(iter(seeds))][1]
            else:
                union: set[int] = set()
                for s in seeds:
                    union |= closure[s][1]
                nts = frozenset(union)
            found = self._predicted(nts, seeds)
            with self._lock:
                if len(self._pred_by_seeds) >= _MAX_PREDICTED:
                    self._pred_by_seeds.clear()
                self._pred_by_seeds[seeds] = found
        return found

    def _predicted(self, nts: frozenset[int], seeds: frozenset[int]) -> _Predicted:
        """The shared part of every set that predicts exactly ``nts`` (cached): items with
        origin "this set" grouped by the symbol after their dot. The items are the union
        of the closures of the ``seeds`` alone (each is closed under prediction, so it
        holds the closure of every nonterminal it predicts; a schema value's seed predicts
        dozens, and unioning all their closures again was ~30% of this step)."""
        found = self._pred_cache.get(nts)
        if found is None:
            closure = self._closure
            items: frozenset[Item] | set[Item]
            if len(seeds) == 1:
                items = closure[next(iter(seeds))][0]
            else:
                items = set()
                for s in seeds:
                    items |= closure[s][0]
            by_next: dict[int, list[Item]] = {}
            for it in items:
                rhs = self.productions[it[0]][1]
                if it[1] < len(rhs):
                    by_next.setdefault(rhs[it[1]], []).append(it)
            found = _Predicted({k: tuple(v) for k, v in by_next.items()}, len(items),
                               frozenset(k for k in by_next if k < self.n_lexemes))
            with self._lock:
                if len(self._pred_cache) >= _MAX_PREDICTED:
                    self._pred_cache.clear()
                self._pred_cache[nts] = found
        return found

    def _build(self, kernel: Sequence[Item]) -> EarleySet | None:
        """Close ``kernel`` under complete (and nullable advance), add the predictions, intern.

        Only the *kernel* (items with explicit origins) is processed per set: everything
        predicted depends on the predicted nonterminals alone, so it is one shared
        :class:`_Predicted` per nonterminal set, and a set is interned by its kernel.
        """
        if len(kernel) == 1:
            # most scans advance one item to before a symbol that is not nullable (97% of
            # the sets of a cold C pass): nothing to close, the set is that item and what
            # its symbol predicts
            it = kernel[0]
            sym = self._after[it[0]][it[1]]
            if sym >= 0 and sym not in self.nullable:
                return self._single(it, sym)
        prods = self.productions
        n_lex = self.n_lexemes
        nullable = self.nullable
        limit = self.limits.max_items_per_set
        items: set[Item] = set()
        work = list(kernel)
        # nonterminals after a dot of a kernel item: their closures are the whole
        # prediction, so they key it (a few ids; hashing and comparing the predicted
        # closure, hundreds of ids on C, was ~13 us per new set)
        seeds: set[int] = set()
        while work:
            it = work.pop()
            if it in items:
                continue
            items.add(it)
            p, d, o = it
            lhs, rhs = prods[p]
            if d < len(rhs):
                s = rhs[d]
                if s >= n_lex:
                    seeds.add(s)
                    if s in nullable:
                        work.append((p, d + 1, o))
            elif o is not None:
                for pp, dd, oo in o.by_next.get(lhs, ()):
                    work.append((pp, dd + 1, oo if oo is not None else o))
            if len(items) > limit:
                raise ConstraintTooComplex(
                    f"Earley set exceeds {limit} items (ParserLimits.max_items_per_set)")
        if not items:
            return None
        key = frozenset(items)
        found = self._lookup(key)
        if found is not None:
            return found
        pred = self._predicted_from(frozenset(seeds))
        self._check_size(len(items) + pred.n_items)
        own: dict[int, list[Item]] = {}
        accepting = False
        for it in items:
            p, d, _ = it
            rhs = prods[p][1]
            if d < len(rhs):
                own.setdefault(rhs[d], []).append(it)
            elif p == 0:
                accepting = True
        by_next = pred.by_next.copy()
        for sym, its in own.items():
            shared = by_next.get(sym)
            by_next[sym] = tuple(its) + shared if shared else tuple(its)
        own_lexemes = [k for k in own if k < n_lex]
        expected = pred.expected.union(own_lexemes) if own_lexemes else pred.expected
        return self._publish(key, by_next, expected, accepting)

    def _single(self, it: Item, sym: int) -> EarleySet:
        """:meth:`_build` of the one item ``it`` whose dot stands before ``sym``, a lexeme
        or a nonterminal that is not nullable (the set is the item plus predictions).

        Most new sets of a cold mask come here; the per-symbol part is one cached tuple,
        so a set costs its lookup, its dict copy, its object and its intern entry."""
        key = frozenset((it,))
        found = self._lookup(key)
        if found is not None:
            return found
        base = self._one.get(sym)
        if base is None:
            base = self._one_base(sym)
        by_next = base[0].copy()
        by_next[sym] = (it,) + base[1]
        return self._publish(key, by_next, base[2], False)

    def _one_base(self, sym: int) -> tuple[dict[int, tuple[Item, ...]], tuple[Item, ...],
                                           frozenset[int]]:
        """What every one-item set before ``sym`` shares (cached per symbol): the
        predicted items by next symbol, those before ``sym`` itself, the expected
        lexemes. Checks the set size limit once per symbol."""
        if sym < self.n_lexemes:  # a lexeme: nothing predicted
            base: tuple[dict[int, tuple[Item, ...]], tuple[Item, ...], frozenset[int]] = (
                {}, (), frozenset((sym,)))
        else:
            pred = self._predicted_from(frozenset((sym,)))
            self._check_size(1 + pred.n_items)
            base = (pred.by_next, pred.by_next.get(sym, ()), pred.expected)
        self._one[sym] = base  # one entry per grammar symbol; benign race
        return base

    def _lookup(self, key: frozenset[Item]) -> EarleySet | None:
        """The live interned set of kernel ``key`` (kept among the recent ones), or None."""
        ref = self._intern.get(key)
        found = ref() if ref is not None else None
        if found is not None:
            with self._lock:
                self._touch(found)
        return found

    def _check_size(self, n_items: int) -> None:
        """Raise ``ConstraintTooComplex`` for a set of more than the item limit."""
        limit = self.limits.max_items_per_set
        if n_items > limit:
            raise ConstraintTooComplex(
                f"Earley set exceeds {limit} items (ParserLimits.max_items_per_set)")

    def _publish(self, key: frozenset[Item], by_next: dict[int, tuple[Item, ...]],
                 expected: frozenset[int], accepting: bool) -> EarleySet:
        """The interned set of kernel ``key``: a new one from these parts, unless another
        thread published it first."""
        with self._lock:
            ref = self._intern.get(key)
            found = ref() if ref is not None else None
            if found is not None:
                self._touch(found)
                return found
            self._uid += 1
            found = EarleySet(key, by_next, expected, accepting, self._uid)
            self._intern[key] = weakref.ref(found)
            if len(self._intern) >= self._sweep_at:
                self._sweep()
            recent = self._recent
            recent[self._uid] = found  # a new uid goes to the end: no move_to_end
            if len(recent) > self.limits.keep_recent_sets:
                recent.popitem(last=False)
        return found

    def _sweep(self) -> None:
        """Drop the intern entries of dead sets (lock held); amortised O(1) per set."""
        live = {k: r for k, r in self._intern.items() if r() is not None}
        self._intern = live  # one assignment: lock-free readers see the old or the new table
        self._sweep_at = max(_MIN_SWEEP, 2 * len(live))

    def _touch(self, found: EarleySet) -> None:
        """Keep ``found`` among the recently used sets (lock held)."""
        self._recent[found.uid] = found
        self._recent.move_to_end(found.uid)
        while len(self._recent) > self.limits.keep_recent_sets:
            self._recent.popitem(last=False)

    def scan(self, state: EarleySet, lexemes: frozenset[int]) -> EarleySet | None:
        """The set after reading one lexeme whose identity is any of ``lexemes``.

        Several ids arise when one span matches several terminals (``"if"`` and NAME);
        the Earley set then follows every reading. Returns None when none is expected.
        """
        memo = state._next.get(lexemes, _MISSING)
        if memo is None:
            return None
        if memo is not _MISSING:
            found = memo()  # type: ignore[operator]
            if found is not None:
                return found
        kernel = [(p, d + 1, o if o is not None else state)
                  for t in lexemes for p, d, o in state.by_next.get(t, ())]
        result = self._build(kernel) if kernel else None
        # one atomic dict store: racing threads memoise the same successor
        state._next[lexemes] = None if result is None else weakref.ref(result)
        return result

    def recognise(self, lexemes: Iterable[int | frozenset[int]]) -> bool:
        """Whether a whole sequence of lexeme ids (or id sets) is a sentence."""
        state: EarleySet | None = self.initial
        for lx in lexemes:
            ids = lx if isinstance(lx, frozenset) else frozenset((lx,))
            state = self.scan(state, ids)  # type: ignore[arg-type]
            if state is None:
                return False
        return state is not None and state.accepting
