"""Regex -> byte automata: Python ``re`` syntax, UTF-8 byte AST, trimmed NFA, lazy DFA.

Public pieces: :func:`parse_regex`, the AST node types, :class:`LazyDFA` and
:class:`Limits`. See ``README.md`` in this folder for the design and measurements.
"""
from __future__ import annotations

from .ast import ANY_BYTE, EMPTY, NOTHING, Alt, And, ByteSet, Concat, Node, Not, Repeat
from .ast import alt, concat, literal, optional, repeat
from .dfa import DEAD, LazyDFA, is_prefix_free
from .limits import DEFAULT_LIMITS, Limits
from .nfa import NFA, build_nfa
from .regex_syntax import parse_regex
from .utf8 import utf8_ranges_node

__all__ = [
    "ANY_BYTE", "EMPTY", "NOTHING", "Alt", "And", "ByteSet", "Concat", "Node", "Not", "Repeat",
    "alt", "concat", "literal", "optional", "repeat", "DEAD", "LazyDFA", "is_prefix_free",
    "DEFAULT_LIMITS", "Limits", "NFA", "build_nfa", "parse_regex", "utf8_ranges_node",
]
