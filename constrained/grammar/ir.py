"""Grammar IR: context-free rules over lexemes.

Every grammar source lowers to this: Lark (``grammar/lark_frontend.py``), GBNF
(``grammar/gbnf_frontend.py``) and recursive JSON Schemas (``schema/``). Regular
sub-structure should already be inlined into lexemes; rules keep only real recursion.
The Earley parser (``parser/``) runs over rules; the lexer automaton runs over lexemes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..automata.ast import Node


@dataclass(frozen=True)
class Lexeme:
    """A terminal: a regular language over bytes.

    ``priority`` breaks ties between lexemes matching the same longest prefix (higher
    wins, as in Lark); ``literal`` is the exact text when the lexeme is a fixed string.
    ``not_followed_by``: bytes that may not come right after the lexeme (a trailing
    negative lookahead such as Lark's ``/[?](?![a-z])/``); end of input is always fine.
    """

    name: str
    regex: Node
    priority: int = 0
    literal: bytes | None = None
    not_followed_by: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Rule:
    """A nonterminal ``name`` with alternatives, each a sequence of symbol names.

    A symbol name refers either to another rule or to a lexeme of the grammar.
    """

    name: str
    alternatives: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Grammar:
    """A complete grammar: rules, lexemes, start symbol, and ignored lexemes.

    ``ignore`` lists lexeme names that may appear between any two lexemes (whitespace,
    comments); ``max_ignore`` bounds how many ignored lexemes may occur in a row
    (``None`` = unbounded) so a model cannot loop forever on whitespace.

    ``lexing``: ``"greedy"`` lexes as Lark does (a lexeme goes on while any expected
    lexeme can). ``"all"`` keeps both readings where an expected lexeme may end and a
    different one goes on, so the language is the rules' own over the lexemes'
    languages: JSON Schema grammars use it (a choice may hold a whole regular value as
    one lexeme beside another branch's ``[``; greedy lexing rejected valid documents).
    """

    rules: dict[str, Rule]
    lexemes: dict[str, Lexeme]
    start: str
    ignore: tuple[str, ...] = ()
    max_ignore: int | None = None
    lexing: Literal["greedy", "all"] = "greedy"
    meta: dict[str, object] = field(default_factory=dict)
