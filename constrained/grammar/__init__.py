"""Grammar constraints: the IR, the Lark and GBNF front ends, and their compilation.

``compile_lark(text, vocab)`` / ``compile_gbnf(text, vocab)`` / ``compile_grammar(ir, vocab)``
return a :class:`GrammarConstraint` (a ``Constraint``); see docs/grammars.md for the
lexing semantics and policies (greedy contextual lexing, bounded ``%ignore``).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..automata import Limits
from ..gcpause import collector_paused
from ..parser.earley import ParserLimits
from ..vocab import Vocabulary
from .constraint import GrammarConstraint, GrammarMatcher, compile_grammar
from .gbnf_frontend import gbnf_to_grammar
from .ir import Grammar, Lexeme, Rule
from .lark_frontend import DEFAULT_IGNORE_MAX_BYTES, DEFAULT_MAX_IGNORE, lark_to_grammar

__all__ = [
    "Grammar",
    "GrammarConstraint",
    "GrammarMatcher",
    "Lexeme",
    "ParserLimits",
    "Rule",
    "compile_gbnf",
    "compile_grammar",
    "compile_lark",
    "gbnf_to_grammar",
    "lark_to_grammar",
]


def compile_lark(text: str, vocab: Vocabulary, start: str = "start", *,
                 ignore_max_bytes: int | None = DEFAULT_IGNORE_MAX_BYTES,
                 max_ignore: int | None = DEFAULT_MAX_IGNORE,
                 import_paths: Sequence[Any] = (), dfa_limits: Limits | None = None,
                 parser_limits: ParserLimits | None = None, **options: Any) -> GrammarConstraint:
    """Compile a Lark grammar. ``options`` are Lark options (tree-shaping ones are ignored);
    ``ignore_max_bytes`` / ``max_ignore`` bound ``%ignore`` content (None = unbounded)."""
    with collector_paused():  # a burst of short-lived objects (gcpause.py)
        g = lark_to_grammar(text, start, ignore_max_bytes=ignore_max_bytes,
                            max_ignore=max_ignore, import_paths=import_paths, **options)
        return GrammarConstraint(g, vocab, dfa_limits=dfa_limits, parser_limits=parser_limits)


def compile_gbnf(text: str, vocab: Vocabulary, start: str = "root", *,
                 dfa_limits: Limits | None = None,
                 parser_limits: ParserLimits | None = None) -> GrammarConstraint:
    """Compile a llama.cpp GBNF grammar (root rule ``start``)."""
    with collector_paused():
        return GrammarConstraint(gbnf_to_grammar(text, start), vocab, dfa_limits=dfa_limits,
                                 parser_limits=parser_limits)
