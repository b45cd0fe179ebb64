"""JSON Schema and pydantic models -> constraints.

``compile_json_schema(schema, vocab, **options)`` accepts a dict, a bool, JSON text, a
pydantic model class or a Python type. A schema whose language is regular becomes one
regex AST (matched by the lazy DFA alone); recursion or unconstrained nested values
become a grammar (rules carry the recursion, lexemes are ASTs) for the Earley engine.
Policies and per-keyword support: docs/json-schema.md.
"""
from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import replace
from typing import Any, TypeVar

from ..automata.ast import Node
from ..errors import (
    ConstraintTooComplex,
    IncompleteOutput,
    SchemaError,
    SchemaUnsatisfiable,
)
from ..gcpause import collector_paused
from ..grammar.ir import Grammar
from .compiler import SchemaCompiler
from .options import SchemaOptions
from .pieces import is_nothing, is_regular
from .source import is_pydantic_model, load_schema

__all__ = [
    "SchemaOptions",
    "compile_json_schema",
    "json_schema_of",
    "parse_output",
    "schema_to_ast",
    "schema_to_grammar",
    "schema_to_language",
]

T = TypeVar("T")


def _options(source: object, from_model: bool, options: dict[str, Any]) -> SchemaOptions:
    base = SchemaOptions(additional_properties=False) if from_model else SchemaOptions()
    return SchemaOptions.from_kwargs(base, **options)


def json_schema_of(source: object) -> dict[str, Any] | bool:
    """The JSON Schema for a dict / bool / JSON text / pydantic model / Python type."""
    return load_schema(source)[0]


def schema_to_language(source: object, **options: Any) -> Node | Grammar:
    """The schema's language under the generation policy: a regex AST when regular,
    else a :class:`Grammar` (pure function; nothing is compiled against a vocabulary)."""
    schema, from_model = load_schema(source)
    compiler = SchemaCompiler(schema, _options(source, from_model, options), from_model)
    piece = _root_piece(compiler)
    if is_regular(piece):
        return piece  # type: ignore[return-value]
    return compiler.grammar(piece)


def _root_piece(compiler: SchemaCompiler) -> Any:
    try:
        piece = compiler.compile_root()
    except RecursionError:
        raise ConstraintTooComplex("JSON Schema nests too deeply to compile (Python recursion "
                                   "limit)") from None
    if is_nothing(piece):
        raise SchemaUnsatisfiable("the schema accepts no JSON value under the generation policy "
                                  "(false, contradictory keywords, or empty enum)")
    return piece


def schema_to_ast(source: object, **options: Any) -> Node:
    """The schema's language as one regex AST; raises SchemaUnsupported when the schema
    needs a grammar (recursion, unconstrained nested values)."""
    from ..errors import SchemaUnsupported

    lang = schema_to_language(source, **options)
    if isinstance(lang, Grammar):
        raise SchemaUnsupported("schema is not regular (recursive $ref or unconstrained nested values); "
                                "use schema_to_grammar")
    return lang


def schema_to_grammar(source: object, **options: Any) -> Grammar:
    """The schema's language as a grammar (regular schemas become a one-lexeme grammar)."""
    schema, from_model = load_schema(source)
    compiler = SchemaCompiler(schema, _options(source, from_model, options), from_model)
    return compiler.grammar(_root_piece(compiler))


class _Cache:
    """Bounded LRU of compiled schema constraints keyed by (schema text, options, vocab)."""

    def __init__(self, capacity: int = 32) -> None:
        self.capacity = capacity
        self.items: OrderedDict[Any, Any] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self.lock:
            hit = self.items.get(key)
            if hit is not None:
                self.items.move_to_end(key)
            return hit

    def put(self, key: Any, value: Any) -> None:
        with self.lock:
            self.items[key] = value
            while len(self.items) > self.capacity:
                self.items.popitem(last=False)


_CACHE = _Cache()


def compile_json_schema(schema: object, vocab: Any, **options: Any) -> Any:
    """Compile a JSON Schema (dict, bool, JSON text, pydantic model class, Python type)
    against ``vocab``; returns a ``Constraint``.

    Options (``SchemaOptions``): whitespace="flexible"|"compact", max_whitespace, indent,
    additional_properties (False is the default for pydantic models), lenient, digit bounds.
    """
    doc, from_model = load_schema(schema)
    opts = _options(schema, from_model, options)
    try:
        key = (json.dumps(doc, sort_keys=False), opts, getattr(vocab, "fingerprint", id(vocab)))
    except (TypeError, ValueError) as exc:
        raise SchemaError(f"schema is not JSON-serialisable: {exc}") from exc
    hit = _CACHE.get(key)
    if hit is not None:
        return hit
    with collector_paused():  # a burst of short-lived objects (gcpause.py)
        constraint = _compile(doc, opts, from_model, vocab)
    _CACHE.put(key, constraint)
    return constraint


def _compile(doc: Any, opts: SchemaOptions, from_model: bool, vocab: Any) -> Any:
    """The uncached part of :func:`compile_json_schema`."""
    from ..compile import RegexConstraint
    from ..grammar import compile_grammar

    compiler = SchemaCompiler(doc, opts, from_model)
    piece = _root_piece(compiler)
    constraint: Any = None
    if is_regular(piece):
        try:
            constraint = RegexConstraint(piece, vocab)  # type: ignore[arg-type]
        except ConstraintTooComplex:
            # one automaton for the whole document is too large: rules over small lexemes
            compiler = SchemaCompiler(doc, replace(opts, split_lexemes=True), from_model)
            piece = _root_piece(compiler)
    if constraint is None:
        # no lexer exploration at compile time: a document visits few of a schema
        # lexer's states, and the time to first mask budget is 5 ms (docs/grammars.md)
        constraint = compile_grammar(compiler.grammar(piece), vocab, explore_lexer=False)
    return constraint


def parse_output(text: str | bytes, model: type[T]) -> T:
    """Turn generated text into a validated ``model`` instance (pydantic model class or
    Python type); raises ``IncompleteOutput`` when the text does not validate."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    try:
        if is_pydantic_model(model):
            return model.model_validate_json(text)  # type: ignore[attr-defined, no-any-return]
        from pydantic import TypeAdapter

        return TypeAdapter(model).validate_json(text)
    except ValueError as exc:
        raise IncompleteOutput(f"output does not validate as {getattr(model, '__name__', model)}: {exc}",
                               partial=text) from exc
