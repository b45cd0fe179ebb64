"""Intersection and complement nodes (``And``/``Not``, used for JSON Schema allOf of
patterns), checked against Python ``re`` by exhaustive enumeration of short strings."""
from __future__ import annotations

import itertools
import re

import pytest

from constrained.automata import And, ByteSet, Concat, LazyDFA, Limits, Not, parse_regex
from constrained.errors import ConstraintTooComplex

ALPHABET = "abfo1é"


def _strings(max_len: int = 4) -> list[str]:
    return ["".join(p) for n in range(max_len + 1) for p in itertools.product(ALPHABET, repeat=n)]


@pytest.mark.parametrize("pos,neg", [
    (r"[a-z]+", r".*foo.*"),
    (r"\w*", r"[ab]*"),
    (r"(?s).*", r"a.*"),
])
def test_and_not_equals_python(pos: str, neg: str) -> None:
    dfa = LazyDFA([And((parse_regex(pos), Not(parse_regex(neg))))])
    for s in _strings():
        expected = bool(re.fullmatch(pos, s)) and not re.fullmatch(neg, s)
        assert dfa.matches(s.encode()) == expected, s


def test_intersection_of_patterns() -> None:
    a, b = r"[a-f]*1?", r"(?:..)*"  # even length over the alphabet
    dfa = LazyDFA([And((parse_regex(a), parse_regex(b)))])
    for s in _strings():
        assert dfa.matches(s.encode()) == bool(re.fullmatch(a, s) and re.fullmatch(b, s)), s


def test_boolean_inside_concatenation_and_lexemes_keep_identity() -> None:
    word = And((parse_regex("[a-z]+"), Not(parse_regex("if|else"))))
    ident = Concat((word, ByteSet.of(ord("!"))))
    dfa = LazyDFA([parse_regex("if!"), ident])
    assert dfa.accepting_lexemes(dfa.walk(dfa.start, b"if!")) == (0,)
    assert dfa.accepting_lexemes(dfa.walk(dfa.start, b"iff!")) == (1,)
    assert not dfa.matches(b"else!")
    assert dfa.matches(b"elsa!")


def test_complement_covers_all_bytes_and_is_live() -> None:
    dfa = LazyDFA([Not(parse_regex("a"))])
    assert dfa.matches(b"") and dfa.matches(b"\xff") and dfa.matches(b"aa")
    assert not dfa.matches(b"a")
    nothing = LazyDFA([And((parse_regex("a"), parse_regex("b")))])
    assert nothing.start == 0


def test_product_limit() -> None:
    with pytest.raises(ConstraintTooComplex):
        LazyDFA([Not(parse_regex(r"[ab]*a[ab]{12}"))], Limits(max_states=200))
