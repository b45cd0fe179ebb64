"""Python ``re`` syntax -> byte-level regex AST, with full-match semantics.

The stdlib parser ``re._parser`` gives the exact AST Python itself uses (groups, flags,
escapes, verbose mode); we lower it to :mod:`constrained.automata.ast` nodes over UTF-8
bytes. Character sets follow Python's str-pattern rules exactly (see ``charsets.py``).
Constructs that cannot be enforced by a finite automaton (backreferences, lookaround,
conditionals, word boundaries, anchors away from the ends, possessive/atomic forms that
change the language) raise :class:`RegexUnsupported` naming the construct and its
character offset; malformed patterns raise :class:`RegexSyntaxError`.
"""
from __future__ import annotations

import re
import warnings
from functools import lru_cache
from re import _constants as C  # type: ignore[attr-defined]
from re import _parser as P  # type: ignore[attr-defined]
from typing import Any

from ..errors import (
    CompileError,
    ConstraintTooComplex,
    RegexSyntaxError,
    RegexUnsupported,
)
from .ast import EMPTY, Alt, ByteSet, Concat, Node, Repeat
from .charsets import any_ranges, in_ranges, literal_ranges
from .utf8 import utf8_ranges_node

Item = tuple[Any, Any]

_AT_NAMES = {
    C.AT_BEGINNING: "^",
    C.AT_BEGINNING_STRING: "\\A",
    C.AT_END: "$",
    C.AT_END_STRING: "\\Z",
    C.AT_BOUNDARY: "\\b",
    C.AT_NON_BOUNDARY: "\\B",
}
_START_ANCHORS = (C.AT_BEGINNING, C.AT_BEGINNING_STRING)
_END_ANCHORS = (C.AT_END, C.AT_END_STRING)
_REPEATS = (C.MAX_REPEAT, C.MIN_REPEAT, C.POSSESSIVE_REPEAT)
_ALL_BYTES = (1 << 256) - 1
_TEMPLATE = 1  # re.TEMPLATE / SRE_FLAG_TEMPLATE (deprecated; changes repeat semantics)


def parse_regex(pattern: str, flags: int = 0) -> Node:
    """Lower a Python ``re`` pattern (full-match semantics) to a byte-level AST.

    ``flags`` are ``re`` flags (``re.I``, ``re.S``, ``re.X``, ``re.A``, ``re.M``...).
    Raises RegexSyntaxError for malformed patterns, RegexUnsupported for constructs a
    finite automaton cannot enforce exactly.
    """
    if not isinstance(pattern, str):
        raise RegexSyntaxError(f"regex pattern must be str, not {type(pattern).__name__}")
    flags = int(flags)
    if flags & _TEMPLATE:
        raise RegexUnsupported("the re.TEMPLATE flag (no backtracking) is not supported")
    return _parse_cached(pattern, flags & ~re.DEBUG)


@lru_cache(maxsize=1024)
def _parse_cached(pattern: str, flags: int) -> Node:
    try:
        parsed = P.parse(pattern, flags)
    except re.error as exc:
        raise _syntax_error(pattern, exc) from None
    except RecursionError:
        raise ConstraintTooComplex(f"regex {pattern[:80]!r}... is nested too deeply") from None
    except (ValueError, TypeError, OverflowError) as exc:
        raise RegexSyntaxError(f"invalid regex {pattern!r}: {exc}") from None
    global_flags = int(parsed.state.flags)
    lowering = _Lowering(pattern, global_flags, flags)
    items = list(parsed)
    try:
        lowering.check(items, global_flags, at_start=True, at_end=True)
        # what may follow an item matters only to possessive repeats (found by check)
        lowering.track_follow = any(kind == "possessive quantifier"
                                    for kind, _ in lowering.item_pos.values())
        return lowering.seq(items, _effective(global_flags), follow=0)
    except RecursionError:
        raise ConstraintTooComplex(f"regex {pattern[:80]!r}... is nested too deeply") from None


def _syntax_error(pattern: str, exc: re.error) -> RegexSyntaxError:
    where = f" at position {exc.pos}" if exc.pos is not None else ""
    err = RegexSyntaxError(f"invalid regex {pattern!r}: {exc.msg}{where}")
    err.position = exc.pos  # type: ignore[attr-defined]
    return err


def _effective(flags: int) -> int:
    """str patterns are Unicode unless ASCII is set."""
    return flags if flags & re.ASCII else flags | re.UNICODE


def _combine_flags(flags: int, add: int, delete: int) -> int:
    """Scoped ``(?flags-flags:...)``: same rule as ``re._compiler._combine_flags``."""
    if add & P.TYPE_FLAGS:
        flags &= ~P.TYPE_FLAGS
    return (flags | add) & ~delete


_PLAIN = frozenset((C.LITERAL, C.NOT_LITERAL, C.ANY, C.IN))


def _items(sub: Any) -> list[Item]:
    """The items of an ``re`` SubPattern as a list (its ``data`` list when it has one)."""
    data = getattr(sub, "data", None)
    return data if isinstance(data, list) else list(sub)


def construct_positions(pattern: str, verbose: bool) -> dict[str, list[int]]:
    """Character offsets of constructs we may refuse, by kind, in textual order.

    ``re._parser`` keeps no positions, so errors are located by scanning the tokens
    (escapes are single tokens; classes and verbose-mode comments are skipped).
    """
    out: dict[str, list[int]] = {}
    tok = P.Tokenizer(pattern)
    in_class = 0  # 0: outside; 1: just after '[' or '[^'; 2: inside
    prev_quant = False
    while tok.next is not None:
        pos = tok.tell()
        t = tok.get()
        if in_class:
            if t == "^" and in_class == 1 and pattern[pos - 1] == "[":
                continue
            if t == "]" and in_class == 2:
                in_class = 0
            else:
                in_class = 2
            continue
        if verbose and t.isspace():
            continue
        if verbose and t == "#":
            while tok.next not in (None, "\n"):
                tok.get()
            continue
        kind = None
        if t == "[":
            in_class = 1
        elif t == "(":
            rest = pattern[pos + 1 : pos + 4]
            for prefix, name in (("?=", "lookahead"), ("?!", "negative lookahead"),
                                 ("?<=", "lookbehind"), ("?<!", "negative lookbehind"),
                                 ("?(", "conditional"), ("?P=", "backreference"),
                                 ("?>", "atomic group")):
                if rest.startswith(prefix):
                    kind = name
                    break
        elif t in ("^", "$", "\\A", "\\Z", "\\b", "\\B"):
            kind = t
        elif len(t) == 2 and t[0] == "\\" and t[1] in "123456789":
            kind = "backreference"
        elif t == "+" and prev_quant:
            kind = "possessive quantifier"
        if kind is not None:
            out.setdefault(kind, []).append(pos)
        prev_quant = t in ("*", "+", "?", "}") and kind is None
    return out


class _Lowering:
    """One pattern's lowering: a left-to-right validity check, then right-to-left AST build."""

    def __init__(self, pattern: str, global_flags: int, flags: int) -> None:
        self.pattern = pattern
        self.flags = flags
        self.verbose = bool(global_flags & re.VERBOSE)
        self._positions: dict[str, list[int]] | None = None  # scanned only for errors
        self.seen: dict[str, int] = {}
        self.item_pos: dict[int, tuple[str, int]] = {}
        self.first_cache: dict[int, tuple[int, bool]] = {}
        self.first_keep: list[Node] = []  # keeps ids in first_cache valid
        self.track_follow = True

    # --- errors ---------------------------------------------------------------------
    def _occurrence(self, kind: str) -> tuple[str, int]:
        """Count one more occurrence of ``kind`` (AST order ~ textual order)."""
        idx = self.seen.get(kind, 0)
        self.seen[kind] = idx + 1
        return kind, idx

    def position(self, occurrence: tuple[str, int] | None) -> int | None:
        """Character offset of an occurrence (best effort; scans the pattern once)."""
        if occurrence is None:
            return None
        if self._positions is None:
            self._positions = construct_positions(self.pattern, self.verbose)
        kind, idx = occurrence
        found = self._positions.get(kind, [])
        if idx < len(found):
            return found[idx]
        return found[-1] if found else None

    def _locate(self, kind: str) -> int | None:
        return self.position(self._occurrence(kind))

    def unsupported(self, construct: str, position: int | None, why: str = "") -> CompileError:
        """A RegexUnsupported (or RegexSyntaxError if Python itself rejects the pattern)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                re.compile(self.pattern, self.flags)
            except re.error as exc:
                return _syntax_error(self.pattern, exc)
        where = f" at position {position}" if position is not None else ""
        reason = f": {why}" if why else ""
        err = RegexUnsupported(
            f"regex {self.pattern!r}: {construct}{where} is not supported{reason}")
        err.position = position  # type: ignore[attr-defined]
        err.construct = construct  # type: ignore[attr-defined]
        return err

    # --- pass 1: validity, anchors, positions (left to right) -------------------------
    # (items of a branch are read through _items: SubPattern indexing is slow per item)
    def check(self, items: list[Item], flags: int, at_start: bool, at_end: bool) -> None:
        """Raise for unsupported constructs; anchors are allowed only at the very ends."""
        if all(op in _PLAIN for op, _ in items):  # literals and classes: nothing to check
            return
        zero = [op is C.AT for op, _ in items]
        # start_ok[i]: only zero-width items before i; end_ok[i]: only after i
        start_ok = [True] * len(items)
        end_ok = [True] * len(items)
        for i in range(1, len(items)):
            start_ok[i] = start_ok[i - 1] and zero[i - 1]
        for i in range(len(items) - 2, -1, -1):
            end_ok[i] = end_ok[i + 1] and zero[i + 1]
        for i, (op, av) in enumerate(items):
            start_i = at_start and start_ok[i]
            end_i = at_end and end_ok[i]
            if op is C.AT:
                name = _AT_NAMES.get(av, str(av))
                occ = self._occurrence(name)
                if av in (C.AT_BOUNDARY, C.AT_NON_BOUNDARY):
                    raise self.unsupported(f"word boundary {name}", self.position(occ))
                if av in _START_ANCHORS and not start_i:
                    raise self.unsupported(f"anchor {name}", self.position(occ), "anchors are only supported at the very start or end of the pattern")
                if av in _END_ANCHORS and not end_i:
                    raise self.unsupported(f"anchor {name}", self.position(occ), "anchors are only supported at the very start or end of the pattern")
                if av not in _START_ANCHORS and av not in _END_ANCHORS:
                    raise self.unsupported(f"anchor {name}", self.position(occ))
            elif op is C.BRANCH:
                for alt in av[1]:
                    self.check(_items(alt), flags, start_i, end_i)
            elif op is C.SUBPATTERN:
                _group, add, delete, sub = av
                self.check(_items(sub), _combine_flags(flags, add, delete), start_i, end_i)
            elif op in _REPEATS:
                _lo, hi, sub = av
                if op is C.POSSESSIVE_REPEAT:
                    self.item_pos[id(av)] = self._occurrence("possessive quantifier")
                once = hi <= 1
                self.check(_items(sub), flags, start_i and once, end_i and once)
            elif op is C.ATOMIC_GROUP:
                self.item_pos[id(av)] = self._occurrence("atomic group")
                self.check(list(av), flags, start_i, end_i)
            elif op is C.GROUPREF:
                raise self.unsupported("backreference", self._locate("backreference"))
            elif op is C.GROUPREF_EXISTS:
                raise self.unsupported("conditional group (?(...)...)", self._locate("conditional"))
            elif op in (C.ASSERT, C.ASSERT_NOT):
                direction = "lookahead" if av[0] == 1 else "lookbehind"
                kind = direction if op is C.ASSERT else f"negative {direction}"
                raise self.unsupported(kind, self._locate(kind))
            elif op in (C.LITERAL, C.NOT_LITERAL, C.ANY, C.IN):
                pass
            else:
                raise self.unsupported(f"regex operator {op}", None)

    # --- pass 2: lowering (right to left, so each item knows what may follow it) -------
    def first(self, node: Node) -> tuple[int, bool]:
        """(first-byte set as 256-bit int, nullable) of ``node``; conservative for And/Not."""
        key = id(node)
        hit = self.first_cache.get(key)
        if hit is not None:
            return hit
        if isinstance(node, ByteSet):
            res = (node.bits, False)
        elif isinstance(node, Concat):
            bits, nullable = 0, True
            for it in node.items:
                b, n = self.first(it)
                bits |= b
                if not n:
                    nullable = False
                    break
            res = (bits, nullable)
        elif isinstance(node, Alt):
            bits, nullable = 0, False
            for it in node.items:
                b, n = self.first(it)
                bits |= b
                nullable = nullable or n
            res = (bits, nullable)
        elif isinstance(node, Repeat):
            b, n = self.first(node.item)
            res = (b, n or node.min == 0)
        else:
            res = (_ALL_BYTES, True)
        self.first_cache[key] = res
        self.first_keep.append(node)
        return res

    def seq(self, items: list[Item], flags: int, follow: int) -> Node:
        """Concatenation of ``items``; ``follow``: bytes that may come right after it."""
        out: list[Node] = []
        for op, av in reversed(items):
            node = self.item(op, av, flags, follow)
            if node is EMPTY:
                continue
            out.append(node)
            if self.track_follow:
                bits, nullable = self.first(node)
                follow = bits | follow if nullable else bits
        out.reverse()
        if not out:
            return EMPTY
        if len(out) == 1:
            return out[0]
        return Concat(tuple(out))

    def item(self, op: Any, av: Any, flags: int, follow: int) -> Node:
        if op is C.LITERAL:
            return utf8_ranges_node(literal_ranges(av, flags))
        if op is C.NOT_LITERAL:
            return utf8_ranges_node(literal_ranges(av, flags, negated=True))
        if op is C.ANY:
            return utf8_ranges_node(any_ranges(flags))
        if op is C.IN:
            return utf8_ranges_node(in_ranges(av, flags))
        if op is C.AT:
            return EMPTY
        if op is C.BRANCH:
            alts = [self.seq(_items(alt), flags, follow) for alt in av[1]]
            return alts[0] if len(alts) == 1 else Alt(tuple(alts))
        if op is C.SUBPATTERN:
            _group, add, delete, sub = av
            return self.seq(_items(sub), _combine_flags(flags, add, delete), follow)
        if op in _REPEATS:
            lo, hi, sub = av
            hi_ = None if hi == C.MAXREPEAT else int(hi)
            body_follow = follow
            if (hi_ is None or hi_ > 1) and _has_atomic(sub):
                probe = self.seq(_items(sub), flags, _ALL_BYTES)
                body_follow |= self.first(probe)[0]
            body = self.seq(_items(sub), flags, body_follow)
            if op is C.POSSESSIVE_REPEAT:
                self.require_possessive_safe(body, follow, self.position(self.item_pos.get(id(av))))
            if hi_ is not None and hi_ == 1 and lo == 1:
                return body
            if hi_ == 0:
                return EMPTY
            return Repeat(body, int(lo), hi_)
        if op is C.ATOMIC_GROUP:
            body = self.seq(list(av), flags, follow)
            if not _prefix_free(body):
                raise self.unsupported(
                    "atomic group (?>...)", self.position(self.item_pos.get(id(av))),
                    "its language is not prefix-free, so backtracking restrictions could change the matched language")
            return body
        raise self.unsupported(f"regex operator {op}", None)  # pragma: no cover

    def require_possessive_safe(self, body: Node, follow: int, position: int | None) -> None:
        """A possessive repeat equals the greedy one when each iteration is forced:
        the body is prefix-free, never empty, and cannot start with a byte that may follow."""
        bits, nullable = self.first(body)
        if nullable or bits & follow or not _prefix_free(body):
            raise self.unsupported(
                "possessive quantifier", position,
                "it may change the matched language here (the repeated item can be followed "
                "by text it could itself match)")


def _has_atomic(items: Any) -> bool:
    """Does the re-AST contain a possessive repeat or atomic group?"""
    for op, av in items:
        if op in (C.POSSESSIVE_REPEAT, C.ATOMIC_GROUP):
            return True
        if op is C.BRANCH and any(_has_atomic(a) for a in av[1]):
            return True
        if op is C.SUBPATTERN and _has_atomic(av[3]):
            return True
        if op in _REPEATS and _has_atomic(av[2]):
            return True
    return False


def _prefix_free(node: Node) -> bool:
    """No string of the language is a proper prefix of another (explores a small DFA)."""
    if _single_step(node):
        return True
    from .dfa import LazyDFA, is_prefix_free  # local: dfa imports nothing from here
    from .limits import Limits

    try:
        dfa = LazyDFA([node], Limits(max_states=5_000, max_seconds=2.0))
        return is_prefix_free(dfa)
    except (ConstraintTooComplex, RegexUnsupported):  # too large to decide: not provably safe
        return False


def _single_step(node: Node) -> bool:
    """Fast path: a UTF-8 character class (every string is one code point)."""
    if isinstance(node, ByteSet):
        return node.bits != 0
    if isinstance(node, Alt):
        return all(_single_step(i) or _utf8_seq(i) for i in node.items)
    return _utf8_seq(node)


def _utf8_seq(node: Node) -> bool:
    """A lead ByteSet (>= 0xC0) followed by continuation ByteSets: one code point."""
    if not isinstance(node, Concat) or not node.items:
        return False
    head = node.items[0]
    if not isinstance(head, ByteSet) or head.bits & ((1 << 0xC0) - 1):
        return False
    return all(_continuations(i) for i in node.items[1:])


def _continuations(node: Node) -> bool:
    cont = ((1 << 0x40) - 1) << 0x80
    if isinstance(node, ByteSet):
        return node.bits & ~cont == 0
    if isinstance(node, Concat):
        return all(_continuations(i) for i in node.items)
    if isinstance(node, Alt):
        return all(_continuations(i) or _utf8_tail(i) for i in node.items)
    return False


def _utf8_tail(node: Node) -> bool:
    return isinstance(node, Concat) and all(_continuations(i) for i in node.items)


__all__ = ["construct_positions", "parse_regex"]
