"""ECMA-262 regular expressions (as JSON Schema ``pattern`` writes them) -> Python syntax.

JSON Schema patterns are ECMA-262, unanchored (search semantics). This module rewrites
one into a Python ``re`` pattern with *full-match* semantics over the whole string, which
``automata.parse_regex`` then turns into an AST. Differences handled here:
``\\d \\w \\s`` are ASCII/ECMA sets (not Unicode ones), ``.`` excludes ECMA line
terminators, ``$`` matches only at the end, ``{`` that starts no quantifier is a literal,
shorthand classes are read so that both ECMA-262 and Python ``re`` (which ``jsonschema``
runs) accept every string we accept,
``\\uD83D\\uDE00`` surrogate pairs, ``\\u{...}``, ``\\cX``, ``(?<name>``. Anchors must
sit at the start / end of a top-level alternative; lookaround, backreferences, ``\\b``
and ``\\p{...}`` raise :class:`EcmaUnsupported`.
"""
from __future__ import annotations

import re

from ..automata.charsets import unicode_category

Ranges = list[tuple[int, int]]

MAX_CP = 0x10FFFF
SURROGATES = (0xD800, 0xDFFF)
DIGITS: Ranges = [(0x30, 0x39)]
WORD: Ranges = [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)]
# ECMA WhiteSpace + LineTerminator
SPACE: Ranges = [(0x09, 0x0D), (0x20, 0x20), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A),
                 (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000),
                 (0xFEFF, 0xFEFF)]
LINE_TERMINATORS: Ranges = [(0x0A, 0x0A), (0x0D, 0x0D), (0x2028, 0x2029)]
SIMPLE_ESCAPES = {"t": 0x09, "n": 0x0A, "v": 0x0B, "f": 0x0C, "r": 0x0D, "0": 0x00}

ANY_CHAR = "[\\x00-\\ud7ff\\ue000-\\U0010ffff]"


class EcmaUnsupported(ValueError):
    """The pattern uses an ECMA construct with no exact automaton (lookaround ...)."""


class EcmaSyntaxError(ValueError):
    """The pattern is not a valid ECMA-262 regular expression."""


def normalize(ranges: Ranges) -> Ranges:
    """Sorted, merged ranges with surrogates removed."""
    out: Ranges = []
    for lo, hi in sorted(ranges):
        pieces = [(lo, hi)]
        if lo <= SURROGATES[1] and hi >= SURROGATES[0]:
            pieces = [(lo, SURROGATES[0] - 1), (SURROGATES[1] + 1, hi)]
        for a, b in pieces:
            if a > b:
                continue
            if out and a <= out[-1][1] + 1:
                out[-1] = (out[-1][0], max(out[-1][1], b))
            else:
                out.append((a, b))
    return out


def complement(ranges: Ranges) -> Ranges:
    """All code points (surrogates excluded) not in ``ranges``."""
    out: Ranges = []
    nxt = 0
    for lo, hi in normalize(ranges):
        if lo > nxt:
            out.append((nxt, lo - 1))
        nxt = hi + 1
    if nxt <= MAX_CP:
        out.append((nxt, MAX_CP))
    return normalize(out)


def _cp(c: int) -> str:
    return f"\\x{c:02x}" if c < 0x100 else (f"\\u{c:04x}" if c < 0x10000 else f"\\U{c:08x}")


def class_text(ranges: Ranges) -> str:
    """A Python character class matching exactly ``ranges`` (never empty-syntax)."""
    ranges = normalize(ranges)
    if not ranges:
        return "(?!)"  # empty set; parse_regex refuses lookaround, so callers avoid it
    body = "".join(_cp(a) if a == b else f"{_cp(a)}-{_cp(b)}" for a, b in ranges)
    return f"[{body}]"


class _Reader:
    """Cursor over the pattern text with ECMA escape decoding."""

    def __init__(self, pattern: str) -> None:
        self.p = pattern
        self.i = 0

    def eof(self) -> bool:
        return self.i >= len(self.p)

    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.p[j] if j < len(self.p) else ""

    def take(self) -> str:
        c = self.p[self.i]
        self.i += 1
        return c

    def hex_digits(self, n: int) -> int | None:
        text = self.p[self.i:self.i + n]
        if len(text) == n and all(ch in "0123456789abcdefABCDEF" for ch in text):
            self.i += n
            return int(text, 16)
        return None

    def unicode_escape(self) -> int | None:
        """After ``\\u``: the code point (pairs combined), or None if not an escape."""
        if self.peek() == "{":
            m = re.match(r"\{([0-9a-fA-F]+)\}", self.p[self.i:])
            if m and int(m.group(1), 16) <= MAX_CP:
                self.i += m.end()
                return int(m.group(1), 16)
            return None
        cp = self.hex_digits(4)
        if cp is None:
            return None
        if 0xD800 <= cp <= 0xDBFF and self.p[self.i:self.i + 2] == "\\u":
            save = self.i
            self.i += 2
            low = self.hex_digits(4)
            if low is not None and 0xDC00 <= low <= 0xDFFF:
                return 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00)
            self.i = save
        if 0xD800 <= cp <= 0xDFFF:
            raise EcmaUnsupported("lone surrogate escape")
        return cp


def python_class(kind: str) -> tuple[tuple[int, int], ...]:
    """Python ``re``'s Unicode ``\\d`` / ``\\w`` / ``\\s`` (what ``jsonschema`` runs) as
    ranges: the per-process numpy tables of ``automata.charsets`` (~15 ms each; a
    per-code-point Python loop here cost ~100-480 ms in the first schema using them)."""
    return tuple(unicode_category({"d": "decimal", "w": "word", "s": "space"}[kind]))


def _shorthand(c: str, negated_class: bool) -> Ranges:
    """``\\d \\w \\s`` and their negations, sound for ECMA-262 *and* Python ``re``
    (``jsonschema`` runs patterns with ``re``): positive sets are the intersection of the
    two readings (ASCII ``\\d \\w``), negated ones the complement of the union; inside a
    negated class the positive sets are the union (so the complement is the intersection)."""
    kind = c.lower()
    ecma = {"d": DIGITS, "w": WORD, "s": SPACE}[kind]
    py = list(python_class(kind))
    union = normalize(ecma + py)
    if c.isupper():
        return complement(union)
    if negated_class:
        return union
    if kind == "s":
        return normalize([(max(a, c2), min(b, d2)) for a, b in ecma for c2, d2 in py if max(a, c2) <= min(b, d2)])
    return ecma  # ASCII digits / word characters: inside Python's Unicode sets


def _class_escape(r: _Reader, in_class: bool, negated_class: bool = False) -> Ranges:
    """Decode the escape after a backslash into code point ranges."""
    if r.eof():
        raise EcmaSyntaxError("pattern ends with a backslash")
    c = r.take()
    if c in "dDwWsS":
        return _shorthand(c, negated_class)
    if c in SIMPLE_ESCAPES and not (c == "0" and r.peek().isdigit()):
        return [(SIMPLE_ESCAPES[c],) * 2]
    if c == "b":
        if in_class:
            return [(0x08, 0x08)]
        raise EcmaUnsupported("word boundary \\b")
    if c == "B":
        raise EcmaUnsupported("word boundary \\B")
    if c == "x":
        cp = r.hex_digits(2)
        return [(cp, cp)] if cp is not None else [(ord("x"), ord("x"))]
    if c == "u":
        cp = r.unicode_escape()
        return [(cp, cp)] if cp is not None else [(ord("u"), ord("u"))]
    if c == "c":
        letter = r.peek()
        if letter.isascii() and letter.isalpha():
            r.take()
            return [(ord(letter) % 32,) * 2]
        return [(ord("\\"),) * 2, (ord("c"),) * 2] if in_class else [(ord("\\"), ord("\\"))]
    if c in "pP" and r.peek() == "{":
        raise EcmaUnsupported(f"Unicode property escape \\{c}{{...}}")
    if c.isdigit():
        if in_class:
            raise EcmaUnsupported(f"octal escape \\{c} in a character class")
        raise EcmaUnsupported(f"backreference \\{c}")
    if c == "k" and r.peek() == "<":
        raise EcmaUnsupported("named backreference \\k<...>")
    return [(ord(c), ord(c))]  # identity escape


def _parse_class(r: _Reader) -> Ranges:
    """After ``[``: the class contents up to ``]``, as ranges (negation applied)."""
    negated = False
    if r.peek() == "^":
        r.take()
        negated = True
    items: Ranges = []
    pending: list[Ranges] = []  # atoms in order, to find ranges a-b

    def atom() -> Ranges:
        ch = r.take()
        if ch == "\\":
            return _class_escape(r, in_class=True, negated_class=negated)
        return [(ord(ch), ord(ch))]

    while True:
        if r.eof():
            raise EcmaSyntaxError("unterminated character class")
        if r.peek() == "]":
            r.take()
            break
        first = atom()
        if r.peek() == "-" and r.peek(1) not in ("]", ""):
            r.take()
            second = atom()
            if len(first) == 1 and len(second) == 1 and first[0][0] == first[0][1] and second[0][0] == second[0][1]:
                lo, hi = first[0][0], second[0][0]
                if lo > hi:
                    raise EcmaSyntaxError("character class range out of order")
                items.append((lo, hi))
                continue
            # a class escape on either side of '-': all literal (Annex B)
            items.extend(first)
            items.append((ord("-"), ord("-")))
            items.extend(second)
            continue
        items.extend(first)
    del pending
    return complement(items) if negated else normalize(items)


_QUANT = re.compile(r"\{(\d+)(,(\d*))?\}")


def _translate_alternative(r: _Reader, depth: int) -> tuple[str, bool, bool]:
    """Translate up to ``|`` / ``)`` at this depth; returns (python, ^-anchored, $-anchored).

    Anchors are recognised only at depth 0 (start / end of an alternative)."""
    out: list[str] = []
    start_anchor = end_anchor = False
    while not r.eof():
        c = r.peek()
        if c == "|" or (c == ")" and depth > 0):
            break
        r.take()
        if c == "^":
            if depth == 0 and not out and not start_anchor:
                start_anchor = True
                continue
            raise EcmaUnsupported("'^' anchor not at the start of a top-level alternative")
        if c == "$":
            if depth == 0 and (r.eof() or r.peek() == "|"):
                end_anchor = True
                continue
            raise EcmaUnsupported("'$' anchor not at the end of a top-level alternative")
        if end_anchor:
            raise EcmaUnsupported("text after '$'")
        if c == "\\":
            out.append(class_text(_class_escape(r, in_class=False)))
        elif c == "[":
            ranges = _parse_class(r)
            out.append(class_text(ranges) if ranges else "(?:(?!))")
        elif c == ".":
            out.append(class_text(complement(LINE_TERMINATORS)))
        elif c == "(":
            prefix = "(?:"
            if r.peek() == "?":
                nxt = r.peek(1)
                if nxt == ":":
                    r.i += 2
                elif nxt in "=!" or (nxt == "<" and r.peek(2) in "=!"):
                    raise EcmaUnsupported("lookaround assertion")
                elif nxt == "<":
                    close = r.p.find(">", r.i)
                    if close < 0:
                        raise EcmaSyntaxError("unterminated group name")
                    r.i = close + 1
                else:
                    raise EcmaSyntaxError("invalid group")
            else:
                prefix = "("
            parts = []
            while True:
                text, _, _ = _translate_alternative(r, depth + 1)
                parts.append(text)
                if r.eof():
                    raise EcmaSyntaxError("missing ')'")
                if r.take() == ")":
                    break
            out.append(prefix + "|".join(parts) + ")")
        elif c == ")":
            raise EcmaSyntaxError("unmatched ')'")
        elif c == "{":
            m = _QUANT.match(r.p, r.i - 1)
            if m and out:
                lo, hi = m.group(1), m.group(3)
                if hi and int(hi) < int(lo):
                    raise EcmaSyntaxError("quantifier range out of order")
                out.append(m.group(0))
                r.i = m.end()
            elif m:
                raise EcmaSyntaxError("nothing to repeat")
            else:
                out.append("\\{")
        elif c in "*+?":
            if not out or out[-1] in ("*", "+", "?") and c != "?":
                raise EcmaSyntaxError("nothing to repeat")
            out.append(c)
        elif c == "}":
            out.append("\\}")
        elif c == "]":
            out.append("\\]")
        else:
            out.append(re.escape(c))
    return "".join(out), start_anchor, end_anchor


def ecma_to_python(pattern: str) -> str:
    """Python full-match pattern for the strings in which ECMA ``pattern`` finds a match."""
    r = _Reader(pattern)
    alternatives: list[str] = []
    while True:
        text, anchored_start, anchored_end = _translate_alternative(r, 0)
        head = "" if anchored_start else ANY_CHAR + "*"
        tail = "" if anchored_end else ANY_CHAR + "*"
        alternatives.append(f"{head}(?:{text}){tail}")
        if r.eof():
            break
        c = r.take()
        if c == ")":
            raise EcmaSyntaxError("unmatched ')'")
    return "|".join(f"(?:{a})" for a in alternatives)
