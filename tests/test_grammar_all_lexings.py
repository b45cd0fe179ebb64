"""Grammars that keep every lexing (``Grammar.lexing == "all"``, what JSON Schema grammars
use): where an expected lexeme may end and a different one goes on, both readings live.

References: Lark's Earley parser with its ``dynamic_complete`` lexer (which tries every
split) for random grammars over fixed-string terminals; jsonschema for the schema cases
that greedy lexing used to reject; and, at token level, advancing every token one by one
(the definition of the mask) on GPT-2's 50k tokens.
"""
from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Callable
from typing import Any

import lark
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from constrained.errors import GrammarSyntaxError
from constrained.grammar import GrammarConstraint, lark_to_grammar
from constrained.grammar.compiled import CompiledGrammar
from constrained.grammar.ir import Grammar
from constrained.schema import compile_json_schema, schema_to_language
from tests.test_schema_helpers import reference_validator
from tests.testdata import lark_accepts

# fixed-string terminals, some a proper prefix of another ("a" / "ab" / "aba")
TERMINALS = ["a", "b", "ab", "ba", "aba", "bb"]


def _all_lexings(text: str) -> Grammar:
    return dataclasses.replace(lark_to_grammar(text), lexing="all")


@st.composite
def _grammars(draw: st.DrawFn) -> str:
    """A random grammar: 2-3 rules, each 1-3 alternatives of 0-3 symbols (terminal
    strings or rules; recursion allowed), rules numbered so every rule can be used."""
    n_rules = draw(st.integers(2, 3))
    lines = []
    for r in range(n_rules):
        alts = []
        for _ in range(draw(st.integers(1, 3))):
            syms = []
            for _ in range(draw(st.integers(0 if r else 1, 3))):
                if draw(st.booleans()):
                    syms.append(f'"{draw(st.sampled_from(TERMINALS))}"')
                else:
                    syms.append(f"r{draw(st.integers(0, n_rules - 1))}")
            alts.append(" ".join(syms))
        lines.append(f"r{r}: " + " | ".join(alts))
    return "start: r0\n" + "\n".join(lines)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_grammars())
def test_every_lexing_agrees_with_larks_dynamic_complete_lexer(text: str) -> None:
    """Every string over {a, b} up to 6 bytes: ours (every lexing kept) == Lark trying
    every split. A greedy lexer differs here (``"ab"`` runs past ``"a"`` ``"ba"``)."""
    reference = lark.Lark(text, parser="earley", lexer="dynamic_complete")
    try:
        cg: CompiledGrammar | None = CompiledGrammar(_all_lexings(text))
    except GrammarSyntaxError:  # the start rule derives no string: Lark accepts none
        cg = None
    for size in range(7):
        for chars in itertools.product("ab", repeat=size):
            s = "".join(chars)
            ours = cg is not None and cg.accepts(s.encode())
            assert ours == lark_accepts(reference, s), (text, s)


def test_greedy_and_every_lexing_differ_where_a_terminal_prefixes_another() -> None:
    """The case the option exists for, both ways: greedy lexing reads ``ab`` and
    dies; every lexing also reads ``a`` + ``ba``."""
    text = 'start: "a" "ba" | "ab" "c"'
    greedy = CompiledGrammar(lark_to_grammar(text))
    every = CompiledGrammar(_all_lexings(text))
    assert not greedy.accepts(b"aba") and every.accepts(b"aba")
    assert greedy.accepts(b"abc") and every.accepts(b"abc")
    assert not every.accepts(b"ab") and not every.accepts(b"abac")


# JSON Schema choices that mix a whole regular value (one lexeme) with a branch whose
# first lexeme is its proper prefix: greedy lexing rejected these valid documents
# (MaskBench Github_hard o10421/o10515/o12459, WashingtonPost wp_100 are the first case)
_CATEGORY = {"additionalProperties": False, "type": "object",
             "anyOf": [{"required": ["term"]}, {"properties": {"term": {"type": "string"}}}]}
SCHEMA_CASES: list[tuple[str, Any, list[str], list[str]]] = [
    ("regular-branch-beside-any-object",
     {"type": "object", "properties": {"feed": {
         "type": "object",
         "anyOf": [{"type": "object"},
                   {"properties": {"category": {"type": "array", "items": _CATEGORY}}}]}}},
     ['{"feed": {"category": [{"term": "x"}]}}', '{"feed": {"category": [{}]}}'],
     ['{"feed": []}', '{"feed": {"category": [{"term": "x"}]]}']),
    ("exact-array-beside-any-array",
     {"anyOf": [{"type": "array", "prefixItems": [{"const": 1}], "items": False},
                {"type": "array"}]},
     ["[1, 2]", "[1]", '[1, {"a": [2]}]', "[]"],
     ["[1, 2", "{}", "[1,]"]),
]


@pytest.mark.parametrize("name,schema,valid,invalid", SCHEMA_CASES, ids=[c[0] for c in SCHEMA_CASES])
def test_schema_choices_accept_what_jsonschema_validates(name: str, schema: Any, valid: list[str],
                                                         invalid: list[str]) -> None:
    check = reference_validator(schema)
    grammar = schema_to_language(schema)
    assert isinstance(grammar, Grammar) and grammar.lexing == "all"
    cg = CompiledGrammar(grammar)
    greedy = CompiledGrammar(dataclasses.replace(grammar, lexing="greedy"))
    assert not all(greedy.accepts(t.encode()) for t in valid), "the case no longer needs forks"
    for text in valid:
        assert not list(check.iter_errors(json.loads(text))), text  # the reference agrees
        assert cg.accepts(text.encode()), text
    for text in invalid:
        try:
            ok = not list(check.iter_errors(json.loads(text)))
        except json.JSONDecodeError:
            ok = False
        assert not ok, text
        assert not cg.accepts(text.encode()), text


@pytest.mark.parametrize("name,schema,valid,invalid", SCHEMA_CASES, ids=[c[0] for c in SCHEMA_CASES])
def test_schema_choice_masks_equal_token_by_token_advance(
        name: str, schema: Any, valid: list[str], invalid: list[str],
        load_vocab: Callable[[str], Any]) -> None:
    """The walk kernel's fork ends: every mask along a valid document, tokenized a few
    bytes at a time, equals advancing each of GPT-2's tokens (forks inside tokens)."""
    vocab = load_vocab("gpt-2")
    c = compile_json_schema(schema, vocab)
    assert isinstance(c, GrammarConstraint)
    ids = {t: i for i, t in enumerate(vocab.tokens)}
    special = list(vocab.special_token_ids)
    n_text = len(vocab.tokens)
    data = valid[0].encode()
    toks, pos = [], 0
    while pos < len(data):
        n = next(k for k in (3, 2, 1) if data[pos:pos + k] in ids)
        toks.append(ids[data[pos:pos + n]])
        pos += n
    m = c.matcher()
    probe = c.matcher()
    for step, tid in enumerate(toks):
        mask = m.mask()[:n_text]
        want = np.zeros(n_text, dtype=bool)
        for t, tok in enumerate(vocab.tokens):
            if tok and t not in special:
                want[t] = probe._advance_token(m.state, t) is not None
        mask[special] = want[special] = False
        bad = np.flatnonzero(mask != want)
        assert bad.size == 0, f"step {step}: mask wrong for {[vocab.tokens[i] for i in bad[:5]]}"
        m.advance(tid)
    assert m.mask()[vocab.eos_token_ids[0]]


def test_too_many_lexings_at_once_is_a_clear_error() -> None:
    """Readings are bounded (MAX_READINGS): a grammar whose splits of ``a...a`` all stay
    alive with different parser states fails with ConstraintTooComplex, not by growing."""
    from constrained.errors import ConstraintTooComplex
    from constrained.grammar.compiled import MAX_READINGS

    cg = CompiledGrammar(_all_lexings('start: s\ns: "a" s "b" | "aa" s "bb" |'))
    few = cg.advance_all((cg.initial,), b"aaaa")
    assert few is not None and 1 < len(few) <= MAX_READINGS
    assert cg.accepts(b"aaabbb") and not cg.accepts(b"aaabbbb") and not cg.accepts(b"aab")
    with pytest.raises(ConstraintTooComplex, match="lexings at once"):
        cg.advance_all((cg.initial,), b"a" * 40)
