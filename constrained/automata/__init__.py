"""Regex -> byte automata: Python ``re`` syntax, UTF-8 byte AST, trimmed NFA, lazy DFA.

Public pieces: :func:`parse_regex`, the AST node types, :class:`LazyDFA` (and the
complete :class:`TrieDFA` of small finite languages, both :class:`TableDFA`) and
:class:`Limits`. See ``README.md`` in this folder for the design and measurements.
"""
from __future__ import annotations

from .ast import (
    ANY_BYTE,
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
    optional,
    repeat,
)
from .dfa import DEAD, LazyDFA, TableDFA, is_prefix_free
from .limits import DEFAULT_LIMITS, Limits
from .literals import TrieDFA, finite_strings, literal_dfa
from .nfa import NFA, build_nfa
from .regex_syntax import parse_regex
from .utf8 import utf8_ranges_node

__all__ = [
    "ANY_BYTE",
    "DEAD",
    "DEFAULT_LIMITS",
    "EMPTY",
    "NFA",
    "NOTHING",
    "Alt",
    "And",
    "ByteSet",
    "Concat",
    "LazyDFA",
    "Limits",
    "Node",
    "Not",
    "Repeat",
    "TableDFA",
    "TrieDFA",
    "alt",
    "build_nfa",
    "concat",
    "finite_strings",
    "is_prefix_free",
    "literal",
    "literal_dfa",
    "optional",
    "parse_regex",
    "repeat",
    "utf8_ranges_node",
]
