"""Unicode code-point range sets -> UTF-8 byte-sequence AST.

The classic range-splitting construction: split the set by UTF-8 length, then by lead
byte and continuation bytes. Equal continuation sub-trees are interned (the same Python
object), so consecutive lead bytes with the same tail merge into one ``ByteSet`` and the
NFA builder shares their states. Surrogates (D800-DFFF) are never encoded.
"""
from __future__ import annotations

from functools import lru_cache

from .ast import EMPTY, NOTHING, Alt, ByteSet, Concat, Node

Ranges = tuple[tuple[int, int], ...]

MAX_CODE_POINT = 0x10FFFF
SURROGATES = (0xD800, 0xDFFF)
# (first code point, last code point, number of bytes, lead-byte marker)
_LENGTH_CLASSES = (
    (0x0, 0x7F, 1, 0x00),
    (0x80, 0x7FF, 2, 0xC0),
    (0x800, 0xFFFF, 3, 0xE0),
    (0x10000, 0x10FFFF, 4, 0xF0),
)
_CONT = ByteSet.range(0x80, 0xBF)


def normalize_ranges(ranges: list[tuple[int, int]] | Ranges) -> Ranges:
    """Sort, merge overlapping/adjacent ranges and drop surrogates and empties."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        lo, hi = max(lo, 0), min(hi, MAX_CODE_POINT)
        if lo > hi:
            continue
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return subtract_ranges(tuple(out), (SURROGATES,))


def subtract_ranges(a: Ranges, b: Ranges) -> Ranges:
    """``a`` minus ``b``; both normalized (sorted, disjoint)."""
    out: list[tuple[int, int]] = []
    j = 0
    for lo, hi in a:
        while j < len(b) and b[j][1] < lo:
            j += 1
        k = j
        cur = lo
        while k < len(b) and b[k][0] <= hi:
            if b[k][0] > cur:
                out.append((cur, b[k][0] - 1))
            cur = max(cur, b[k][1] + 1)
            k += 1
        if cur <= hi:
            out.append((cur, hi))
    return tuple(out)


def complement_ranges(a: Ranges) -> Ranges:
    """All valid scalar values (no surrogates) not in ``a``."""
    return subtract_ranges(((0, MAX_CODE_POINT),), a + (SURROGATES,) if a else (SURROGATES,))


class _Builder:
    """Interning builder for one conversion (equal sub-trees become one object)."""

    def __init__(self) -> None:
        self._intern: dict[Node, Node] = {}
        self._full: dict[int, Node] = {0: EMPTY}

    def intern(self, node: Node) -> Node:
        return self._intern.setdefault(node, node)

    def full(self, k: int) -> Node:
        """Any ``k`` continuation bytes."""
        if k not in self._full:
            self._full[k] = self.intern(Concat((_CONT, self.full(k - 1))) if k > 1 else _CONT)
        return self._full[k]

    def build(self, ranges: list[tuple[int, int]], k: int, lead: int | None) -> Node:
        """Node for values in ``ranges`` encoded as a lead/continuation digit + ``k`` more.

        Values are offsets whose top base-64 digit selects the first byte: the byte is
        ``lead | digit`` for a lead byte (``lead`` given) or ``0x80 | digit`` otherwise.
        """
        shift = 6 * k
        span = 1 << shift
        if lead is None and ranges == [(0, (span << 6) - 1)]:
            return self.full(k + 1)
        mask = span - 1
        by_digit: dict[int, list[tuple[int, int]]] = {}
        full_spans: list[tuple[int, int]] = []
        for lo, hi in ranges:
            dlo, dhi = lo >> shift, hi >> shift
            if dlo == dhi:
                base = dlo << shift
                by_digit.setdefault(dlo, []).append((lo - base, hi - base))
                continue
            start, end = dlo, dhi
            if lo & mask:
                by_digit.setdefault(dlo, []).append((lo & mask, mask))
                start += 1
            if hi & mask != mask:
                by_digit.setdefault(dhi, []).append((0, hi & mask))
                end -= 1
            if start <= end:
                full_spans.append((start, end))
        full_child = self.full(k)
        pieces: list[tuple[int, int, Node]] = [(a, b, full_child) for a, b in full_spans]
        for d, sub in by_digit.items():
            child = full_child if sub == [(0, mask)] else self.build(sub, k - 1, None)
            pieces.append((d, d, child))
        pieces.sort(key=lambda p: p[0])
        groups: list[tuple[int, int, Node]] = []
        for d1, d2, child in pieces:
            if groups and groups[-1][1] == d1 - 1 and groups[-1][2] is child:
                groups[-1] = (groups[-1][0], d2, child)
            else:
                groups.append((d1, d2, child))
        prefix = 0x80 if lead is None else lead
        items: list[Node] = []
        for d1, d2, child in groups:
            head = ByteSet.range(prefix | d1, prefix | d2)
            items.append(head if child is EMPTY else self.intern(Concat((head, child))))
        if len(items) == 1:
            return items[0]
        return self.intern(Alt(tuple(items)))


@lru_cache(maxsize=4096)
def utf8_ranges_node(ranges: Ranges) -> Node:
    """The UTF-8 encodings of the code points in ``ranges`` (normalized) as a byte AST."""
    ranges = normalize_ranges(ranges)
    builder = _Builder()
    items: list[Node] = []
    for first, last, nbytes, marker in _LENGTH_CLASSES:
        part = [(max(lo, first), min(hi, last)) for lo, hi in ranges if lo <= last and hi >= first]
        if not part:
            continue
        if nbytes == 1:
            bits = 0
            for lo, hi in part:
                bits |= ((1 << (hi - lo + 1)) - 1) << lo
            items.append(ByteSet(bits))
        else:
            items.append(builder.build(part, nbytes - 1, marker))
    if not items:
        return NOTHING
    if len(items) == 1:
        return items[0]
    return Alt(tuple(items))
