"""Which code points one Python ``re`` single-character item matches (str patterns).

Emulates CPython's ``re`` exactly for ``LITERAL``, ``NOT_LITERAL``, ``ANY`` and ``IN``
items, including case-insensitive matching (``_sre.unicode_tolower`` plus the
``re._casefix`` extra cases, and the charset rules of ``re._compiler._optimize_charset``
with their non-BMP quirks) and the ``re.ASCII`` versions of ``\\d \\s \\w``. Tables over all
code points are built once per process with numpy and cached.
Results are normalized code-point range tuples (surrogates excluded).
"""
from __future__ import annotations

import _sre
import re
from functools import cache, lru_cache
from re import _casefix  # type: ignore[attr-defined]
from re import _constants as C  # type: ignore[attr-defined]
from typing import Any

import numpy as np

from .utf8 import Ranges, complement_ranges, normalize_ranges

N_CODE_POINTS = 0x110000
_BMP = 0x10000
_ASCII_SPACE = frozenset(" \t\n\r\f\v")


def mask_to_ranges(mask: np.ndarray) -> Ranges:
    """Bool array over code points -> normalized ranges."""
    padded = np.concatenate(([False], mask.astype(bool), [False]))
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return normalize_ranges([(int(a), int(b) - 1) for a, b in zip(edges[0::2], edges[1::2])])


def ranges_to_mask(ranges: Ranges) -> np.ndarray:
    """Normalized ranges -> bool array over all code points."""
    mask = np.zeros(N_CODE_POINTS, dtype=bool)
    for lo, hi in ranges:
        mask[lo : hi + 1] = True
    return mask


def _str_predicate(method: str) -> np.ndarray:
    """``chr(cp).<method>()`` for every code point (surrogates False).

    numpy >= 2 string ufuncs call the same CPython Unicode predicates in C (~30 ms);
    older numpy falls back to a Python loop (~100 ms).
    """
    strings = getattr(np, "strings", None)
    if strings is not None and hasattr(strings, method):
        cps = np.arange(N_CODE_POINTS, dtype=np.uint32)
        cps[0xD800:0xE000] = 0x41  # surrogates cannot be str elements here; fixed below
        out = np.asarray(getattr(strings, method)(cps.view("<U1")), dtype=bool)
    else:  # pragma: no cover - numpy < 2
        out = np.fromiter(map(getattr(str, method), map(chr, range(N_CODE_POINTS))),
                          dtype=bool, count=N_CODE_POINTS)
    out[0xD800:0xE000] = False
    return out


def _simple_upper(cp: int) -> int:
    up = chr(cp).upper()
    return ord(up) if len(up) == 1 else cp


@cache
def _table(name: str) -> np.ndarray:
    """Per-code-point tables (computed once): lower/upper/iscased and category masks."""
    cps = range(N_CODE_POINTS)
    if name == "lower":
        return np.fromiter(map(_sre.unicode_tolower, cps), dtype=np.int64, count=N_CODE_POINTS)
    if name == "upper":
        # sre_upper_unicode (simple upper case) has no Python binding; str.upper agrees
        # with it wherever the full mapping is one character (all non-BMP code points).
        return np.fromiter(map(_simple_upper, cps), dtype=np.int64, count=N_CODE_POINTS)
    if name == "iscased":
        return np.fromiter(map(_sre.unicode_iscased, cps), dtype=bool, count=N_CODE_POINTS)
    if name == "ascii_lower":
        arr = np.arange(N_CODE_POINTS, dtype=np.int64)
        arr[ord("A") : ord("Z") + 1] += 32
        return arr
    if name == "decimal":  # Py_UNICODE_ISDECIMAL
        return _str_predicate("isdecimal")
    if name == "space":  # Py_UNICODE_ISSPACE
        return _str_predicate("isspace")
    if name == "word":  # Py_UNICODE_ISALNUM or '_'
        arr = _str_predicate("isalnum")
        arr[ord("_")] = True
        return arr
    raise KeyError(name)


@cache
def _ascii_category(kind: str) -> Ranges:
    if kind == "decimal":
        return ((0x30, 0x39),)
    if kind == "space":
        return normalize_ranges([(ord(c), ord(c)) for c in _ASCII_SPACE])
    return normalize_ranges([(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)])


@cache
def _unicode_category(kind: str) -> Ranges:
    return mask_to_ranges(_table(kind))


def unicode_category(kind: str) -> Ranges:
    """Code points of Python ``re``'s Unicode ``\\d`` (``"decimal"``), ``\\w`` (``"word"``)
    or ``\\s`` (``"space"``), as sorted ranges (tables built once per process)."""
    return _unicode_category(kind)


_CATEGORIES: dict[Any, tuple[str, bool]] = {
    C.CATEGORY_DIGIT: ("decimal", False),
    C.CATEGORY_NOT_DIGIT: ("decimal", True),
    C.CATEGORY_SPACE: ("space", False),
    C.CATEGORY_NOT_SPACE: ("space", True),
    C.CATEGORY_WORD: ("word", False),
    C.CATEGORY_NOT_WORD: ("word", True),
}


def category_ranges(category: Any, flags: int) -> Ranges:
    """Code points of ``\\d \\D \\s \\S \\w \\W`` under ``flags`` (ASCII or Unicode)."""
    kind, negated = _CATEGORIES[category]
    base = _unicode_category(kind) if _is_unicode(flags) else _ascii_category(kind)
    return complement_ranges(base) if negated else base


def _category_mask(category: Any, flags: int) -> np.ndarray:
    kind, negated = _CATEGORIES[category]
    if _is_unicode(flags):
        mask = _table(kind)
    else:
        mask = ranges_to_mask(_ascii_category(kind))
    return ~mask if negated else mask


def _is_unicode(flags: int) -> bool:
    return not flags & re.ASCII


@cache
def _preimage_index() -> dict[int, tuple[int, ...]]:
    """lowered value -> every code point whose ``_sre.unicode_tolower`` is it (if != itself)."""
    lower = _table("lower")
    moved = np.flatnonzero(lower != np.arange(N_CODE_POINTS))
    index: dict[int, list[int]] = {}
    for cp in moved.tolist():
        index.setdefault(int(lower[cp]), []).append(cp)
    return {k: tuple(v) for k, v in index.items()}


def _preimage(values: set[int], unicode: bool) -> Ranges:
    """Code points ``ch`` whose lowered form (unicode or ASCII lowering) is in ``values``."""
    out: list[tuple[int, int]] = []
    if unicode:
        index = _preimage_index()
        lower = _table("lower")
        for v in values:
            if int(lower[v]) == v:
                out.append((v, v))
            for cp in index.get(v, ()):
                out.append((cp, cp))
    else:
        for v in values:
            if not 0x41 <= v <= 0x5A:
                out.append((v, v))
            if 0x61 <= v <= 0x7A:
                out.append((v - 32, v - 32))
    return normalize_ranges(out)


def _iscased(cp: int, unicode: bool) -> bool:
    return bool(_sre.unicode_iscased(cp)) if unicode else bool(_sre.ascii_iscased(cp))


def _tolower(cp: int, unicode: bool) -> int:
    return int(_sre.unicode_tolower(cp)) if unicode else int(_sre.ascii_tolower(cp))


@lru_cache(maxsize=65536)
def literal_ranges(cp: int, flags: int, negated: bool = False) -> Ranges:
    """``LITERAL`` / ``NOT_LITERAL`` item under ``flags`` (``re._compiler._compile`` rules)."""
    if flags & re.IGNORECASE and _iscased(cp, _is_unicode(flags)):
        unicode = _is_unicode(flags)
        lo = _tolower(cp, unicode)
        allowed = {lo}
        if unicode:
            allowed.update(_casefix._EXTRA_CASES.get(lo, ()))
        ranges = _preimage(allowed, unicode)
    else:
        ranges = normalize_ranges([(cp, cp)])
    return complement_ranges(ranges) if negated else ranges


def any_ranges(flags: int) -> Ranges:
    """``.``: every code point, minus ``\\n`` unless DOTALL."""
    if flags & re.DOTALL:
        return complement_ranges(())
    return complement_ranges(((0x0A, 0x0A),))


def in_ranges(items: list[tuple[Any, Any]], flags: int) -> Ranges:
    """An ``IN`` (character class) item under ``flags``."""
    negate = any(op is C.NEGATE for op, _ in items)
    body = [(op, av) for op, av in items if op is not C.NEGATE]
    if flags & re.IGNORECASE:
        result = _in_ignorecase(body, flags)
        if result is not None:
            return complement_ranges(result) if negate else result
    parts: list[tuple[int, int]] = []
    for op, av in body:
        if op is C.LITERAL:
            parts.append((av, av))
        elif op is C.RANGE:
            parts.append((av[0], av[1]))
        elif op is C.CATEGORY:
            parts.extend(category_ranges(av, flags))
        else:  # pragma: no cover - the parser emits nothing else inside a class
            raise ValueError(f"unexpected class item {op}")
    ranges = normalize_ranges(parts)
    return complement_ranges(ranges) if negate else ranges


def _in_ignorecase(body: list[tuple[Any, Any]], flags: int) -> Ranges | None:
    """Case-insensitive class, or None when it has no cased member (then matched as is).

    Mirrors ``_optimize_charset``: BMP values go into a charmap of *lowered* values; values
    that lower outside the BMP become tail items matched against the lowered character.
    """
    unicode = _is_unicode(flags)
    fixes: dict[int, tuple[int, ...]] = _casefix._EXTRA_CASES if unicode else {}
    lower_tab = _table("lower") if unicode else _table("ascii_lower")
    charmap = np.zeros(_BMP, dtype=bool)
    tail: list[tuple[str, Any]] = []
    hascased = False
    fix_keys = np.array(sorted(fixes), dtype=np.int64)
    for op, av in body:
        if op is C.LITERAL:
            lo = int(lower_tab[av])
            if lo < _BMP:
                charmap[lo] = True
                for k in fixes.get(lo, ()):
                    charmap[k] = True
                hascased = hascased or _iscased(av, unicode)
            else:
                hascased = True
                tail.append(("literal", av))
        elif op is C.RANGE:
            a, b = av
            vals = lower_tab[a : b + 1]
            over = np.flatnonzero(vals >= _BMP)
            if len(over):
                vals = vals[: over[0]]
            charmap[vals] = True
            if len(fix_keys):
                for k in fix_keys[np.isin(fix_keys, vals)].tolist():
                    charmap[list(fixes[k])] = True
            if len(over):
                hascased = True
                tail.append(("range_uni_ignore", (a, b)))
            elif not hascased:
                cased = _table("iscased")[a : b + 1] if unicode else np.array(
                    [_sre.ascii_iscased(c) for c in range(a, min(b, 0x7F) + 1)], dtype=bool)
                hascased = bool(cased.any())
        elif op is C.CATEGORY:
            tail.append(("category", av))
    if not hascased:
        return None
    # member[v]: is lowered value v accepted by the compiled charset?
    member = np.zeros(N_CODE_POINTS, dtype=bool)
    member[:_BMP] = charmap
    upper = _table("upper")
    values = np.arange(N_CODE_POINTS, dtype=np.int64)
    for kind, av in tail:
        if kind == "literal":
            member[av] = True
        elif kind == "range_uni_ignore":
            a, b = av
            member |= ((values >= a) & (values <= b)) | ((upper >= a) & (upper <= b))
        else:
            member |= _category_mask(av, flags)
    return mask_to_ranges(member[lower_tab])
