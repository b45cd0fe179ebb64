"""Byte AST -> trimmed Thompson NFA in flat numpy arrays.

States are byte states (one byte-set label, one successor), epsilon states (a list of
successors, stored CSR) and one accept state per lexeme. The builder works right to left
in continuation-passing style (``build(node, next_state)``) and memoises on
``(node identity, next_state)``, so the interned UTF-8 sub-trees of a character class
share states. Counted repetition expands copies; the size is capped by
``Limits.max_nfa_states`` (estimated once the NFA passes 16k states, so blow-ups fail
early).
Intersection/complement (``And``/``Not``) are determinised through a small product DFA
and embedded as a fragment. Trimming marks the states that can reach acceptance; closures
only ever contain those, so every non-empty DFA state is live.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import chain

import numpy as np

from ..errors import ConstraintTooComplex, RegexUnsupported
from .ast import Alt, And, ByteSet, Concat, Node, Not, Repeat
from .limits import DEFAULT_LIMITS, Deadline, Limits
from .trim import live_states

KIND_BYTE, KIND_EPS, KIND_ACCEPT = 0, 1, 2
# the size estimate runs once an NFA has this many states (most never get there): up
# front it cost ~40% of building the typical 2-3k-state schema NFA; this late, a
# hopeless pattern still fails after ~20 ms of building instead of at the limit
_ESTIMATE_AFTER = 16_384
#: lay out the copies of a counted repetition in bulk (``_Builder.copies``); False: one
#: by one (the reference layout, which tests compare against)
_BULK_COPIES = True
#: ... from this many copies on (numpy's per-call overhead, ~60 us per repetition, is
#: recovered past ~20 copies of a JSON string character)
_BULK_MIN = 24
_NO_EPS: list[int] = []  # shared by every byte state (never mutated)


@dataclass
class NFA:
    """A trimmed byte NFA for a list of lexemes (read-only after construction).

    ``kind[s]``: byte / epsilon / accept. ``label[s]``: index into ``labels`` (256-bit
    ints) for byte states, else -1. ``succ[s]``: successor of a byte state.
    ``eps_ptr``/``eps_dst``: CSR epsilon edges. ``lexeme[s]``: owning lexeme.
    ``starts[i]``: entry state of lexeme ``i``; ``live[s]``: can reach an accept state.
    ``class_of``: byte -> equivalence class; ``label_classes[label[s]]``: bool[n_classes]
    of the classes byte state ``s`` accepts.
    """

    kind: np.ndarray
    label: np.ndarray
    succ: np.ndarray
    eps_ptr: np.ndarray
    eps_dst: np.ndarray
    lexeme: np.ndarray
    starts: list[int]
    labels: list[int]
    live: np.ndarray
    max_closure_total: int = 4_000_000
    _closures: dict[int, frozenset[int]] = field(default_factory=dict, repr=False)
    _closure_total: list[int] = field(default_factory=lambda: [0], repr=False)
    # (class_of, class_bytes, label_classes), computed from ``labels`` on first use: the
    # per-lexeme NFAs a growing lexer appends never need their own (~0.2 ms each)
    _classes: tuple[np.ndarray, list[np.ndarray], np.ndarray] | None = field(
        default=None, repr=False)

    def _byte_class_info(self) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
        info = self._classes
        if info is None:
            info = self._classes = _byte_classes(self.labels)  # benign race: same value
        return info

    @property
    def class_of(self) -> np.ndarray:
        """int32[256]: byte -> equivalence class (bytes every label treats alike)."""
        return self._byte_class_info()[0]

    @property
    def class_bytes(self) -> list[np.ndarray]:
        """The bytes of each class, classes numbered in order of their first byte."""
        return self._byte_class_info()[1]

    @property
    def label_classes(self) -> np.ndarray:
        """bool[n_labels, n_classes]: the classes each label accepts."""
        return self._byte_class_info()[2]

    @property
    def n_states(self) -> int:
        return len(self.kind)

    @property
    def n_classes(self) -> int:
        return len(self.class_bytes)

    def closure(self, state: int) -> frozenset[int]:
        """Live byte and accept states reachable from ``state`` by epsilon moves (memoised).

        Not thread-safe on its own: the LazyDFA calls it under its lock.
        """
        hit = self._closures.get(state)
        if hit is not None:
            return hit
        res = self._dfs([state])
        self._closure_total[0] += len(res)
        if self._closure_total[0] > self.max_closure_total:
            raise ConstraintTooComplex(
                f"epsilon closures exceed {self.max_closure_total} states in total "
                "(Limits.max_state_set_total); nested optional repeats multiply")
        self._closures[state] = res
        return res

    def _dfs(self, starts: list[int]) -> frozenset[int]:
        kind, live, ptr, dst, memo = self.kind, self.live, self.eps_ptr, self.eps_dst, self._closures
        out: list[int] = []
        parts: list[frozenset[int]] = []
        seen = set(starts)
        stack = list(starts)
        while stack:
            s = stack.pop()
            if not live[s]:
                continue
            if kind[s] != KIND_EPS:
                out.append(s)
                continue
            hit = memo.get(s)
            if hit is not None:
                parts.append(hit)
                continue
            for t in dst[ptr[s] : ptr[s + 1]].tolist():
                if t not in seen:
                    seen.add(t)
                    stack.append(t)
        if parts:
            return frozenset(out).union(*parts)
        return frozenset(out)


class _Builder:
    """Accumulates states while lowering AST nodes (see module docstring)."""

    def __init__(self, limits: Limits, deadline: Deadline) -> None:
        self.limits = limits
        self.deadline = deadline
        self.kind: list[int] = []
        self.label: list[int] = []
        self.succ: list[int] = []
        self.eps: list[list[int]] = []
        self.lexeme: list[int] = []
        self.labels: list[int] = []
        self.label_index: dict[int, int] = {}
        self.memo: dict[tuple[int, int], int] = {}
        self.keep: list[Node] = []  # keeps memo ids valid
        # id(item) -> (placeholder, first state, end state, entry) of a built template
        self.templates: dict[int, tuple[int, int, int, int]] = {}
        self.nonempty_memo: dict[int, Node | None] = {}
        self.current_lexeme = 0
        self.roots: Sequence[Node] = ()  # every lexeme, for the size estimate
        self.estimated = False

    def check_estimate(self) -> None:
        """Once the NFA is big, estimate its final size and fail now if it is hopeless
        (counted repetitions multiply), instead of building to the limit first."""
        if self.estimated:
            return
        self.estimated = True
        memo: dict[int, int] = {}
        flat: dict[int, bool] = {}
        sizes: dict[int, int] = {}
        estimate = sum(_estimate(n, memo, flat, sizes) for n in self.roots)
        # The estimate counts shared UTF-8 sub-trees per use, so allow some slack.
        if estimate > 4 * self.limits.max_nfa_states:
            raise ConstraintTooComplex(
                f"regex NFA would need about {estimate} states, over the limit of "
                f"{self.limits.max_nfa_states} (Limits.max_nfa_states); counted repetitions "
                "multiply")

    def new(self, kind: int, label: int = -1, succ: int = -1, eps: list[int] | None = None) -> int:
        s = len(self.kind)
        if s >= self.limits.max_nfa_states:
            raise ConstraintTooComplex(
                f"regex NFA exceeds {self.limits.max_nfa_states} states (Limits.max_nfa_states)")
        if s & 0xFFF == 0:
            self.deadline.check()
            if s >= _ESTIMATE_AFTER:
                self.check_estimate()
        self.kind.append(kind)
        self.label.append(label)
        self.succ.append(succ)
        self.eps.append(eps if eps is not None else [])
        self.lexeme.append(self.current_lexeme)
        return s

    def byte_state(self, bits: int, nxt: int) -> int:
        idx = self.label_index.get(bits)
        if idx is None:
            idx = len(self.labels)
            self.labels.append(bits)
            self.label_index[bits] = idx
        s = len(self.kind)
        if s & 0xFFF == 0 or s >= self.limits.max_nfa_states:
            return self.new(KIND_BYTE, idx, nxt)  # the checks, once in 4096 states
        # inlined ``new``: byte states are most of an NFA
        self.kind.append(KIND_BYTE)
        self.label.append(idx)
        self.succ.append(nxt)
        self.eps.append(_NO_EPS)
        self.lexeme.append(self.current_lexeme)
        return s

    def build(self, node: Node, nxt: int) -> int:
        """Entry state of a fragment matching ``node`` then continuing at ``nxt``."""
        key = (id(node), nxt)
        hit = self.memo.get(key)
        if hit is not None:
            return hit
        if isinstance(node, ByteSet):
            entry = self.byte_state(node.bits, nxt)
        elif isinstance(node, Concat):
            entry = nxt
            for it in reversed(node.items):
                entry = self.build(it, entry)
        elif isinstance(node, Alt):
            entry = self.new(KIND_EPS)
            self.eps[entry] = [self.build(it, nxt) for it in node.items]
        elif isinstance(node, Repeat):
            entry = self.repeat(node, nxt)
        elif isinstance(node, (And, Not)):
            entry = self.boolean(node, nxt)
        else:
            raise TypeError(f"not a regex AST node: {node!r}")
        # ``node`` needs no keep-alive here: it is reachable from the roots, or from a
        # node this builder keeps (``nonempty``, templates), so its id stays unique
        self.memo[key] = entry
        return entry

    def repeat(self, node: Repeat, nxt: int) -> int:
        lo, hi, item = node.min, node.max, node.item
        if hi is not None and hi < lo:
            raise RegexUnsupported(f"repeat bounds {{{lo},{hi}}} are reversed")
        if lo > 0 or hi is None or hi > 1:
            # X nullable: X{lo,hi} == (X minus the empty string){0,hi}; avoids epsilon
            # chains whose closures grow with the count, as in (a?){5000}
            nonempty = self.nonempty(item)
            if nonempty is not None:
                item, lo = nonempty, 0
        if isinstance(item, ByteSet) and hi is not None:
            return self.repeat_bytes(item.bits, lo, hi, nxt)
        n_copies = lo + (1 if hi is None else hi - lo)
        # few copies: plain builds (no template overhead); many: clone a template
        copy = self.build if n_copies <= 2 else self.copy
        if hi is None:
            loop = self.new(KIND_EPS)
            self.eps[loop] = [copy(item, loop), nxt]
            cur = loop
        else:
            cur = self._chain(item, nxt, hi - lo, nxt, copy)
        return self._chain(item, cur, lo, None, copy)

    def _chain(self, item: Node, cur: int, k: int, exit_to: int | None,
               copy: Callable[[Node, int], int]) -> int:
        """``k`` copies of ``item`` laid right to left ending at ``cur``: each behind an
        optional-exit state ``[copy entry, exit_to]`` with ``exit_to``, chained entry to
        next without. Past ``_BULK_MIN`` copies the first makes the template and the rest
        are laid out by :meth:`copies`; returns the new entry."""
        def one(cur: int) -> int:
            if exit_to is None:
                return copy(item, cur)
            opt = self.new(KIND_EPS)
            self.eps[opt] = [copy(item, cur), exit_to]
            return opt

        if k > _BULK_MIN and _BULK_COPIES:
            cur = one(cur)
            done = self.copies(item, cur, k - 1, exit_to)
            if done is not None:
                return done
            k -= 1
        for _ in range(k):
            cur = one(cur)
        return cur

    def copies(self, item: Node, cur: int, k: int, exit_to: int | None) -> int | None:
        """``k`` more copies of ``item``'s template laid out at once, exactly as the
        loops of :meth:`repeat` lay them out one by one (the same state numbers): with
        ``exit_to``, each copy behind an optional-exit state ``[copy entry, exit_to]``
        continuing at the previous exit state; without, copies chained entry to next.
        Returns the new ``cur``, or None (nothing done) when the template's entry lies
        outside it. A ``{0,2000}``-bounded JSON string is 2,000 copies of a ~23-state
        template: copying one at a time with list comprehensions took ~9 us a copy."""
        tpl = self.templates.get(id(item))
        if tpl is None:
            return None
        ph, a, b, entry = tpl
        t_len = b - a
        if t_len == 0 or not a <= entry < b:
            return None
        opt = exit_to is not None
        width = t_len + opt  # states per copy
        base = len(self.kind)
        if base + k * width > self.limits.max_nfa_states:
            raise ConstraintTooComplex(
                f"regex NFA exceeds {self.limits.max_nfa_states} states (Limits.max_nfa_states)")
        self.deadline.check()
        if base + k * width >= _ESTIMATE_AFTER:
            self.check_estimate()
        j = np.arange(k, dtype=np.int64)
        first = base + j * width + opt  # first template state of copy j
        off = first - a
        if opt:
            nxt = np.concatenate(([cur], first[:-1] - 1))  # the previous exit state
        else:
            nxt = np.concatenate(([cur], entry + off[:-1]))  # the previous copy's entry
        tsucc = np.array(self.succ[a:b], dtype=np.int64)
        inside = (tsucc >= a) & (tsucc < b)
        succ = np.where(inside, tsucc + off[:, None],
                        np.where(tsucc == ph, nxt[:, None], tsucc))
        cols: list[list[object]] = []
        if opt:
            succ = np.concatenate((np.full((k, 1), -1, dtype=np.int64), succ), axis=1)
            cols.append(np.stack((entry + off, np.full(k, exit_to))).T.tolist())
        for e in self.eps[a:b]:
            if not e:
                cols.append([e] * k)  # the shared empty list, as ``copy`` keeps it
                continue
            targets = np.array(e, dtype=np.int64)
            t_in = (targets >= a) & (targets < b)
            cols.append(np.where(t_in, targets + off[:, None],
                                 np.where(targets == ph, nxt[:, None], targets)).tolist())
        kinds = self.kind[a:b]
        labels = self.label[a:b]
        if opt:
            kinds = [KIND_EPS, *kinds]
            labels = [-1, *labels]
        self.kind.extend(kinds * k)
        self.label.extend(labels * k)
        self.succ.extend(succ.ravel().tolist())
        self.eps.extend(chain.from_iterable(zip(*cols)))
        self.lexeme.extend([self.current_lexeme] * (k * width))
        last = k - 1
        return int(first[last] - 1) if opt else int(entry + off[last])

    def repeat_bytes(self, bits: int, lo: int, hi: int, nxt: int) -> int:
        """``[set]{lo,hi}`` laid out in bulk (bounded whitespace is half of a typical
        schema NFA): ``hi - lo`` (byte, optional-exit) pairs, then ``lo`` byte states,
        built right to left as :meth:`repeat` would, with list extends instead of a
        call per state."""
        k, s0 = hi - lo, len(self.kind)
        n = 2 * k + lo
        if s0 + n > self.limits.max_nfa_states:
            raise ConstraintTooComplex(
                f"regex NFA exceeds {self.limits.max_nfa_states} states (Limits.max_nfa_states)")
        if n > 64:
            self.deadline.check()
        if s0 + n >= _ESTIMATE_AFTER:
            self.check_estimate()
        idx = self.label_index.get(bits)
        if idx is None:
            idx = self.label_index[bits] = len(self.labels)
            self.labels.append(bits)
        # optional part: byte b_j = s0 + 2j, exit e_j = s0 + 2j + 1 (e_j: [b_j, nxt]);
        # b_0 continues at nxt, b_j at e_(j-1)
        entry = s0 + 2 * k - 1 if k else nxt
        succ = [-1] * (2 * k)
        succ[0::2] = [nxt, *range(s0 + 1, s0 + 2 * k - 1, 2)][:k]
        eps: list[list[int]] = [_NO_EPS] * (2 * k)
        eps[1::2] = [[b, nxt] for b in range(s0, s0 + 2 * k, 2)]
        # mandatory part: m_j = s0 + 2k + j continues at the previous entry
        m0 = s0 + 2 * k
        if lo:
            succ += [entry, *range(m0, m0 + lo - 1)]
            eps += [_NO_EPS] * lo
        self.kind.extend([KIND_BYTE, KIND_EPS] * k)
        self.kind.extend([KIND_BYTE] * lo)
        self.label.extend([idx, -1] * k)
        self.label.extend([idx] * lo)
        self.succ.extend(succ)
        self.eps.extend(eps)
        self.lexeme.extend([self.current_lexeme] * n)
        return m0 + lo - 1 if lo else entry

    def nonempty(self, item: Node) -> Node | None:
        """``item`` without the empty string, if ``item`` is nullable (else None)."""
        key = id(item)
        if key not in self.nonempty_memo:
            res = _drop_empty(item, {}) if _nullable(item, {}) else None
            self.nonempty_memo[key] = res
            self.keep.append(item)
            if res is not None:
                self.keep.append(res)
        return self.nonempty_memo[key]

    def copy(self, item: Node, nxt: int) -> int:
        """``build(item, nxt)`` for a repeated item: the item is built once as a template
        (wired to a placeholder) and each copy clones its state range with list ops."""
        tpl = self.templates.get(id(item))
        if tpl is None:
            if isinstance(item, ByteSet):
                return self.build(item, nxt)
            ph = self.new(KIND_EPS)
            first = len(self.kind)
            entry = self.build(item, ph)
            tpl = (ph, first, len(self.kind), entry)
            self.templates[id(item)] = tpl
            self.keep.append(item)
        ph, a, b, entry = tpl
        if b - a == 0:
            return nxt if entry == ph else entry
        off = len(self.kind) - a
        if len(self.kind) + (b - a) > self.limits.max_nfa_states:
            raise ConstraintTooComplex(
                f"regex NFA exceeds {self.limits.max_nfa_states} states (Limits.max_nfa_states)")
        self.deadline.check()
        if len(self.kind) >= _ESTIMATE_AFTER:
            self.check_estimate()

        # targets inside the template move by ``off``, the placeholder becomes ``nxt``,
        # anything else (earlier states, -1) stays: inlined, a call per target cost half
        self.kind.extend(self.kind[a:b])
        self.label.extend(self.label[a:b])
        self.succ.extend([t + off if a <= t < b else (nxt if t == ph else t)
                          for t in self.succ[a:b]])
        self.eps.extend([[t + off if a <= t < b else (nxt if t == ph else t) for t in e]
                         if e else e for e in self.eps[a:b]])
        self.lexeme.extend([self.current_lexeme] * (b - a))
        return entry + off if a <= entry < b else (nxt if entry == ph else entry)

    def boolean(self, node: And | Not, nxt: int) -> int:
        """Intersection / complement: explore a product DFA, embed it as a fragment."""
        from .dfa import product_transitions  # local import: dfa builds on this module

        components: list[tuple[Node, bool]] = []

        def add(n: Node, negated: bool) -> None:
            if isinstance(n, Not):
                add(n.item, not negated)
            elif isinstance(n, And) and not negated:
                for it in n.items:
                    add(it, False)
            else:
                components.append((n, negated))

        add(node, False)
        del add  # a recursive closure refers to itself: free it without the GC
        states, accepting, edges = product_transitions(components, self.limits, self.deadline)
        entries = [self.new(KIND_EPS) for _ in range(states)]
        for q in range(states):
            targets = [self.byte_state(bits, entries[t]) for t, bits in edges[q]]
            if accepting[q]:
                targets.append(nxt)
            self.eps[entries[q]] = targets
        return entries[0]


def _nullable(node: Node, memo: dict[int, bool]) -> bool:
    """Does ``node`` match the empty string? (And/Not: conservatively True.)"""
    key = id(node)
    hit = memo.get(key)
    if hit is not None:
        return hit
    if isinstance(node, ByteSet):
        res = False
    elif isinstance(node, Concat):
        res = all(_nullable(it, memo) for it in node.items)
    elif isinstance(node, Alt):
        res = any(_nullable(it, memo) for it in node.items)
    elif isinstance(node, Repeat):
        res = node.min == 0 or _nullable(node.item, memo)
    else:
        res = True
    memo[key] = res
    return res


def _drop_empty(node: Node, memo: dict[int, bool]) -> Node | None:
    """A node for L(node) minus the empty string (None where And/Not make it unknown)."""
    if not _nullable(node, memo):
        return node
    if isinstance(node, Concat):
        if not node.items:
            return Alt(())
        head, rest = node.items[0], Concat(node.items[1:])
        head_ne = _drop_empty(head, memo)
        rest_ne = _drop_empty(rest, memo) if len(node.items) > 1 else Alt(())
        if head_ne is None or rest_ne is None:
            return None
        return Alt((Concat((head_ne, rest)), rest_ne))
    if isinstance(node, Alt):
        items = [_drop_empty(it, memo) for it in node.items]
        if any(it is None for it in items):
            return None
        return Alt(tuple(it for it in items if it is not None))
    if isinstance(node, Repeat):
        if node.max == 0:
            return Alt(())
        inner = _drop_empty(node.item, memo)
        if inner is None:
            return None
        return Repeat(inner, 1, node.max)
    return None


def _estimate(node: Node, memo: dict[int, int], flat: dict[int, bool],
              sizes: dict[int, int] | None = None) -> int:
    """State count estimate: repeats multiply; a repeat-free sub-DAG (a character class
    from ``utf8.py``) counts its distinct nodes, as the builder shares them.

    Flatness is memoised per node and a flat sub-DAG is sized once where a non-flat
    parent meets it (sizing while testing flatness, twice per node, took 3.5 s on a
    1,567-lexeme schema grammar; now 1.9 s, still walking one shared character class
    per wrapper node). ``sizes`` memoises flat sizes, so a wrapper around an already
    sized class adds that size instead of walking the class again (an upper bound: nodes
    shared between two sized parts count twice)."""
    if sizes is None:
        sizes = {}
    key = id(node)
    hit = memo.get(key)
    if hit is not None:
        return hit
    if isinstance(node, ByteSet):
        res = 1
    elif isinstance(node, Repeat):
        copies = node.min + (1 if node.max is None else max(node.max - node.min, 0))
        res = 1 + max(copies, 1) * (_estimate(node.item, memo, flat, sizes) + 1)
    elif isinstance(node, Not):
        res = 1 + _estimate(node.item, memo, flat, sizes)
    elif isinstance(node, (Concat, Alt)) and _is_flat(node, flat):
        res = _flat_size(node, sizes) or 1
    elif isinstance(node, (Concat, Alt, And)):
        res = 1 + sum(_estimate(it, memo, flat, sizes) for it in node.items)
    else:
        res = 1
    memo[key] = res
    return res


def _is_flat(node: Node, memo: dict[int, bool]) -> bool:
    """Whether ``node`` is a DAG of only ByteSet/Concat/Alt (memoised by identity)."""
    key = id(node)
    hit = memo.get(key)
    if hit is None:
        if isinstance(node, ByteSet):
            hit = True
        elif isinstance(node, (Concat, Alt)):
            hit = all(_is_flat(it, memo) for it in node.items)
        else:
            hit = False
        memo[key] = hit
    return hit


def _flat_size(node: Node, sizes: dict[int, int] | None = None) -> int | None:
    """Distinct nodes of a DAG of only ByteSet/Concat/Alt, or None if it has others.

    With ``sizes`` (flat nodes sized before, by id): such a sub-DAG adds its recorded size
    without being walked again, and this node's size is recorded there.
    """
    seen: set[int] = set()
    stack = [node]
    extra = 0
    while stack:
        n = stack.pop()
        k = id(n)
        if k in seen:
            continue
        seen.add(k)
        if sizes is not None and n is not node:
            known = sizes.get(k)
            if known is not None:
                extra += known - 1
                continue
        if isinstance(n, (Concat, Alt)):
            stack.extend(n.items)
        elif not isinstance(n, ByteSet):
            return None
    total = len(seen) + extra
    if sizes is not None:
        sizes[id(node)] = total
    return total


def build_nfa(nodes: Sequence[Node], limits: Limits | None = None) -> NFA:
    """Build the trimmed NFA of the union of ``nodes`` (lexeme ``i`` = ``nodes[i]``)."""
    limits = limits or DEFAULT_LIMITS
    deadline = Deadline(limits.max_seconds, "regex NFA construction")
    b = _Builder(limits, deadline)
    b.roots = nodes
    starts: list[int] = []
    try:
        for i, node in enumerate(nodes):
            b.current_lexeme = i
            acc = b.new(KIND_ACCEPT)
            starts.append(b.build(node, acc))
    except RecursionError:
        raise ConstraintTooComplex("regex AST is nested too deeply") from None
    nfa = _finish(b, starts, deadline)
    nfa.max_closure_total = limits.max_state_set_total
    return nfa


def _byte_classes(labels: list[int]) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """Byte equivalence classes (bytes every label treats alike): (class_of int32[256],
    the bytes of each class, bool[n_labels, n_classes] classes of each label)."""
    matrix = _label_matrix(labels)
    # group the 256 bytes by their column (which labels contain them)
    if len(labels):
        class_of, class_bytes, first_idx = _partition(
            np.ascontiguousarray(np.packbits(matrix.T, axis=1)))
    else:
        class_of = np.zeros(256, dtype=np.int32)
        class_bytes = [np.arange(256, dtype=np.uint8)]
        first_idx = np.zeros(1, dtype=np.intp)
    # C order always: fancy indexing of columns may give a Fortran-ordered array, and the
    # compiled row kernels are specialised on layout (an F-ordered one cost a ~100 ms
    # numba cache load inside the first mask of a grammar)
    label_cls = (np.ascontiguousarray(matrix[:, first_idx]) if len(labels)
                 else np.zeros((0, 1), dtype=bool))
    return class_of, class_bytes, label_cls


def _label_matrix(labels: list[int]) -> np.ndarray:
    """bool[len(labels), 256]: the bytes of each 256-bit label."""
    if not labels:
        return np.zeros((0, 256), dtype=bool)
    raw = np.frombuffer(b"".join(x.to_bytes(32, "little") for x in labels), dtype=np.uint8)
    return np.unpackbits(raw.reshape(len(labels), 32), axis=1, bitorder="little").astype(bool)


def _partition(key: np.ndarray) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """Bytes grouped by equal rows of ``key`` (uint8[256, w]): (class_of int32[256],
    the bytes of each class, the first byte of each class); classes are numbered in
    order of their first byte."""
    keys = key.view(np.dtype((np.void, key.shape[1]))).reshape(-1)
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    order = np.argsort(first)
    rank = np.empty(len(order), dtype=np.int32)
    rank[order] = np.arange(len(order), dtype=np.int32)
    class_of = rank[inverse.reshape(-1)]
    first_idx = first[order].astype(np.intp)
    n_classes = len(first_idx)
    by_class = np.argsort(class_of, kind="stable").astype(np.uint8)
    bounds = np.searchsorted(class_of[by_class], np.arange(n_classes + 1))
    class_bytes = [by_class[bounds[c] : bounds[c + 1]] for c in range(n_classes)]
    return class_of, class_bytes, first_idx


def union_nfa(parts: Sequence[NFA], limits: Limits | None = None) -> NFA:
    """The NFA of the union of ``parts`` (lexeme ``i`` = ``parts[i]``), by renumbering
    their states (one :class:`GrowingNFA` filled at once): no AST is lowered again, so
    per-lexeme NFAs can be built once and combined per lexer context."""
    limits = limits or DEFAULT_LIMITS
    total = sum(p.n_states for p in parts)
    if total > limits.max_nfa_states:
        raise ConstraintTooComplex(
            f"regex NFA would need {total} states, over the limit of {limits.max_nfa_states} "
            "(Limits.max_nfa_states)")
    store = GrowingNFA(len(parts), total)
    store.add(dict(enumerate(parts)))
    nfa = store.snapshot()
    nfa.max_closure_total = limits.max_state_set_total
    return nfa


def _finish(b: _Builder, starts: list[int], deadline: Deadline) -> NFA:
    n = len(b.kind)
    kind = np.array(b.kind, dtype=np.int8)
    label = np.array(b.label, dtype=np.int32)
    succ = np.array(b.succ, dtype=np.int32)
    lens = np.fromiter(map(len, b.eps), dtype=np.int64, count=n)
    eps_ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lens, out=eps_ptr[1:])
    eps_dst = np.fromiter(chain.from_iterable(b.eps), dtype=np.int32, count=int(eps_ptr[-1]))
    lexeme = np.array(b.lexeme, dtype=np.int32)

    # trimming: reverse reachability from the accept states over non-empty edges (a
    # label is non-empty when any of its 256 bits is set: no byte classes needed)
    is_byte = kind == KIND_BYTE
    nonempty = np.zeros(n, dtype=bool)
    if is_byte.any():
        label_nonempty = np.array([x != 0 for x in b.labels], dtype=bool)
        nonempty[is_byte] = label_nonempty[label[is_byte]]
    live = live_states(kind, nonempty, succ, eps_ptr, eps_dst)
    deadline.check()
    return NFA(kind=kind, label=label, succ=succ, eps_ptr=eps_ptr, eps_dst=eps_dst,
               lexeme=lexeme, starts=starts, labels=b.labels, live=live)


class GrowingNFA:
    """Append-only storage for one NFA over many lexemes, each added on first use.

    Grammars with hundreds of lexemes (big JSON schemas) reach only some of them, and
    lexer contexts share most: one NFA that grows lets one lazy DFA serve every context
    (``LazyDFA.add_lexemes``) instead of a DFA per context. States of lexemes already
    added keep their numbers; arrays live in buffers with spare capacity (doubled when
    full), so adding a lexeme copies only its own states. Labels are deduplicated, so
    byte classes are recomputed over a few hundred distinct labels, not one per state.
    ``snapshot()`` returns an :class:`NFA` viewing the current prefix of the buffers.
    """

    def __init__(self, n_lexemes: int, max_states: int) -> None:
        self.n_lexemes = n_lexemes
        self.max_states = max_states
        self.n = 0
        self.n_eps = 0
        cap = 1024
        self._kind = np.zeros(cap, dtype=np.int8)
        self._label = np.zeros(cap, dtype=np.int32)
        self._succ = np.zeros(cap, dtype=np.int32)
        self._lexeme = np.zeros(cap, dtype=np.int32)
        self._live = np.zeros(cap, dtype=bool)
        self._eps_ptr = np.zeros(cap + 1, dtype=np.int64)
        self._eps_dst = np.zeros(cap, dtype=np.int32)
        self.labels: list[int] = []
        self._label_index: dict[int, int] = {}
        self.starts: list[int] = [-1] * n_lexemes
        self._closures: dict[int, frozenset[int]] = {}
        self._closure_total: list[int] = [0]
        # byte classes kept up to date as labels arrive (recomputing them over every
        # label per added lexeme was half of adding one on 1,500-lexeme schemas)
        self._label_bits = np.zeros((64, 256), dtype=bool)  # one row per label
        self._classes: tuple[np.ndarray, list[np.ndarray], np.ndarray] = _byte_classes([])
        self._classed_labels = 0  # labels already folded into ``_classes``

    def has(self, lexeme: int) -> bool:
        return self.starts[lexeme] >= 0

    def add(self, parts: dict[int, NFA]) -> None:
        """Append the single-lexeme NFAs ``parts`` (grammar lexeme id -> NFA)."""
        new = [(i, p) for i, p in parts.items() if self.starts[i] < 0]
        grow = sum(p.n_states for _, p in new)
        if self.n + grow > self.max_states:
            raise ConstraintTooComplex(
                f"lexer NFA would need {self.n + grow} states, over the limit of "
                f"{self.max_states}")
        self._reserve(self.n + grow, self.n_eps + sum(int(p.eps_ptr[-1]) for _, p in new))
        for i, p in new:
            a, m = self.n, p.n_states
            label_map = np.array([self._label_id(x) for x in p.labels] or [0], dtype=np.int32)
            is_byte = p.kind == KIND_BYTE
            self._kind[a : a + m] = p.kind
            self._label[a : a + m] = np.where(is_byte, label_map[np.maximum(p.label, 0)], -1)
            self._succ[a : a + m] = np.where(is_byte, p.succ + a, p.succ)
            self._lexeme[a : a + m] = i
            self._live[a : a + m] = p.live
            e = int(p.eps_ptr[-1])
            self._eps_ptr[a + 1 : a + m + 1] = p.eps_ptr[1:] + self.n_eps
            self._eps_dst[self.n_eps : self.n_eps + e] = p.eps_dst + a
            self.starts[i] = int(p.starts[0]) + a
            self.n += m
            self.n_eps += e

    def _label_id(self, bits: int) -> int:
        idx = self._label_index.get(bits)
        if idx is None:
            idx = self._label_index[bits] = len(self.labels)
            self.labels.append(bits)
        return idx

    def _refined_classes(self) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
        """``_byte_classes(self.labels)``, refining the previous partition by the labels
        added since (a byte's new class: its old class and its bits in the new labels)."""
        n_old, n_new = self._classed_labels, len(self.labels)
        if n_new == n_old:
            return self._classes
        if n_new > len(self._label_bits):
            bits = np.zeros((max(n_new, 2 * len(self._label_bits)), 256), dtype=bool)
            bits[:n_old] = self._label_bits[:n_old]
            self._label_bits = bits
        rows = _label_matrix(self.labels[n_old:])
        self._label_bits[n_old:n_new] = rows
        old_class_of = self._classes[0]
        key = np.concatenate([old_class_of.astype("<i4").view(np.uint8).reshape(256, 4),
                              np.packbits(rows.T, axis=1)], axis=1)
        class_of, class_bytes, first_idx = _partition(np.ascontiguousarray(key))
        # C order, as in _byte_classes (fancy indexing of columns gives Fortran order,
        # and an F-ordered label table made numba load other row-kernel variants mid-mask)
        self._classes = (class_of, class_bytes,
                         np.ascontiguousarray(self._label_bits[:n_new][:, first_idx]))
        self._classed_labels = n_new
        return self._classes

    def _reserve(self, n: int, n_eps: int) -> None:
        cap = len(self._kind)
        if n > cap:
            while cap < n:
                cap *= 2
            for name in ("_kind", "_label", "_succ", "_lexeme", "_live"):
                old = getattr(self, name)
                buf = np.zeros(cap, dtype=old.dtype)
                buf[: self.n] = old[: self.n]
                setattr(self, name, buf)
            ptr = np.zeros(cap + 1, dtype=np.int64)
            ptr[: self.n + 1] = self._eps_ptr[: self.n + 1]
            self._eps_ptr = ptr
        if n_eps > len(self._eps_dst):
            cap_e = len(self._eps_dst)
            while cap_e < n_eps:
                cap_e *= 2
            dst = np.zeros(cap_e, dtype=np.int32)
            dst[: self.n_eps] = self._eps_dst[: self.n_eps]
            self._eps_dst = dst

    def snapshot(self) -> NFA:
        """The NFA of every lexeme added so far (views of the buffers; closures memoised
        across snapshots, since adding lexemes never changes an existing closure)."""
        n = self.n
        nfa = NFA(kind=self._kind[:n], label=self._label[:n], succ=self._succ[:n],
                  eps_ptr=self._eps_ptr[: n + 1], eps_dst=self._eps_dst[: self.n_eps],
                  lexeme=self._lexeme[:n], starts=list(self.starts), labels=list(self.labels),
                  live=self._live[:n], _classes=self._refined_classes())
        nfa._closures = self._closures
        nfa._closure_total = self._closure_total
        return nfa
