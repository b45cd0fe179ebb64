"""Finite languages as trie DFAs (constrained/automata/literals.py) against references.

References: the set of strings itself (membership and prefixes), Python ``re.fullmatch``
over every string of a small alphabet, the lazy subset-construction DFA, and, at token
level on a real vocabulary, "some string of the language starts with prefix + token".
"""
from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from constrained import compile_choice, compile_regex
from constrained.automata import Limits, parse_regex
from constrained.automata.dfa import LazyDFA
from constrained.automata.literals import TrieDFA, finite_strings, literal_dfa
from constrained.errors import ConstraintTooComplex

_STRINGS = st.lists(st.binary(min_size=0, max_size=6).map(lambda b: bytes(97 + x % 4 for x in b)),
                    min_size=1, max_size=25)


@settings(max_examples=150, deadline=None)
@given(strings=_STRINGS, probes=st.lists(st.binary(max_size=7).map(
    lambda b: bytes(97 + x % 5 for x in b)), max_size=40))
def test_trie_dfa_accepts_exactly_its_strings(strings: list[bytes], probes: list[bytes]) -> None:
    dfa = TrieDFA(strings)
    language = set(strings)
    prefixes = {s[:i] for s in language for i in range(len(s) + 1)}
    for probe in list(language) + sorted(prefixes) + probes:
        end = dfa.walk(dfa.start, probe)
        assert dfa.matches(probe) == (probe in language)
        assert (end > 0) == (probe in prefixes)  # every live state leads to acceptance
    # a complete table: no row is ever unknown
    table, _, _, _ = dfa.kernel_view()
    assert (table[: dfa.n_states] >= 0).all()


_FINITE = [r"red|green|blue", r"(?:ab|a)(c|cd)?", r"[ab]{1,3}", r"colou?r", r"(?i)yes|no",
           r"a{0,2}(b|cd)", r"", r"(x|y)(1|2)", r"(?:a|ab|abc)\.", r"é|e|ë"]


@pytest.mark.parametrize("pattern", _FINITE)
def test_finite_strings_equal_python_re(pattern: str) -> None:
    """Every string over the pattern's characters (and the case variants ``(?i)`` admits,
    long s included) up to the longest length, filtered by ``re.fullmatch``, is exactly
    the enumerated language."""
    strings = finite_strings(parse_regex(pattern))
    assert strings is not None
    alphabet = sorted(set(re.sub(r"[^\w.é ë]", "", pattern)) | {"Y", "E", "S", "N", "O", "\u017f"})
    longest = max(len(s.decode()) for s in strings)
    expected = {"".join(p).encode() for n in range(longest + 1)
                for p in itertools.product(alphabet, repeat=n) if re.fullmatch(pattern, "".join(p))}
    assert set(strings) == expected
    assert strings == sorted(set(strings))


@pytest.mark.parametrize("pattern", [r"a*", r"[0-9]{10}", r"(a|b){20}", r"x+y", r"[^a]"])
def test_infinite_or_large_languages_are_refused(pattern: str) -> None:
    assert finite_strings(parse_regex(pattern)) is None
    assert literal_dfa(parse_regex(pattern)) is None


def test_trie_dfa_agrees_with_lazy_dfa() -> None:
    node = parse_regex(r"(?:alpha|alps|beta|b|bet)(?:-x|-y)?")
    trie, lazy = literal_dfa(node), LazyDFA([node])
    assert isinstance(trie, TrieDFA)
    for n in range(7):
        for probe in itertools.product(b"alpsbetxy-h", repeat=min(n, 3)):
            data = bytes(probe)
            assert trie.matches(data) == lazy.matches(data)
    assert trie.forced_bytes(trie.walk(trie.start, b"al")) == b"p"
    assert lazy.forced_bytes(lazy.walk(lazy.start, b"al")) == b"p"


def test_trie_limits_raise() -> None:
    with pytest.raises(ConstraintTooComplex, match="max_states"):
        TrieDFA([b"abcdefgh", b"abxyz"], Limits(max_states=5))
    # a trie over the limits is not an error for a constraint: the lazy DFA takes over
    assert literal_dfa(parse_regex("abcdefgh|abxyz"), Limits(max_states=5)) is None


def test_regex_constraint_uses_trie_for_word_alternations(load_vocab) -> None:
    vocab = load_vocab("gpt-2")
    words = ["apple", "apricot", "banana", "band", "bandana", "cherry", "ch", "dates"]
    constraint = compile_regex("(" + "|".join(words) + ")", vocab)
    assert isinstance(constraint.dfa, TrieDFA)
    assert isinstance(compile_choice(words, vocab).dfa, TrieDFA)
    assert isinstance(compile_regex("[a-z]+", vocab).dfa, LazyDFA)
    language = [w.encode() for w in words]
    text_ids = vocab.text_token_ids.tolist()
    assert constraint.matcher().mask().shape == (vocab.logit_width,)
    # every prefix state: allowed tokens are exactly those that some word continues with
    for prefix in sorted({w[:i] for w in language for i in range(len(w))}):
        state = constraint.dfa.walk(constraint.dfa.start, prefix)
        entry = constraint.state_masks(state)
        allowed = {t for t in text_ids
                   if (int(entry.words[t >> 5]) >> (t & 31)) & 1}
        expected = {t for t in text_ids
                    if any(w.startswith(prefix + vocab.tokens[t]) for w in language)}
        assert allowed == expected, prefix
        for t in sorted(expected)[:50]:
            assert entry.end_state(t) == constraint.dfa.walk(state, vocab.tokens[t])
