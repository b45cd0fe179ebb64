"""Byte-level regular-expression AST: the common language of every lexeme.

Regex syntax (``automata/regex_syntax.py``), JSON Schema lexemes (``schema/``) and grammar
terminals all lower to these nodes; ``automata/nfa.py`` turns them into a byte NFA.
Nodes are immutable and hashable so identical sub-expressions can be shared and cached.
A node denotes a set of *byte strings* (UTF-8 for text).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union


@dataclass(frozen=True, slots=True)
class ByteSet:
    """Exactly one byte from a set; ``bits`` is a 256-bit integer (bit b set = byte b)."""

    bits: int

    @staticmethod
    def of(*byte_values: int) -> "ByteSet":
        if len(byte_values) == 1:
            return _SINGLE_BYTES[byte_values[0]]
        bits = 0
        for b in byte_values:
            bits |= 1 << b
        return ByteSet(bits)

    @staticmethod
    def range(lo: int, hi: int) -> "ByteSet":
        """Bytes ``lo..hi`` inclusive."""
        return ByteSet(((1 << (hi - lo + 1)) - 1) << lo)

    def __contains__(self, b: int) -> bool:
        return bool((self.bits >> b) & 1)


@dataclass(frozen=True, slots=True)
class Concat:
    """Items one after another; ``Concat(())`` is the empty string."""

    items: tuple["Node", ...]


@dataclass(frozen=True, slots=True)
class Alt:
    """Any one of the items; ``Alt(())`` is the empty language (matches nothing)."""

    items: tuple["Node", ...]


@dataclass(frozen=True, slots=True)
class Repeat:
    """``item`` repeated ``min`` to ``max`` times (``max=None``: unbounded)."""

    item: "Node"
    min: int
    max: int | None


@dataclass(frozen=True, slots=True)
class And:
    """Intersection of the items' languages (JSON Schema allOf of string patterns)."""

    items: tuple["Node", ...]


@dataclass(frozen=True, slots=True)
class Not:
    """Complement of ``item`` with respect to all byte strings (use inside And)."""

    item: "Node"


Node = Union[ByteSet, Concat, Alt, Repeat, And, Not]

# the 256 one-byte sets, shared (nodes are immutable): a schema's literal keys and values
# made ~1,200 of them per MaskBench schema, each a tracked object kept by the compiled
# grammar, a third of what compiling promoted to the collector's oldest generation
_SINGLE_BYTES: tuple[ByteSet, ...] = tuple(ByteSet(1 << b) for b in range(256))

EMPTY: Node = Concat(())
NOTHING: Node = Alt(())
ANY_BYTE = ByteSet((1 << 256) - 1)


def literal(data: bytes | str) -> Node:
    """The single string ``data`` (str is UTF-8 encoded)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    if len(data) == 1:
        return ByteSet.of(data[0])
    return Concat(tuple(ByteSet.of(b) for b in data))


def concat(*items: Node) -> Node:
    """Concatenation, flattening nested Concats and dropping empty strings."""
    out: list[Node] = []
    for it in items:
        if isinstance(it, Concat):
            out.extend(it.items)
        else:
            out.append(it)
    if len(out) == 1:
        return out[0]
    return Concat(tuple(out))


def alt(*items: Node) -> Node:
    """Alternation, flattening nested Alts."""
    out: list[Node] = []
    for it in items:
        if isinstance(it, Alt):
            out.extend(it.items)
        else:
            out.append(it)
    if len(out) == 1:
        return out[0]
    return Alt(tuple(out))


def repeat(item: Node, lo: int = 0, hi: int | None = None) -> Node:
    """``item{lo,hi}``."""
    if lo == 1 and hi == 1:
        return item
    return Repeat(item, lo, hi)


def optional(item: Node) -> Node:
    """``item?``."""
    return Repeat(item, 0, 1)


def structural_ids(nodes: tuple[Node, ...] | list[Node]) -> list[int]:
    """One integer per node, equal exactly for structurally equal nodes.

    Linear in the number of *distinct node objects* (memoised by identity): hashing a
    node compares it as a tree, and lexeme ASTs share subtrees heavily (a JSON string
    escape inside every property), so ``hash`` over a schema grammar's 1,500 lexemes
    made ~24 M recursive calls, about a fifth of its compile time.
    """
    by_obj: dict[int, int] = {}
    interned: dict[tuple[object, ...], int] = {}
    keep: list[Node] = []  # keeps ids in by_obj valid while this runs

    def sid(node: Node) -> int:
        found = by_obj.get(id(node))
        if found is not None:
            return found
        key: tuple[object, ...]
        if isinstance(node, ByteSet):
            key = (0, node.bits)
        elif isinstance(node, Repeat):
            key = (3, sid(node.item), node.min, node.max)
        elif isinstance(node, Not):
            key = (5, sid(node.item))
        else:
            tag = 1 if isinstance(node, Concat) else 2 if isinstance(node, Alt) else 4
            key = (tag, *[sid(it) for it in node.items])
        found = interned.setdefault(key, len(interned))
        by_obj[id(node)] = found
        keep.append(node)
        return found

    try:
        return [sid(n) for n in nodes]
    finally:
        del sid  # a recursive closure refers to itself: free it without the GC
