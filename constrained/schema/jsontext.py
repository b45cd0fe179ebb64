"""JSON lexical structure as regex ASTs: layout (whitespace), strings, numbers, literals.

Strings are built in two steps: a *decoded* language (the UTF-8 bytes of the string
value: what ``pattern`` / ``format`` / lengths talk about) is mapped by
:func:`encode_string_content` to the language of its JSON encodings. The mapping is a
byte homomorphism (only ASCII bytes change) and uniquely decodable, so it commutes with
union, concatenation, repetition and intersection; complement is relative to valid UTF-8.

Escapes the policy writes: ``\\"``, ``\\\\``, ``\\/`` for ``/``, the short forms of
control characters (``\\b \\f \\n \\r \\t``) and ``\\u00XX`` (any hex case) for every
control character; every other character is written raw (UTF-8).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from ..automata.ast import (
    EMPTY,
    NOTHING,
    Alt,
    And,
    ByteSet,
    Concat,
    Node,
    Not,
    Repeat,
    alt,
    concat,
    literal,
    repeat,
)
from ..automata.utf8 import utf8_ranges_node
from .options import SchemaOptions

QUOTE = ByteSet.of(0x22)
BACKSLASH = 0x5C
WS_BYTES = ByteSet.of(0x20, 0x09, 0x0A, 0x0D)
#: any Unicode scalar value, UTF-8 encoded (decoded-string domain)
ANY_CHAR: Node = utf8_ranges_node(((0, 0x10FFFF),))
ANY_STRING_CONTENT: Node = Repeat(ANY_CHAR, 0, None)
_NON_ASCII: Node = Repeat(utf8_ranges_node(((0x80, 0x10FFFF),)), 1, 1)
_SHORT = {0x08: "b", 0x0C: "f", 0x0A: "n", 0x0D: "r", 0x09: "t"}
_HEX = "0123456789abcdef"


def _hex_digit(v: int) -> Node:
    ch = _HEX[v]
    return ByteSet.of(ord(ch), ord(ch.upper())) if ch.isalpha() else ByteSet.of(ord(ch))


def _escapes_of(byte: int) -> list[Node]:
    """The JSON spellings the policy allows for ``"``, ``\\`` or ``/`` (control bytes:
    the short escapes and :func:`_unicode_escapes`)."""
    if byte == 0x22:
        return [literal(b'\\"')]
    if byte == BACKSLASH:
        return [literal(b"\\\\")]
    return [ByteSet.of(0x2F), literal(b"\\/")]


_CONTROLS = (1 << 0x20) - 1
_SPECIAL = _CONTROLS | (1 << 0x22) | (1 << BACKSLASH) | (1 << 0x2F)


def _unicode_escapes(controls: int) -> Node:
    """``\\u00XX`` for every control byte in the bit set ``controls``, factored by the high
    hex digit: ``\\u00`` then one of two (digit, set of low digits) pairs. Written out per
    byte, the 32 escapes of "any character" cost ~190 NFA states in every JSON string
    lexeme (a string was 233 states, now 50; schema NFAs build in proportion)."""
    groups: list[Node] = []
    for high in (0, 1):
        lows = (controls >> (16 * high)) & 0xFFFF
        if lows:
            low_bits = 0
            for v in range(16):
                if lows >> v & 1:
                    low_bits |= _hex_digit(v).bits  # type: ignore[union-attr]
            groups.append(concat(_hex_digit(high), ByteSet(low_bits)))
    return concat(literal(b"\\u00"), alt(*groups))


_SPECIAL_NODE = ByteSet(_SPECIAL)


def encode_string_content(node: Node, memo: dict[int, Node] | None = None) -> Node:
    """JSON-encoded spellings of the decoded strings in ``node`` (no quotes)."""
    memo = {} if memo is None else memo
    key = id(node)
    hit = memo.get(key)
    if hit is not None:
        return hit
    out: Node
    if isinstance(node, ByteSet) and not node.bits & _SPECIAL:
        out = node  # nothing to escape: the node is its own encoding (and stays shared)
    elif isinstance(node, ByteSet):
        plain = node.bits & ~_SPECIAL
        parts: list[Node] = [ByteSet(plain)] if plain else []
        special = node.bits & _SPECIAL
        controls = special & _CONTROLS
        for b in range(0x20, 0x80):  # '"', '\\', '/'
            if special >> b & 1:
                parts.extend(_escapes_of(b))
        for b, letter in _SHORT.items():
            if controls >> b & 1:
                parts.append(literal(b"\\" + letter.encode()))
        if controls:
            parts.append(_unicode_escapes(controls))
        out = alt(*parts) if parts else NOTHING
    elif isinstance(node, (Concat, Alt)):
        # children looked up inline: most are memo hits or escape-free byte sets (the
        # complement tries of additional-property keys visit ~100k of them per schema)
        encoded: list[Node] = []
        same = True
        for i in node.items:
            e = memo.get(id(i))
            if e is None:
                if type(i) is ByteSet and not i.bits & _SPECIAL:
                    e = i
                else:
                    e = encode_string_content(i, memo)
            if e is not i:
                same = False
            encoded.append(e)
        out = node if same else type(node)(tuple(encoded))
    elif isinstance(node, Repeat):
        item = encode_string_content(node.item, memo)
        out = node if item is node.item else Repeat(item, node.min, node.max)
    elif isinstance(node, And):
        out = And(tuple(encode_string_content(i, memo) for i in node.items))
    elif isinstance(node, Not):
        universe = encode_string_content(ANY_STRING_CONTENT, memo)
        out = And((universe, Not(encode_string_content(node.item, memo))))
    else:  # pragma: no cover - exhaustive
        raise TypeError(f"not an AST node: {node!r}")
    memo[key] = out
    memo[-key - 1] = node  # keep ``node`` alive so its id is not reused while memoised
    return out


def string_node(decoded: Node, memo: dict[int, Node] | None = None) -> Node:
    """A JSON string literal whose value is in the decoded language ``decoded``."""
    return concat(QUOTE, encode_string_content(decoded, memo), QUOTE)


def string_literal(text: str) -> Node:
    """All policy spellings of the one string ``text`` (fast path: nothing to escape)."""
    if not any(ch in '"\\/' or ord(ch) < 0x20 for ch in text):
        return literal('"' + text + '"')
    return string_node(literal(text) if text else EMPTY)


def nullable(node: Node) -> bool:
    """Whether ``node`` matches the empty string."""
    if isinstance(node, ByteSet):
        return False
    if isinstance(node, Concat):
        return all(nullable(i) for i in node.items)
    if isinstance(node, Alt):
        return any(nullable(i) for i in node.items)
    if isinstance(node, Repeat):
        return node.min == 0 or nullable(node.item)
    if isinstance(node, And):
        return all(nullable(i) for i in node.items)
    if isinstance(node, Not):
        return not nullable(node.item)
    raise TypeError(node)


@dataclass(frozen=True)
class Layout:
    """Where whitespace goes (the whitespace policy).

    flexible: up to ``max_whitespace`` whitespace bytes (space, tab, LF, CR) at each place
    JSON allows whitespace inside the document (none before or after it); compact: none;
    indent: exactly ``json.dumps(value, indent=N)``.
    """

    options: SchemaOptions

    @property
    def indented(self) -> bool:
        return self.options.indent is not None

    def ws(self) -> Node:
        if self.options.whitespace == "compact" or self.options.max_whitespace == 0:
            return EMPTY
        return Repeat(WS_BYTES, 0, self.options.max_whitespace)

    def _newline(self, depth: int) -> Node:
        return literal("\n" + " " * (self.options.indent or 0) * depth)

    def open(self, bracket: str, depth: int) -> Node:
        """Opening bracket of a non-empty container at ``depth`` (its own depth)."""
        if self.indented:
            return concat(literal(bracket), self._newline(depth + 1))
        return concat(literal(bracket), self.ws())

    def close(self, bracket: str, depth: int) -> Node:
        """Closing bracket of a non-empty container."""
        if self.indented:
            return concat(self._newline(depth), literal(bracket))
        return concat(self.ws(), literal(bracket))

    def empty(self, brackets: str) -> Node:
        if self.indented:
            return literal(brackets)
        return concat(literal(brackets[0]), self.ws(), literal(brackets[1]))

    def sep(self, depth: int) -> Node:
        """Between members of a container whose own depth is ``depth``."""
        if self.indented:
            return concat(literal(","), self._newline(depth + 1))
        return concat(self.ws(), literal(","), self.ws())

    def colon(self) -> Node:
        if self.indented:
            return literal(": ")
        return concat(self.ws(), literal(":"), self.ws())


def number_text(value: float) -> list[str]:
    """Spellings of one number the policy writes (``1.0`` also as ``1``)."""
    if isinstance(value, int):
        return [str(value)]
    if not math.isfinite(value):
        return []
    out = [json.dumps(value)]
    if value.is_integer() and abs(value) < 1e16:
        out.append(str(int(value)))
    return out


def value_node(value: Any, layout: Layout, depth: int = 0, memo: dict[int, Node] | None = None) -> Node:
    """The policy's spellings of one JSON value (keys in the given order)."""
    if value is None:
        return literal("null")
    if value is True:
        return literal("true")
    if value is False:
        return literal("false")
    if isinstance(value, (int, float)):
        texts = number_text(value)
        return alt(*(literal(t) for t in texts)) if texts else NOTHING
    if isinstance(value, str):
        return string_node(literal(value) if value else EMPTY, memo)
    if isinstance(value, list):
        if not value:
            return layout.empty("[]")
        items: list[Node] = [layout.open("[", depth)]
        for i, v in enumerate(value):
            if i:
                items.append(layout.sep(depth))
            items.append(value_node(v, layout, depth + 1, memo))
        items.append(layout.close("]", depth))
        return concat(*items)
    if isinstance(value, dict):
        if not value:
            return layout.empty("{}")
        items = [layout.open("{", depth)]
        for i, (k, v) in enumerate(value.items()):
            if i:
                items.append(layout.sep(depth))
            items += [string_node(literal(k) if k else EMPTY, memo), layout.colon(),
                      value_node(v, layout, depth + 1, memo)]
        items.append(layout.close("}", depth))
        return concat(*items)
    raise TypeError(f"not a JSON value: {value!r}")


def number_node(options: SchemaOptions) -> Node:
    """Any JSON number, digits bounded (integer part, fraction, exponent)."""
    digit = ByteSet.range(0x30, 0x39)
    integer = alt(literal("0"), concat(ByteSet.range(0x31, 0x39), repeat(digit, 0, options.max_integer_digits - 1)))
    parts: list[Node] = [repeat(literal("-"), 0, 1), integer]
    if options.max_fraction_digits:
        parts.append(repeat(concat(literal("."), repeat(digit, 1, options.max_fraction_digits)), 0, 1))
    if options.max_exponent_digits:
        parts.append(repeat(concat(ByteSet.of(0x65, 0x45), repeat(ByteSet.of(0x2B, 0x2D), 0, 1),
                                   repeat(digit, 1, options.max_exponent_digits)), 0, 1))
    return concat(*parts)


def strings_except(words: list[str]) -> Node:
    """Decoded strings other than ``words``, without complement nodes (a trie walk):
    cheap to determinise, unlike ``And(any, Not(words))``."""
    trie: dict[str, Any] = {}
    for w in words:
        node = trie
        for ch in w:
            node = node.setdefault(ch, {})
        node[""] = True

    def build(node: dict[str, Any]) -> Node:
        chars = sorted(ord(c) for c in node if c)
        others: list[tuple[int, int]] = []
        prev = 0
        for c in chars:
            if c > prev:
                others.append((prev, c - 1))
            prev = c + 1
        if prev <= 0x10FFFF:
            others.append((prev, 0x10FFFF))
        parts: list[Node] = []
        if "" not in node:
            parts.append(EMPTY)
        ascii_bits = 0
        wide: list[tuple[int, int]] = []
        for lo, hi in others:
            if lo < 0x80:
                top = min(hi, 0x7F)
                ascii_bits |= ((1 << (top - lo + 1)) - 1) << lo
            if hi >= 0x80:
                wide.append((max(lo, 0x80), hi))
        if ascii_bits:
            # the escaped characters as one shared node: its JSON spellings are built once
            special = ascii_bits & _SPECIAL
            cls: Node = _SPECIAL_NODE if special == _SPECIAL else ByteSet(special)
            if ascii_bits & ~_SPECIAL:
                cls = alt(ByteSet(ascii_bits & ~_SPECIAL), cls) if special else ByteSet(ascii_bits & ~_SPECIAL)
            parts.append(concat(cls, ANY_STRING_CONTENT))
        if wide:
            # Repeat(..., 1, 1): the same language; keeps automaton size estimates from
            # re-walking the shared UTF-8 class once per trie node
            cls = _NON_ASCII if wide == [(0x80, 0x10FFFF)] else Repeat(utf8_ranges_node(tuple(wide)), 1, 1)
            parts.append(concat(cls, ANY_STRING_CONTENT))
        for c in chars:
            parts.append(concat(literal(chr(c)), build(node[chr(c)])))
        return alt(*parts) if parts else NOTHING

    try:
        return build(trie)
    finally:
        del build  # a recursive closure refers to itself: free it without the GC
