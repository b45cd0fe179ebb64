"""Exact digit automata for JSON numbers: integer and decimal ranges, integer multiples.

Bounds become regex ASTs over a number's decimal text, so ``minimum`` / ``maximum`` /
``exclusive*`` / ``multipleOf`` are enforced by the lexer itself, exactly.

Policy (documented in docs/json-schema.md):
* integers are written without fraction or exponent, and never as ``-0``;
* a bounded number is written without exponent, and a fractional one with at most
  ``MAX_FRACTION_TEXT_DIGITS`` digits in total (integer + fraction), so that the float
  ``json.loads`` makes compares with the bound exactly as the decimal text does
  (doubles round-trip 15 significant digits and rounding is monotonic);
* an unbounded side is closed at ``10**max_integer_digits - 1``: no endless number.
"""
from __future__ import annotations

import math
from decimal import Decimal

from ..automata.ast import (
    EMPTY,
    NOTHING,
    And,
    ByteSet,
    Node,
    alt,
    concat,
    literal,
    repeat,
)

DIGIT: Node = ByteSet.range(0x30, 0x39)
NONZERO: Node = ByteSet.range(0x31, 0x39)
DOT: Node = ByteSet.of(0x2E)
MINUS: Node = ByteSet.of(0x2D)

#: digits of a fractional number's text (integer part + fraction), see module doc
MAX_FRACTION_TEXT_DIGITS = 15
#: most values a multipleOf is enumerated into
MAX_ENUMERATED_MULTIPLES = 4096


class NumericUnsupported(ValueError):
    """A numeric constraint has no exact digit automaton here (caller names the keyword)."""


def _digit_range(lo: str, hi: str) -> Node:
    return ByteSet.range(ord(lo), ord(hi))


def _any_digits(r: int, k: int) -> Node:
    """``r`` digits with a decimal point before the last ``k`` (k=0: no point)."""
    if k == 0 or k > r:
        return repeat(DIGIT, r, r) if r != 1 else DIGIT
    head = repeat(DIGIT, r - k, r - k) if r - k != 1 else DIGIT
    tail = repeat(DIGIT, k, k) if k != 1 else DIGIT
    return concat(head, DOT, tail) if r > k else concat(DOT, tail)


def _fixed(lo: str, hi: str, k: int) -> Node:
    """Digit strings s with ``len(s) == len(lo) == len(hi)`` and ``lo <= s <= hi``;
    a ``.`` is written before the last ``k`` digits (k=0: none)."""
    r = len(lo)
    if r == 0:
        return EMPTY
    pre: tuple[Node, ...] = (DOT,) if k and r == k else ()
    if lo == hi:
        return concat(*pre, literal(lo[0]), _fixed(lo[1:], hi[1:], k))
    if lo[1:] == "0" * (r - 1) and hi[1:] == "9" * (r - 1):
        return concat(*pre, _digit_range(lo[0], hi[0]), _any_digits(r - 1, k))
    if lo[0] == hi[0]:
        return concat(*pre, literal(lo[0]), _fixed(lo[1:], hi[1:], k))
    parts = [concat(literal(lo[0]), _fixed(lo[1:], "9" * (r - 1), k))]
    if ord(hi[0]) - ord(lo[0]) >= 2:
        parts.append(concat(_digit_range(chr(ord(lo[0]) + 1), chr(ord(hi[0]) - 1)),
                            _any_digits(r - 1, k)))
    parts.append(concat(literal(hi[0]), _fixed("0" * (r - 1), hi[1:], k)))
    return concat(*pre, alt(*parts))


def scaled_range(lo: int, hi: int, k: int) -> Node:
    """Texts of the values ``N / 10**k`` for integers ``0 <= lo <= N <= hi``, written with
    exactly ``k`` fraction digits (k=0: a plain integer) and no superfluous leading zero."""
    if lo < 0:
        raise ValueError("scaled_range needs lo >= 0")
    if lo > hi:
        return NOTHING
    parts: list[Node] = []
    width0 = k + 1
    top0 = 10 ** width0 - 1
    if lo <= top0:
        parts.append(_fixed(str(lo).zfill(width0), str(min(hi, top0)).zfill(width0), k))
    for width in range(width0 + 1, len(str(hi)) + 1):
        a = max(lo, 10 ** (width - 1))
        b = min(hi, 10 ** width - 1)
        if a <= b:
            parts.append(_fixed(str(a), str(b), k))
    return alt(*parts) if parts else NOTHING


def _cap(max_integer_digits: int, *bounds: int | None) -> int:
    digits = max([max_integer_digits] + [len(str(abs(b))) for b in bounds if b is not None])
    return 10 ** digits - 1


def integer_range(lo: int | None, hi: int | None, max_integer_digits: int = 20) -> Node:
    """Integer texts (``-?(0|[1-9][0-9]*)``, no ``-0``) with ``lo <= value <= hi``;
    ``None`` = unbounded (closed at ``10**max_integer_digits - 1`` in magnitude)."""
    cap = _cap(max_integer_digits, lo, hi)
    a = -cap if lo is None else lo
    b = cap if hi is None else hi
    if a > b:
        return NOTHING
    parts: list[Node] = []
    if a < 0:
        parts.append(concat(MINUS, scaled_range(max(1, -b), -a, 0)))
    if b >= 0:
        parts.append(scaled_range(max(0, a), b, 0))
    return alt(*parts)


def to_decimal(value: float) -> Decimal:
    """The decimal a schema author wrote (shortest repr of a float)."""
    if isinstance(value, bool):
        raise TypeError("bool is not a number")
    return Decimal(value) if isinstance(value, int) else Decimal(repr(float(value)))


def _significant_digits(d: Decimal) -> int:
    return len(d.normalize().as_tuple().digits)


def decimal_range(lo: Decimal | None, lo_exclusive: bool, hi: Decimal | None,
                  hi_exclusive: bool, max_integer_digits: int = 20,
                  max_fraction_digits: int = 6) -> Node:
    """Number texts (no exponent) whose value lies between the bounds.

    Integer texts follow :func:`integer_range`; fractional texts have 1 to
    ``max_fraction_digits`` fraction digits and at most ``MAX_FRACTION_TEXT_DIGITS``
    digits in total, so float comparison in a validator agrees with the decimal one.
    """
    for bound in (lo, hi):
        if bound is not None and not bound.is_finite():
            raise NumericUnsupported(f"non-finite bound {bound}")
    if lo is not None and hi is not None and (lo > hi or (lo == hi and (lo_exclusive or hi_exclusive))):
        return NOTHING
    int_lo = None if lo is None else (math.floor(lo) + 1 if lo_exclusive else math.ceil(lo))
    int_hi = None if hi is None else (math.ceil(hi) - 1 if hi_exclusive else math.floor(hi))
    parts: list[Node] = [integer_range(int_lo, int_hi, max_integer_digits)]
    frac_digits = min(max_fraction_digits, MAX_FRACTION_TEXT_DIGITS - 1)
    if frac_digits > 0:
        for bound in (lo, hi):
            if bound is not None and _significant_digits(bound) > MAX_FRACTION_TEXT_DIGITS:
                raise NumericUnsupported(
                    f"bound {bound} has more than {MAX_FRACTION_TEXT_DIGITS} significant digits")
    top = 10 ** MAX_FRACTION_TEXT_DIGITS - 1
    for k in range(1, frac_digits + 1):
        scale = Decimal(10) ** k
        n_lo = -top if lo is None else (math.floor(lo * scale) + 1 if lo_exclusive else math.ceil(lo * scale))
        n_hi = top if hi is None else (math.ceil(hi * scale) - 1 if hi_exclusive else math.floor(hi * scale))
        n_lo, n_hi = max(n_lo, -top), min(n_hi, top)
        if n_lo > n_hi:
            continue
        if n_lo < 0:
            parts.append(concat(MINUS, scaled_range(max(1, -n_hi), -n_lo, k)))
        if n_hi >= 0:
            parts.append(scaled_range(max(0, n_lo), n_hi, k))
    return alt(*parts)


def _is_2_5_smooth(m: int) -> tuple[bool, int]:
    """Whether ``m`` divides a power of ten, and the smallest such exponent."""
    a = b = 0
    while m % 2 == 0:
        m //= 2
        a += 1
    while m % 5 == 0:
        m //= 5
        b += 1
    return m == 1, max(a, b)


def integer_multiples(m: int, lo: int | None, hi: int | None, max_integer_digits: int = 20) -> Node:
    """Integer texts of multiples of ``m`` (``m >= 1``) within ``[lo, hi]``.

    Exact when the multiples in range are few (enumerated) or when ``m`` divides a
    power of ten (a condition on the last digits, intersected with the range);
    otherwise raises :class:`NumericUnsupported`.
    """
    if m < 1:
        raise NumericUnsupported(f"multipleOf {m} must be positive")
    rng = integer_range(lo, hi, max_integer_digits)
    if m == 1:
        return rng
    if lo is not None and hi is not None:
        first, last = -((-lo) // m), hi // m
        if last - first + 1 <= MAX_ENUMERATED_MULTIPLES:
            return alt(*(literal(str(q * m)) for q in range(first, last + 1))) if last >= first else NOTHING
    smooth, k = _is_2_5_smooth(m)
    if not smooth or 10 ** k // m > MAX_ENUMERATED_MULTIPLES:
        raise NumericUnsupported(
            f"multipleOf {m} over an unbounded or large range has no exact automaton here")
    small = [literal(str(q)) for q in range(0, 10 ** k, m)]  # values below 10**k
    suffixes = [literal(str(q).zfill(k)) for q in range(0, 10 ** k, m)]
    magnitude = alt(alt(*small), concat(NONZERO, repeat(DIGIT, 0, None), alt(*suffixes)))
    nonneg = magnitude
    signed = alt(nonneg, concat(MINUS, magnitude))
    return And((rng, signed))
