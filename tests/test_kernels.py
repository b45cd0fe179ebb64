"""The compiled trie walks (constrained/masks/kernels.py) against independent references.

References: the token's own bytes stepped through the DFA one at a time in Python
(``LazyDFA.walk``), and the numpy level-by-level walk of ``masks.walk``. Checked on
random vocabularies and automata (hypothesis) and on a real 128k vocabulary.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from constrained.automata import parse_regex
from constrained.automata.dfa import LazyDFA
from constrained.masks import TokenTrie, bitmask_words
from constrained.masks.kernels import (
    MAX_COMPRESS_CLASSES,
    bucket_nodes,
    compress_preorder,
    distinct_sorted,
    end_state,
    nonzero_words,
    preorder_trie,
    walk_tokens,
)
from constrained.masks.walk import live_tokens, walk_sparse
from constrained.vocab import Vocabulary


def _allowed(words: np.ndarray, n: int) -> set[int]:
    bits = np.unpackbits(words.view(np.uint8), bitorder="little")[:n]
    return set(np.flatnonzero(bits).tolist())


def _check_state(vocab: Vocabulary, trie: TokenTrie, dfa: LazyDFA, state: int) -> None:
    """Both layouts (byte and class-compressed) agree with stepping each token's bytes."""
    n_words = bitmask_words(vocab.logit_width)
    layouts = [trie.preorder]
    if dfa.n_classes <= MAX_COMPRESS_CLASSES:
        layouts.append(compress_preorder(trie.preorder, dfa.class_of))
    expected = {}
    for tid in vocab.text_token_ids.tolist():
        end = dfa.walk(state, vocab.tokens[tid])
        if end > 0:
            expected[tid] = end
    for pre in layouts:
        words, nodes, states, _ = walk_tokens(pre, dfa, state, n_words)
        assert _allowed(words, vocab.logit_width) == set(expected)
        assert np.all(np.diff(nodes) > 0)  # ascending: end_state binary-searches them
        for tid, end in expected.items():
            assert end_state(pre, nodes, states, tid) == end
        for tid in range(vocab.logit_width):  # padding, special and dead tokens: 0
            if tid not in expected:
                assert end_state(pre, nodes, states, tid) == 0


_ALPHABET = b"ab(.-1 "
_PATTERNS = [r"a+", r"(ab|a)*b?", r"[ab]{2,4}-", r"\(1+\) ?[ab.]*", r"(a|b|1)(ab)*\.?",
             r"-?1(\.1+)?", r"[^a]*a", r".{0,3}"]


@settings(max_examples=60, deadline=None)
@given(tokens=st.lists(st.binary(min_size=1, max_size=6).map(
    lambda b: bytes(_ALPHABET[x % len(_ALPHABET)] for x in b)), min_size=1, max_size=60),
    pattern=st.sampled_from(_PATTERNS))
def test_walk_matches_bytewise_stepping(tokens: list[bytes], pattern: str) -> None:
    vocab = Vocabulary.from_tokens(tokens + [b"<eos>"], eos_token_ids=[len(tokens)],
                                   special_token_ids=[len(tokens)], logit_width=len(tokens) + 7)
    trie = TokenTrie.build(vocab)
    dfa = LazyDFA([parse_regex(pattern)])  # fresh: rows are expanded during the walks
    for state in range(1, 12):
        if state >= dfa.n_states:
            break
        _check_state(vocab, trie, dfa, state)


def test_preorder_layout_spells_every_token(load_vocab) -> None:
    """Rebuilding each node's bytes from (byte, depth) in preorder gives the token texts."""
    vocab = load_vocab("llama-bpe")
    pre = preorder_trie(TokenTrie.for_vocab(vocab))
    path: list[int] = []
    spelled: dict[int, bytes] = {}
    byte, depth, ptr, ids = pre.byte.tolist(), pre.depth.tolist(), pre.tok_ptr, pre.tok_ids
    for i in range(1, pre.n_nodes):
        del path[depth[i] - 1:]
        path.append(byte[i])
        for tid in ids[ptr[i]:ptr[i + 1]].tolist():
            spelled[tid] = bytes(path)
    assert spelled == {t: vocab.tokens[t] for t in vocab.text_token_ids.tolist()}
    for t in vocab.text_token_ids.tolist()[::997]:
        node = int(pre.node_of_token[t])
        assert t in ids[ptr[node]:ptr[node + 1]].tolist()
    skip = pre.skip
    assert np.all(skip > np.arange(pre.n_nodes)) and int(skip[0]) == pre.n_nodes


@pytest.mark.parametrize("pattern", [r"\([0-9]{3}\) [0-9]{3}-[0-9]{4}", r"[A-Za-z][a-z ]{10,200}\.",
                                     r"[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}", r"\s*\{\s*\"k"])
def test_real_vocab_agrees_with_numpy_walk(load_vocab, pattern: str) -> None:
    """On Llama-3's 128k vocabulary: same tokens and end states as the numpy reference walk."""
    vocab = load_vocab("llama-bpe")
    trie = TokenTrie.for_vocab(vocab)
    dfa = LazyDFA([parse_regex(pattern)])
    n_words = bitmask_words(vocab.logit_width)
    compressed = compress_preorder(trie.preorder, dfa.class_of)
    assert compressed.n_nodes < trie.n_nodes
    for state in range(1, min(dfa.n_states, 40)):
        result = walk_sparse(trie, dfa, state)
        assert result is not None
        ids, ends = live_tokens(trie, *result)
        reference = dict(zip(ids.tolist(), ends.tolist()))
        for pre in (trie.preorder, compressed):
            words, nodes, states, _ = walk_tokens(pre, dfa, state, n_words)
            assert _allowed(words, vocab.logit_width) == set(reference)
            sample = list(reference)[:: max(1, len(reference) // 50)]
            assert all(end_state(pre, nodes, states, t) == reference[t] for t in sample)
    # the start state allows some token, and only tokens that keep the DFA alive
    words, _, _, _ = walk_tokens(trie.preorder, dfa, dfa.start, n_words)
    allowed = _allowed(words, vocab.logit_width)
    assert allowed
    for t in sorted(allowed)[:200]:
        assert dfa.walk(dfa.start, vocab.tokens[t]) > 0


def test_compress_refuses_too_many_classes(load_vocab) -> None:
    pre = TokenTrie.for_vocab(load_vocab("gpt-2")).preorder
    with pytest.raises(ValueError, match="classes"):
        compress_preorder(pre, np.arange(256))
    with pytest.raises(ValueError, match="classes"):
        compress_preorder(pre, np.zeros(255, dtype=np.int32))


def test_dead_start_state_is_empty(load_vocab) -> None:
    vocab = load_vocab("gpt-2")
    dfa = LazyDFA([parse_regex("a")])
    words, nodes, states, visited = walk_tokens(TokenTrie.for_vocab(vocab).preorder, dfa, 0,
                                                bitmask_words(vocab.logit_width))
    assert not words.any() and nodes.size == 0 and states.size == 0 and visited == 0


# ------------------------------------------------------------------------------ slices
_SLICE_PATTERNS = [r'"[^"\\]*"', r'"[^"\\]{0,300}"', r"[ -~]{0,20}x", r"[a-z ]*\.", r'\{"k": "[^"\\\x00-\x1f]{0,40}"\}',
                   r"#[^\n]*\n", r'"[ -~]*"']


@pytest.mark.parametrize("pattern", _SLICE_PATTERNS)
def test_slices_allowed_wholesale_are_exact(load_vocab, pattern: str) -> None:
    """Masks that take slices wholesale equal the numpy reference walk over every token,
    end states included (tokens of a skipped slice are stepped byte by byte)."""
    from constrained.compile import RegexConstraint
    from constrained.masks.slices import SLICE_BOUNDS, SliceLevels, slice_alphabet_ok

    vocab = load_vocab("llama-bpe")
    trie = TokenTrie.for_vocab(vocab)
    constraint = RegexConstraint(parse_regex(pattern), vocab)
    dfa = constraint.dfa
    levels = SliceLevels(dfa, trie.slices.longest)
    for prefix in (b'"', b'"ab c', b'"' + b"x" * 50, b"#", b"ab"):  # lazy DFAs: make states
        dfa.walk(dfa.start, prefix)
    seen_levels = set()
    sliced = 0
    for state in range(1, min(dfa.n_states, 30)):
        level = levels(state)
        seen_levels.add(level)
        entry = constraint.state_masks(state)
        sliced += "|slices" in entry.trie.fingerprint
        result = walk_sparse(trie, dfa, state)
        assert result is not None
        ids, ends = live_tokens(trie, *result)
        reference = dict(zip(ids.tolist(), ends.tolist()))
        assert _allowed(entry.words, vocab.logit_width) == set(reference)
        sample = list(reference)[:: max(1, len(reference) // 300)]
        assert all(entry.end_state(t) == reference[t] for t in sample)
        # soundness of the level itself: every slice token it covers is live
        if level:
            alphabet, k = divmod(level - 1, 3)
            bound = (*SLICE_BOUNDS, 10**9)[k]
            covered = [t for t in vocab.text_token_ids.tolist()[::97]
                       if 0 < len(vocab.tokens[t]) <= bound
                       and slice_alphabet_ok(vocab.tokens[t], alphabet)]
            assert covered and all(t in reference for t in covered)
    if pattern.startswith(('"', "#")):
        # inside the string / comment every slice is taken wholesale: non-ASCII tokens
        # too where any character may follow (a bounded or ASCII-only string: the
        # ASCII slices; the UTF-8 check gives up on a count of characters)
        unbounded = pattern in (r'"[^"\\]*"', r"#[^\n]*\n")
        assert (6 if unbounded else 3) in seen_levels
        assert sliced  # and some mask was computed that way


def test_slice_alphabets_match_python_utf8() -> None:
    """The UTF-8 slice alphabet accepts exactly the well-formed UTF-8 of printable ASCII
    (no quote, no backslash) and non-ASCII characters, per Python's own decoder."""
    import random

    from constrained.masks.slices import SLICE_BYTES, slice_alphabet_ok

    rng = random.Random(7)
    samples = [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 5)))
               for _ in range(50_000)]
    samples += [chr(cp).encode("utf-8", "surrogatepass") for cp in range(0x70, 0x11000, 7)]
    samples += [b"\xed\xa0\x80", b"\xe0\x80\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf", b"\xf0\x90\x80"]
    for data in samples:
        try:
            text = data.decode("utf-8")
            want = all(ord(ch) >= 0x80 or ord(ch) in SLICE_BYTES for ch in text)
        except UnicodeDecodeError:
            want = False
        assert slice_alphabet_ok(data, 1) == want, data
        assert slice_alphabet_ok(data, 0) == all(b in SLICE_BYTES for b in data)


def _reference_level(dfa: LazyDFA, q: int, longest: int, max_frontier: int,
                     max_visits: int, alphabet: int) -> int:
    """The slice check as plain Python over ``step`` (the definition the compiled check
    must meet): breadth first over sets of (DFA state, alphabet state) pairs per length,
    a repeated set proves every longer length, a dead string stops at the level proven
    so far."""
    from constrained.masks.slices import ALPHABETS, SLICE_BOUNDS

    u_next = ALPHABETS[alphabet]
    steps = {u: [(b, int(u_next[u, b])) for b in range(256) if u_next[u, b] >= 0]
             for u in range(u_next.shape[0])}
    frontier, seen, level, visits = {(q, 0)}, [frozenset({(q, 0)})], 0, 0
    for depth in range(1, longest + 1):
        visits += len(frontier)
        if visits > max_visits:
            return level
        nxt = {(dfa.step(s, b), v) for s, u in frontier for b, v in steps[u]}
        if any(s == 0 for s, _ in nxt):
            return level
        level = {SLICE_BOUNDS[0]: 1, SLICE_BOUNDS[1]: 2}.get(depth, level)
        if frozenset(nxt) in seen:
            return 3
        if len(nxt) > max_frontier:
            return level
        seen.append(frozenset(nxt))
        frontier = nxt
    return 3


@settings(max_examples=80, deadline=None)
@given(pattern=st.sampled_from([r'"[^"\\]*"', r'"[^"]{0,40}"', r"[ -~]{0,25}x", r"[a-z ]*\.",
                                r"#[^\n]*\n", r"(ab|[ -~]{3})*", r"[ -~]{12}[ -~]*", r"\d+",
                                r"([ -~][ -~])*", r"[ -~]{0,9}|[a-z]{40}", r"[ -~]{0,10}",
                                r"[ -~]{0,30}z?", r"[ -~]{5,31}", r"[^\x00-\x1f]*",
                                r"([^\x00-\x7f]|[a-z])*", r"[^\u0800-\uffff]{0,12}",
                                r"(\u00e9|[ -~])*x", r"[^\U00010000-\U0010ffff]*"]),
       prefix=st.binary(max_size=6), longest=st.integers(1, 48),
       max_frontier=st.sampled_from([2, 8, 64]), max_visits=st.sampled_from([16, 256]),
       alphabet=st.sampled_from([0, 1]))
def test_compiled_slice_check_equals_python_reference(pattern: str, prefix: bytes, longest: int,
                                                      max_frontier: int, max_visits: int,
                                                      alphabet: int) -> None:
    """The compiled slice check (rows computed inside the kernel, on a fresh lazy DFA)
    gives the level of the Python definition, limits included, for both alphabets."""
    from constrained.masks import slices

    dfa = LazyDFA([parse_regex(pattern)])
    q = dfa.walk(dfa.start, prefix)
    if q <= 0:
        return
    reference = LazyDFA([parse_regex(pattern)])
    q_ref = reference.walk(reference.start, prefix)
    want = _reference_level(reference, q_ref, longest, max_frontier, max_visits, alphabet)
    old = slices._MAX_FRONTIER, slices._MAX_VISITS
    slices._MAX_FRONTIER, slices._MAX_VISITS = max_frontier, max_visits
    try:
        assert slices._level(dfa, q, longest, alphabet) == want
    finally:
        slices._MAX_FRONTIER, slices._MAX_VISITS = old


def test_nodes_ending_several_tokens_set_every_bit() -> None:
    """Equal byte strings (SentencePiece's ``<0x61>`` next to ``a``) end at one trie node;
    both walks set the bit of every token there (the rare path beside the one-token bit)."""
    from constrained.masks.kernels import lexer_walk_nodes

    tokens = [b"a", b"ab", b"a", b"b", b"ab", b"ba", b"a", b"c"]
    vocab = Vocabulary.from_tokens(tokens + [b"<eos>"], eos_token_ids=[len(tokens)],
                                   special_token_ids=[len(tokens)], logit_width=len(tokens) + 40)
    trie = TokenTrie.build(vocab)
    pre = trie.preorder
    assert int((pre.tok_bit < 0).sum()) == 2  # the nodes of b"a" and b"ab"
    dfa = LazyDFA([parse_regex(r"[ab]*")])
    _check_state(vocab, trie, dfa, dfa.start)
    words, _, _ = lexer_walk_nodes(pre, dfa, dfa.start, None, dfa.start)
    assert _allowed(words, vocab.logit_width) == {0, 1, 2, 3, 4, 5, 6}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(-2**31, 2**31 - 1)), max_size=120))
def test_or_words_at_matches_ufunc_at(pairs: list[tuple[int, int]]) -> None:
    """The sparse OR of walk words equals ``np.bitwise_or.at`` (repeated indices too)."""
    from constrained.masks.kernels import or_words_at

    rng = np.random.default_rng(len(pairs))
    start = rng.integers(-2**31, 2**31 - 1, size=41, dtype=np.int64).astype(np.int32)
    idx = np.array([i for i, _ in pairs], dtype=np.int64)
    vals = np.array([v for _, v in pairs], dtype=np.int32)
    want = start.copy()
    np.bitwise_or.at(want, idx, vals)
    got = start.copy()
    or_words_at(got, idx, vals)
    assert got.tolist() == want.tolist()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 3), max_size=200), st.integers(0, 10))
def test_nonzero_words_matches_flatnonzero(values: list[int], limit: int) -> None:
    """The first ``limit + 1`` non-zero word indices, all of them when there are fewer."""
    words = np.array(values, dtype=np.uint32)
    want = np.flatnonzero(words)[:limit + 1]
    assert nonzero_words(words, limit).tolist() == want.tolist()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(-3, 12)), max_size=80),
       st.lists(st.integers(-1, 4), min_size=16, max_size=16))
def test_bucket_nodes_matches_numpy_grouping(ends: list[tuple[int, int]],
                                             groups: list[int]) -> None:
    """Grouping a walk's end nodes by their state's group: the distinct states are
    numpy's ``unique``; each bucket holds exactly the nodes of that group, ascending."""
    nodes = np.array([n for n, _ in ends], dtype=np.int32)
    keys = np.array([k for _, k in ends], dtype=np.int32)
    states = distinct_sorted(keys)
    assert states.tolist() == np.unique(keys).tolist()
    group_of = np.array([groups[q % 16] for q in states.tolist()], dtype=np.int64)
    n_groups = max(groups) + 1
    out, bounds = bucket_nodes(nodes, keys, states, group_of, n_groups)
    for g in range(n_groups):
        want = sorted(n for n, k in ends if groups[k % 16] == g)
        assert out[bounds[g]:bounds[g + 1]].tolist() == want
    assert bounds[-1] == out.size == sum(1 for _, k in ends if groups[k % 16] >= 0)


_FIRST_MASK_SCRIPT = r"""
import json, sys
from constrained import compile_json_schema, compile_regex
from constrained.automata import rows
from constrained.grammar import GrammarConstraint, lark_to_grammar
from constrained.masks import kernels, slices
from constrained.masks.trie import TokenTrie
from constrained.vocab import Vocabulary
import grammars

vocab = Vocabulary.from_gguf(sys.argv[1])
ids = {t: i for i, t in reversed(list(enumerate(vocab.tokens)))}
TokenTrie.for_vocab(vocab).slices  # the per-vocabulary set-up, which warms the kernels up
fns = [kernels._lex_walk, kernels._walk, slices._slice_level, rows.expand_row,
       rows.intern_state, rows.rehash, kernels.distinct_sorted, kernels.bucket_nodes,
       kernels.nonzero_words, kernels.or_words_at,
       kernels._merge, kernels._compressed_layout]
before = [set(f.signatures) for f in fns]
schema = {"type": "object", "properties": {"a": {"type": "string", "pattern": "^[a-z]+$"},
          "b": {"type": "array", "items": {"$ref": "#"}}}, "required": ["a"]}
for c in (GrammarConstraint(lark_to_grammar(grammars.load("json")), vocab),
          GrammarConstraint(lark_to_grammar(grammars.load("arithmetic")), vocab),
          compile_json_schema(schema, vocab), compile_regex(r"[a-z]+@[a-z]+\.com", vocab),
          compile_regex(r"[a-z]{0,20}", vocab)):
    m = c.matcher()
    m.mask()
    for ch in '{"a": "x", "b": [1]}':  # a few steps past the first mask, byte tokens
        if not m.try_advance(ids[ch.encode()]):
            break
        m.mask()
# more lexemes than one shared lexer takes (a growing lexer; its refined byte classes
# were F-ordered) and enough DFA states to grow the state hash table
big = {"type": "object", "properties": {f"k{i}": {"type": "string", "pattern": f"^v{i}[a-z]*$"}
                                        for i in range(300)}}
m = compile_json_schema(big, vocab).matcher()
m.mask()
for ch in '{"k1":"v1abc","k7":"v7x","k250":"v250':
    assert m.try_advance(ids[ch.encode()]), ch
    m.mask()
print(json.dumps([sorted(str(s) for s in set(f.signatures) - b)
                  for f, b in zip(fns, before)]))
"""


def test_first_masks_compile_no_new_kernel_specialisations() -> None:
    """The vocabulary's set-up loads every compiled kernel variant a mask uses; a mask
    whose argument types differ (an F-ordered array, another integer width) would pay a
    numba cache load of ~100 ms inside some constraint's first mask."""
    import json
    import subprocess
    import sys

    from tests.testdata import vocab_path

    out = subprocess.run([sys.executable, "-c", _FIRST_MASK_SCRIPT, str(vocab_path("gpt-2"))],
                         capture_output=True, text=True, check=True, timeout=600)
    new = json.loads(out.stdout.strip().splitlines()[-1])
    assert new == [[]] * len(new), new
