"""A lexer DFA whose lexemes are added on demand (``LazyDFA.growing`` / ``add_lexemes``).

Reference: a LazyDFA built up front over the same lexemes. States and rows made before
an addition must keep meaning the same thing after the byte classes are refined, and a
grammar too big for one up-front lexer must still match what Lark's parser accepts.
"""
from __future__ import annotations

import itertools
import random
import threading

import lark
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from constrained.automata import LazyDFA, parse_regex
from constrained.automata.nfa import build_nfa
from constrained.errors import ConstraintTooComplex

_LEXEMES = [r"ab+", r"a[0-9]{1,3}", r"[xy]z", r"b|bb", r"[a-z]{2}", r"z+", r"0x[0-9a-f]+",
            r"\(", r"a", r"é+", r"[^a-z]{2}"]
_PROBES = ["", "a", "ab", "abb", "a1", "a123", "xz", "yz", "b", "bb", "zz", "qq", "0x1f", "(",
           "é", "éé", "12", "a9z", "zzz", "0xg", "((", "bbb"]


@settings(max_examples=60, deadline=None)
@given(order=st.permutations(range(len(_LEXEMES))), cuts=st.lists(st.integers(1, 4), min_size=3,
                                                                   max_size=6),
       seed=st.integers(0, 10**6))
def test_growing_dfa_equals_up_front_dfa(order: list[int], cuts: list[int], seed: int) -> None:
    nodes = [parse_regex(p) for p in _LEXEMES]
    full = LazyDFA(nodes)
    grow = LazyDFA.growing(len(nodes))
    rng = random.Random(seed)
    added: list[int] = []
    made: list[tuple[frozenset[int], str, int]] = []  # (mode, prefix, state) seen so far
    pos = 0
    for cut in cuts + [len(order)]:
        batch = order[pos:pos + cut]
        pos += cut
        if not batch:
            continue
        grow.add_lexemes({i: build_nfa([nodes[i]]) for i in batch})
        added += batch
        # states made before this batch still mean the same (byte-level rows remapped)
        for mode, prefix, q in made:
            ref = full.walk(full.start_for(mode), prefix.encode())
            assert (q > 0) == (ref > 0)
            if q > 0:
                assert grow.accepting_lexemes(q) == full.accepting_lexemes(ref)
                alive = grow.byte_transitions(q) > 0
                assert (alive == (full.byte_transitions(ref) > 0)).all()
        for _ in range(4):
            mode = frozenset(rng.sample(added, rng.randint(1, len(added))))
            for probe in _PROBES:
                data = probe.encode()
                q = grow.walk(grow.start_for(mode), data)
                ref = full.walk(full.start_for(mode), data)
                assert (q > 0) == (ref > 0), (sorted(mode), probe)
                if q > 0:
                    assert grow.accepting_lexemes(q) == full.accepting_lexemes(ref)
                    made.append((mode, probe, q))


def test_start_for_unknown_lexeme_raises() -> None:
    grow = LazyDFA.growing(3)
    grow.add_lexemes({0: build_nfa([parse_regex("a")])})
    with pytest.raises(ValueError, match="not added"):
        grow.start_for(frozenset({0, 2}))
    with pytest.raises(TypeError, match="growing"):
        LazyDFA([parse_regex("a")]).add_lexemes({})


def test_growing_nfa_cap_raises_and_changes_nothing() -> None:
    grow = LazyDFA.growing(2, max_nfa_states=40)
    grow.add_lexemes({0: build_nfa([parse_regex("abc")])})
    before = grow.nfa.n_states
    with pytest.raises(ConstraintTooComplex):
        grow.add_lexemes({1: build_nfa([parse_regex("[a-z]{60}")])})
    assert grow.nfa.n_states == before and grow.matches(b"") is False
    assert grow.walk(grow.start_for(frozenset({0})), b"abc") > 0


def test_concurrent_readers_during_additions() -> None:
    """Readers stepping old states while lexemes (splitting classes) are added never see
    a transition of the wrong class."""
    nodes = [parse_regex(p) for p in ["[a-z]+", "q", "w", "e", "r", "t", "y", "u", "i", "o"]]
    grow = LazyDFA.growing(len(nodes))
    grow.add_lexemes({0: build_nfa([nodes[0]])})
    q = grow.start_for(frozenset({0}))
    errors: list[str] = []

    def reader() -> None:
        for _ in range(3000):
            for b in b"qwertyuio":
                if grow.step(q, b) <= 0:
                    errors.append(chr(b))

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for i in range(1, len(nodes)):
        grow.add_lexemes({i: build_nfa([nodes[i]])})
    for t in threads:
        t.join()
    assert not errors


def test_big_grammar_uses_one_growing_lexer(load_vocab) -> None:
    """300 keyword terminals (over the up-front limit of 256): one growing lexer, token
    masks exact against teacher forcing, string level against Lark."""
    from constrained import compile_lark

    words = sorted({"".join(p) for p in itertools.product("abcdefg", repeat=3)})[:300]
    grammar = ("start: item (\",\" item)*\nitem: " + " | ".join(f'"{w}"' for w in words)
               + ' | NUMBER\n%import common.NUMBER\n')
    vocab = load_vocab("gpt-2")
    constraint = compile_lark(grammar, vocab)
    cg = constraint.compiled
    assert len(cg.nodes) > 256 and cg._growing and cg.lexer is not None
    reference = lark.Lark(grammar, parser="earley")
    rng = random.Random(7)
    for _ in range(40):
        items = [rng.choice(words + ["12", "3.5"]) for _ in range(rng.randint(1, 4))]
        text = ",".join(items)
        if rng.random() < 0.3:
            text = text[: rng.randint(0, len(text))] + rng.choice(["x", ",", "a"])
        try:
            reference.parse(text)
            expected = True
        except lark.exceptions.LarkError:
            expected = False
        assert cg.accepts(text.encode()) == expected, text
    # token level: a valid sentence teacher-forced with longest tokens is allowed throughout
    text = ",".join(words[5:15]).encode()
    m = constraint.matcher()
    i = 0
    while i < len(text):
        allowed = m.mask()
        best = max((t for t in range(len(vocab.tokens)) if allowed[t] and vocab.tokens[t]
                    and text.startswith(vocab.tokens[t], i)), key=lambda t: len(vocab.tokens[t]))
        m.advance(best)
        i += len(vocab.tokens[best])
    assert m.is_accepting() and m.mask()[vocab.eos_token_ids[0]]
    # every allowed token keeps some sentence reachable: stepping it never dead-ends
    m = constraint.matcher()
    m.advance(next(t for t in range(len(vocab.tokens)) if vocab.tokens[t] == b"abc"))
    allowed = [t for t in vocab.text_token_ids.tolist() if m.mask()[t]]
    assert allowed
    for t in allowed[:300]:
        assert cg.advance_all(m.state, vocab.tokens[t]) is not None


PATTERNS_FOR_CLASSES = [r"[a-z]+", r"\d{2}", r'"[^"\\]*"', r"if|else", r"[A-F0-9]", r"\s",
                        r"é|ü", r"[\x00-\x1f]", r"x", r"true", r"[+*/-]"]


@settings(max_examples=40, deadline=None)
@given(groups=st.lists(st.lists(st.sampled_from(PATTERNS_FOR_CLASSES), min_size=1, max_size=4),
                       min_size=1, max_size=6))
def test_incremental_byte_classes_equal_recomputed(groups: list[list[str]]) -> None:
    """A growing NFA refines its byte classes as labels arrive; after every addition
    they equal the classes computed from scratch over all its labels (same numbering)."""
    import numpy as np

    from constrained.automata.nfa import GrowingNFA, _byte_classes

    flat = [p for g in groups for p in g]
    store = GrowingNFA(len(flat), 1_000_000)
    i = 0
    for g in groups:
        store.add({i + k: build_nfa([parse_regex(p)]) for k, p in enumerate(g)})
        i += len(g)
        nfa = store.snapshot()
        class_of, class_bytes, label_cls = _byte_classes(nfa.labels)
        assert np.array_equal(nfa.class_of, class_of)
        assert [b.tolist() for b in nfa.class_bytes] == [b.tolist() for b in class_bytes]
        assert np.array_equal(nfa.label_classes, label_cls)
