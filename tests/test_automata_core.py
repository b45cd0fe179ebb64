"""Core LazyDFA behaviour: agreement with Python ``re`` on hand-picked patterns, the
state/lexeme API, vectorised stepping, forced bytes and thread-safe growth."""
from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from constrained.automata import DEAD, LazyDFA, parse_regex
from tests.testdata import run_threads

CASES: list[tuple[str, list[str]]] = [
    (r"\d{3}-\d{4}", ["123-4567", "12-4567", "١٢٣-٤٥٦٧", "123-45678", ""]),
    (r"\w+@\w+\.com", ["ab@cd.com", "é@ü.com", "a@b.co", "_@_.com", "a b@c.com"]),
    (r"(?i)straße|k", ["STRASSE", "straße", "STRAßE", "K", "\u212a", "k", "x"]),
    (r"^a(b|c)*d?$", ["a", "abcbd", "ad", "abd", "ac", "", "da"]),
    (r"[A-Za-z][a-z ]{2,5}\.", ["Hel.", "Ha.", "Hello w.", "Hello.", "hi  .", "H   ."]),
    (r"(?s).|\n\n", ["\n", "\n\n", "é", "ab", ""]),
    (r".", ["\n", "a", "😀", ""]),
    (r"[^a-c]+", ["def", "dad", "😀x", "\n"]),
    (r"(?x) a b # comment\n c", ["abc", "a b c"]),
    (r"(?i:ab)c", ["ABc", "ABC", "abc"]),
    (r"colou?r|gr[ae]y", ["color", "colour", "grey", "gray", "grxy"]),
    (r"(ab){2,3}?", ["ab", "abab", "ababab", "abababab"]),
    (r"x*?y+?z??", ["y", "xxyz", "xz", "xyyz"]),
    (r"[\u00e0-\u00ff\U0001F600-\U0001F64F]*", ["àÿ😀🙏", "ß", "ā"]),
    (r"(?a)\w+\s\d", ["ab 1", "é 1", "ab\u00a01", "ab \u0661"]),
    (r"\W\S\D", ["!a!", " aa", "é!!"]),
    (r"a{0}b", ["b", "ab"]),
    (r"", ["", "a"]),
    (r"[^\x00-\U0010ffff]|a", ["a", "b", ""]),
]


@pytest.mark.parametrize("pattern,strings", CASES)
def test_matches_python_re(pattern: str, strings: list[str]) -> None:
    dfa = LazyDFA([parse_regex(pattern)])
    for s in strings:
        assert dfa.matches(s.encode()) == bool(re.fullmatch(pattern, s)), (pattern, s)


def test_dead_state_and_start() -> None:
    dfa = LazyDFA([parse_regex("ab")])
    assert dfa.start != DEAD
    assert dfa.step(DEAD, ord("a")) == DEAD
    assert dfa.step(dfa.start, ord("x")) == DEAD
    assert not dfa.is_accepting(DEAD)
    empty = LazyDFA([parse_regex("[^\\x00-\\U0010ffff]")])
    assert empty.start == DEAD


def test_invalid_utf8_and_surrogates_rejected() -> None:
    dfa = LazyDFA([parse_regex(r"(?s).*")])
    assert dfa.matches("héllo😀".encode())
    assert not dfa.matches(b"\xff")
    assert not dfa.matches(b"\xc3")  # truncated
    assert not dfa.matches(b"\xed\xa0\x80")  # encoded surrogate D800
    assert not dfa.matches(b"\xc0\x80")  # overlong


def test_step_many_matches_step() -> None:
    dfa = LazyDFA([parse_regex(r"[a-z]+\d*|é+")])
    rng = np.random.default_rng(0)
    states = np.array([dfa.start] * 50, dtype=np.int32)
    for _ in range(6):
        data = rng.choice(np.frombuffer(b"ab9\xc3\xa9 ", np.uint8), size=len(states))
        expected = np.array([dfa.step(int(s), int(b)) for s, b in zip(states, data)])
        got = dfa.step_many(states, data)
        assert got.dtype == np.int32
        assert np.array_equal(got, expected)
        states = got
    assert np.array_equal(dfa.is_accepting_many(states), dfa.accepting[states])


def test_step_many_edge_inputs() -> None:
    dfa = LazyDFA([parse_regex("ab")])
    empty = dfa.step_many(np.array([], dtype=np.int32), np.array([], dtype=np.uint8))
    assert empty.shape == (0,) and empty.dtype == np.int32
    got = dfa.step_many([dfa.start, dfa.start, DEAD], b"abx")
    assert got.tolist() == [dfa.step(dfa.start, ord("a")), DEAD, DEAD]


def test_lexeme_identity() -> None:
    dfa = LazyDFA([parse_regex("if"), parse_regex("[a-z]+"), parse_regex(r"\d+")])
    s = dfa.walk(dfa.start, b"if")
    assert dfa.accepting_lexemes(s) == (0, 1)
    assert dfa.live_lexemes(s) == (0, 1)
    s2 = dfa.step(s, ord("x"))
    assert dfa.accepting_lexemes(s2) == (1,)
    assert dfa.live_lexemes(s2) == (1,)
    s3 = dfa.walk(dfa.start, b"i")
    assert dfa.accepting_lexemes(s3) == (1,) and dfa.live_lexemes(s3) == (0, 1)
    assert dfa.live_lexemes(dfa.start) == (0, 1, 2)


def test_forced_bytes() -> None:
    dfa = LazyDFA([parse_regex(r"abc(de|dx)f")])
    assert dfa.forced_bytes(dfa.start) == b"abcd"
    s = dfa.walk(dfa.start, b"abcde")
    assert dfa.forced_bytes(s) == b"f"
    assert dfa.forced_bytes(dfa.walk(s, b"f")) == b""  # accepting: may stop
    assert LazyDFA([parse_regex("é")]).forced_bytes(1) == "é".encode()
    opt = LazyDFA([parse_regex("ab?")])
    assert opt.forced_bytes(opt.start) == b"a"


def test_every_reachable_state_is_live() -> None:
    dfa = LazyDFA([parse_regex(r"(a[^\x00-\U0010ffff]|b)c+|\d{2}")])
    dfa.explore()
    for s in range(1, dfa.n_states):
        row = dfa.transitions(s)
        assert dfa.is_accepting(s) or (row != DEAD).any(), s


def test_concurrent_growth() -> None:
    dfa = LazyDFA([parse_regex(r"[a-z]{1,6}(\d|x){1,4}")])
    words = [f"{chr(97 + i % 26)}{chr(97 + (i * 7) % 26)}x{i % 10}" for i in range(200)]
    errors: list[str] = []

    def run() -> None:
        for w in words:
            if dfa.matches(w.encode()) != bool(re.fullmatch(r"[a-z]{1,6}(\d|x){1,4}", w)):
                errors.append(w)

    run_threads(run)
    assert not errors


def test_union_of_lexeme_nfas_equals_nfa_of_union() -> None:
    """A union assembled from per-lexeme NFAs accepts the same strings, lexeme by lexeme,
    as the NFA built from all the ASTs at once (random strings, Python ``re`` as oracle)."""
    import random
    import re

    from constrained.automata import parse_regex
    from constrained.automata.dfa import LazyDFA
    from constrained.automata.nfa import build_nfa, union_nfa

    patterns = [r"[a-c]+", r"ab?c", r"\d{2,3}", r"(ab|ba)*", r"[^a]x", r"é+"]
    nodes = [parse_regex(p) for p in patterns]
    whole = LazyDFA(nodes)
    parts = LazyDFA(nodes, nfa=union_nfa([build_nfa([n]) for n in nodes]))
    rng = random.Random(7)
    alphabet = "abcx12é"
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))
        data = text.encode()
        expected = tuple(i for i, p in enumerate(patterns) if re.fullmatch(p, text))
        for dfa in (whole, parts):
            q = dfa.walk(dfa.start, data)
            assert (dfa.accepting_lexemes(q) if q > 0 else ()) == expected, text


@settings(max_examples=120, deadline=None)
@given(lo=st.integers(0, 6), extra=st.integers(0, 6), before=st.sampled_from(["", "x", "a?"]),
       after=st.sampled_from(["", "y", "[ab]{0,2}z"]),
       probes=st.lists(st.text(alphabet="abxyz", max_size=16), max_size=30))
def test_bounded_byte_set_repeats_match_python_re(lo: int, extra: int, before: str, after: str,
                                                  probes: list[str]) -> None:
    """``[set]{lo,hi}`` is laid out in bulk by the NFA builder (``repeat_bytes``); the
    language must be Python's, whatever surrounds it."""
    pattern = f"{before}[ab]{{{lo},{lo + extra}}}{after}"
    dfa = LazyDFA([parse_regex(pattern)])
    samples = probes + ["a" * n for n in range(lo + extra + 2)] + \
        [before.rstrip("?") + "ab" * n + after[-1:] for n in range(5)]
    for text in samples:
        assert dfa.matches(text.encode()) == bool(re.fullmatch(pattern, text)), (pattern, text)


@settings(max_examples=100, deadline=None)
@given(data=st.data(), n=st.integers(1, 40))
def test_trim_kernel_matches_reverse_search(data: st.DataObject, n: int) -> None:
    """``automata.trim.live_states`` against a plain Python search over random NFAs."""
    from constrained.automata.trim import live_states

    kind = np.array(data.draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)), dtype=np.int8)
    nonempty = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n))) & (kind == 0)
    succ = np.array(data.draw(st.lists(st.integers(0, n - 1), min_size=n, max_size=n)), dtype=np.int32)
    eps = [data.draw(st.lists(st.integers(0, n - 1), max_size=3)) if kind[s] == 1 else []
           for s in range(n)]
    eps_ptr = np.cumsum([0] + [len(e) for e in eps]).astype(np.int64)
    eps_dst = np.array([t for e in eps for t in e], dtype=np.int32)

    def reaches_accept(s: int, seen: set[int]) -> bool:
        if kind[s] == 2:
            return True
        seen.add(s)
        nxt = ([int(succ[s])] if kind[s] == 0 and nonempty[s] else []) + eps[s]
        return any(t not in seen and reaches_accept(t, seen) for t in nxt)

    expected = [reaches_accept(s, set()) for s in range(n)]
    assert live_states(kind, nonempty, succ, eps_ptr, eps_dst).tolist() == expected


@settings(max_examples=30, deadline=None)
@given(words=st.lists(st.text("abc\"", min_size=1, max_size=5), min_size=17, max_size=80,
                      unique=True),
       probes=st.lists(st.text("abcd\"", max_size=7), max_size=40))
def test_many_lexeme_rows_match_python_re(words: list[str], probes: list[str]) -> None:
    """Rows of states holding many NFA states (a lexer mode over dozens of JSON keys, plus
    a string lexeme) and of single-state ones come from the compiled row kernel, which
    interns the target sets too: each lexeme accepts exactly what Python ``re`` matches."""
    pats = [re.escape(w) for w in words] + [r'"[^"]*"']
    dfa = LazyDFA([parse_regex(p) for p in pats])
    for s in list(words) + probes + [w + "a" for w in words[:5]]:
        q = dfa.walk(dfa.start, s.encode())
        got = dfa.accepting_lexemes(q) if q > 0 else ()
        want = tuple(i for i, p in enumerate(pats) if re.fullmatch(p, s))
        assert got == want, (s, got, want)


_REGEXES = st.sampled_from([r"a", r"ab", r"a|b", r"[ab]", r"a*", r"(ab)+", r"a{2,3}", r"",
                            r"[^a]", r"(a|b)c", r"a(b|c)", r"\d+", r"[0-9]+", r"x?"])


@settings(max_examples=200, deadline=None)
@given(st.lists(_REGEXES, min_size=1, max_size=8))
def test_structural_ids_equal_iff_nodes_equal(patterns: list[str]) -> None:
    """structural_ids (memoised by identity, for the grammar's shared DFA lexemes) agrees
    with the nodes' own structural equality on separately parsed (distinct) objects."""
    from constrained.automata.ast import structural_ids

    nodes = [parse_regex(p) for p in patterns]
    ids = structural_ids(nodes)
    for i, a in enumerate(nodes):
        for j, b in enumerate(nodes):
            assert (ids[i] == ids[j]) == (a == b), (patterns[i], patterns[j])


def _nfa_arrays(nfa: object) -> list[object]:
    return [np.asarray(getattr(nfa, f)).tolist()
            for f in ("kind", "label", "succ", "eps_ptr", "eps_dst", "lexeme", "live")] + [
        list(nfa.starts), list(nfa.labels)]  # type: ignore[attr-defined]


@settings(max_examples=60, deadline=None)
@given(item=st.sampled_from([r'(?:[^"\\\x00-\x1f]|\\["\\/bfnrt])', r"(ab|c)", r"(a[bc]d)",
                             r"((ab)?c)", r"(\u00e9|[a-z])", r"(x(y|z)*)", r"(a|b|)",
                             r"([a-z]{2,3}|\d)"]),
       lo=st.integers(0, 40), extra=st.integers(0, 60), tail=st.sampled_from(["", "x", "(a|b)"]))
def test_bulk_copies_lay_out_the_nfa_exactly_as_one_by_one(item: str, lo: int, extra: int,
                                                          tail: str) -> None:
    """A counted repetition's copies laid out in bulk (``_Builder.copies``) give the very
    NFA the one-by-one loop builds: same states, numbers, edges and trimming."""
    from constrained.automata import nfa as nfa_module

    node = parse_regex(f"{item}{{{lo},{lo + extra}}}{tail}")
    saved = nfa_module._BULK_COPIES, nfa_module._BULK_MIN
    try:
        nfa_module._BULK_COPIES, nfa_module._BULK_MIN = False, 24
        reference = nfa_module.build_nfa([node])
        nfa_module._BULK_COPIES, nfa_module._BULK_MIN = True, 2  # bulk wherever possible
        bulk = nfa_module.build_nfa([node])
    finally:
        nfa_module._BULK_COPIES, nfa_module._BULK_MIN = saved
    assert _nfa_arrays(bulk) == _nfa_arrays(reference)
