"""Property tests: random regexes from a small construct grammar (literals incl. non-ASCII
and case-folding specials, classes, negated classes, ``.``, groups, alternation,
quantifiers incl. lazy ones, inline/scoped flags) against Python's own ``re.fullmatch``.

1. For random strings, DFA acceptance == ``re.fullmatch``.
2. Random walks over live DFA states never reach a dead end, and every string they
   stop on (at an accepting state) is valid UTF-8 and a ``re.fullmatch``.
"""
from __future__ import annotations

import random
import re

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from constrained.automata import DEAD, LazyDFA, parse_regex

# characters chosen for Unicode case-folding corners (Kelvin sign, long s, sharp s,
# dotted/dotless i, final sigma), multi-byte UTF-8 of every length, and regex specials.
CHARS = "abkAKs\u212a\u017f\u00df\u1e9e\u0130\u0131i\u03c3\u03a3\u03c2\u00e9\u00c9\u0661" \
        "\U0001F600\n -.*[]\\|()"
CLASS_ITEMS = ["a", "b-e", "\u00e0-\u00ff", "\\d", "\\w", "\\s", "\\W", "k", "S", "\u03c3",
               "\u0400-\u04ff", "\U0001F600-\U0001F64F", "\\-", "\u212a", "0-9"]
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _atom() -> st.SearchStrategy[str]:
    literal = st.sampled_from(CHARS).map(re.escape)
    klass = st.builds(
        lambda neg, items: "[" + ("^" if neg else "") + "".join(items) + "]",
        st.booleans(), st.lists(st.sampled_from(CLASS_ITEMS), min_size=1, max_size=3))
    escapes = st.sampled_from([".", "\\d", "\\w", "\\s", "\\D", "\\W", "\\S"])
    return st.one_of(literal, literal, klass, escapes)


def _quantified(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    quant = st.sampled_from(["*", "+", "?", "{2}", "{0,2}", "{1,3}", "{2,}", "*?", "+?", "??",
                             "{1,2}?"])
    return st.builds(lambda body, q: f"(?:{body}){q}", inner, quant)


def _regex() -> st.SearchStrategy[str]:
    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.lists(inner, min_size=2, max_size=4).map("".join),
            st.lists(inner, min_size=2, max_size=3).map(lambda xs: "(?:" + "|".join(xs) + ")"),
            inner.map(lambda x: f"({x})"),
            inner.map(lambda x: f"(?i:{x})"),
            _quantified(inner),
        )

    body = st.recursive(_atom(), extend, max_leaves=8)
    flags = st.sampled_from(["", "", "(?i)", "(?s)", "(?a)", "(?ai)", "(?is)"])
    return st.builds(lambda f, b: f + b, flags, body)


def _compile(pattern: str) -> LazyDFA:
    return LazyDFA([parse_regex(pattern)])


@SETTINGS
@given(pattern=_regex(), strings=st.lists(st.text(alphabet=CHARS, max_size=6), max_size=25))
def test_dfa_agrees_with_re_on_random_strings(pattern: str, strings: list[str]) -> None:
    dfa = _compile(pattern)
    rx = re.compile(pattern)
    for s in strings:
        assert dfa.matches(s.encode()) == bool(rx.fullmatch(s)), (pattern, s)


def _walk(dfa: LazyDFA, rng: random.Random, max_len: int = 40) -> bytes | None:
    """Random walk over live states; returns the bytes when it stops accepting."""
    state, out = dfa.start, bytearray()
    if state == DEAD:
        return None
    for step in range(max_len + 200):
        row = dfa.byte_transitions(state)
        live = np.flatnonzero(row != DEAD)
        accepting = dfa.is_accepting(state)
        assert accepting or len(live), f"dead end after {bytes(out)!r}"
        if accepting and (not len(live) or rng.random() < 0.25 or step >= max_len):
            return bytes(out)
        b = int(live[rng.randrange(len(live))])
        out.append(b)
        state = int(row[b])
    return None


@SETTINGS
@given(pattern=_regex(), seed=st.integers(0, 2**32 - 1))
def test_random_walks_are_fullmatches(pattern: str, seed: int) -> None:
    dfa = _compile(pattern)
    rx = re.compile(pattern)
    rng = random.Random(seed)
    for _ in range(10):
        data = _walk(dfa, rng)
        if data is None:
            continue
        text = data.decode("utf-8")  # raises if the DFA let invalid UTF-8 through
        assert rx.fullmatch(text), (pattern, text)


@SETTINGS
@given(pattern=_regex(), seed=st.integers(0, 2**32 - 1))
def test_mutated_samples_agree_with_re(pattern: str, seed: int) -> None:
    """Near misses: walk samples with one character inserted, deleted or replaced."""
    dfa = _compile(pattern)
    rx = re.compile(pattern)
    rng = random.Random(seed)
    for _ in range(10):
        data = _walk(dfa, rng)
        if data is None:
            continue
        text = list(data.decode("utf-8"))
        pos = rng.randrange(len(text) + 1)
        op = rng.randrange(3)
        if op == 0:
            text.insert(pos, rng.choice(CHARS))
        elif text and pos < len(text):
            if op == 1:
                del text[pos]
            else:
                text[pos] = rng.choice(CHARS)
        s = "".join(text)
        assert dfa.matches(s.encode()) == bool(rx.fullmatch(s)), (pattern, s)


@SETTINGS
@given(patterns=st.lists(_regex(), min_size=2, max_size=3),
       strings=st.lists(st.text(alphabet=CHARS, max_size=5), max_size=15),
       seed=st.integers(0, 2**32 - 1))
def test_union_of_lexemes_keeps_identity(patterns: list[str], strings: list[str], seed: int) -> None:
    """``accepting_lexemes`` is exactly the set of patterns that fullmatch; a lexeme that
    accepts is live; walk samples are full matches of at least one lexeme."""
    dfa = LazyDFA([parse_regex(p) for p in patterns])
    rxs = [re.compile(p) for p in patterns]
    rng = random.Random(seed)
    samples = [s.encode() for s in strings]
    samples += [w for w in (_walk(dfa, rng) for _ in range(5)) if w is not None]
    for data in samples:
        state = dfa.walk(dfa.start, data)
        text = data.decode("utf-8")
        expected = tuple(i for i, rx in enumerate(rxs) if rx.fullmatch(text))
        assert dfa.accepting_lexemes(state) == expected, (patterns, text)
        assert set(expected) <= set(dfa.live_lexemes(state))
        # every prefix state keeps each lexeme that finally accepts alive
        prefix_state = dfa.start
        for b in data:
            assert set(expected) <= set(dfa.live_lexemes(prefix_state))
            prefix_state = dfa.step(prefix_state, b)


@SETTINGS
@given(pattern=_regex(), seed=st.integers(0, 2**32 - 1))
def test_forced_bytes_are_forced(pattern: str, seed: int) -> None:
    """Along random walks: following the forced bytes passes only through non-accepting
    states with exactly one live byte, and the forced run is maximal."""
    dfa = _compile(pattern)
    rng = random.Random(seed)
    data = _walk(dfa, rng)
    if data is None:
        return
    state = dfa.start
    for b in (None, *data):
        if b is not None:
            state = dfa.step(state, b)
        forced = dfa.forced_bytes(state)
        s = state
        for fb in forced:
            assert not dfa.is_accepting(s)
            live = np.flatnonzero(dfa.byte_transitions(s) != DEAD)
            assert live.tolist() == [fb]
            s = dfa.step(s, fb)
        live = np.flatnonzero(dfa.byte_transitions(s) != DEAD)
        assert dfa.is_accepting(s) or len(live) > 1 or s in _forced_cycle(dfa, state, forced)


def _forced_cycle(dfa: LazyDFA, state: int, forced: bytes) -> set[int]:
    """States visited while following ``forced`` (a forced loop stops the run early)."""
    seen = {state}
    for b in forced:
        state = dfa.step(state, b)
        seen.add(state)
    return seen


FLAG_VALUES = [0, re.IGNORECASE, re.DOTALL, re.ASCII, re.IGNORECASE | re.ASCII,
               re.VERBOSE, re.MULTILINE | re.IGNORECASE]


@SETTINGS
@given(pattern=_regex(), flags=st.sampled_from(FLAG_VALUES),
       strings=st.lists(st.text(alphabet=CHARS, max_size=6), max_size=20))
def test_flags_argument(pattern: str, flags: int, strings: list[str]) -> None:
    """Flags passed as an argument (not inline) mean what they mean to ``re``."""
    if flags & re.ASCII and "(?" in pattern and any(f in pattern for f in ("(?a", "(?ai")):
        flags &= ~re.ASCII
    try:
        rx = re.compile(pattern, flags)
    except re.error:
        return
    dfa = LazyDFA([parse_regex(pattern, flags)])
    for s in strings:
        assert dfa.matches(s.encode()) == bool(rx.fullmatch(s)), (pattern, flags, s)


def _possessive_regex() -> st.SearchStrategy[str]:
    """Like ``_regex`` but with possessive quantifiers and atomic groups mixed in."""
    quant = st.sampled_from(["*+", "++", "?+", "{1,2}+", "*", "+"])

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.lists(inner, min_size=2, max_size=3).map("".join),
            st.lists(inner, min_size=2, max_size=3).map(lambda xs: "(?:" + "|".join(xs) + ")"),
            st.builds(lambda body, q: f"(?:{body}){q}", inner, quant),
            inner.map(lambda x: f"(?>{x})"),
        )

    atom = st.sampled_from(["a", "b", "ab", "[ab]", "\\d", "é", "[^a]", "."])
    return st.recursive(atom, extend, max_leaves=6)


@SETTINGS
@given(pattern=_possessive_regex(), strings=st.lists(st.text(alphabet="abé1\n", max_size=6), max_size=25))
def test_possessive_and_atomic_refused_or_exact(pattern: str, strings: list[str]) -> None:
    """Possessive/atomic forms are accepted only when they provably do not change the
    language; whenever accepted, the DFA must agree with ``re`` exactly."""
    from constrained.errors import RegexUnsupported

    try:
        dfa = _compile(pattern)
    except RegexUnsupported:
        return
    rx = re.compile(pattern)
    for s in strings:
        assert dfa.matches(s.encode()) == bool(rx.fullmatch(s)), (pattern, s)
