"""Matcher API contracts (EOS, termination, rollback, validation, copies, bad input) and compile caching."""
from __future__ import annotations

import re
import threading

import numpy as np
import pytest

from constrained import (
    BitmaskShapeError, CompileError, InvalidTokenId, MatcherTerminated, RegexSyntaxError,
    RegexUnsupported, TokenRejected,
)
from constrained.compile import compile_choice, compile_regex, compile_regex_node
from constrained.errors import RollbackError
from constrained.automata.ast import literal
from constrained.vocab import Vocabulary
from tests.testdata import run_threads

# ids:        0     1     2     3      4      5       6        7       8        9
TOKENS = [b"a", b"b", b"ab", b"c", b"abc", b"<s>", b"</s>", b"\xce", b"\xbb", b"\xce\xbb"]
EOS, BOS, PAD = 6, 5, 12


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    return Vocabulary.from_tokens(TOKENS, eos_token_ids=[EOS], special_token_ids=[BOS], logit_width=40)


def allowed(m) -> set[int]:
    return set(np.flatnonzero(m.mask()).tolist())


def test_mask_eos_and_termination(vocab: Vocabulary) -> None:
    c = compile_regex("(ab)+c?", vocab)
    m = c.matcher()
    assert allowed(m) == {0, 2, 4}                     # a, ab, abc
    with pytest.raises(TokenRejected, match="EOS"):
        m.advance(EOS)
    m.advance(2)
    assert m.is_accepting() and allowed(m) == {0, 2, 3, 4, EOS}
    m.advance(EOS)
    assert m.is_terminated() and m.is_accepting() and allowed(m) == {EOS}
    m.advance(EOS)                                     # idempotent
    assert m.is_terminated()
    with pytest.raises(MatcherTerminated):
        m.advance(0)
    m.rollback(1)                                      # undoes the (single) EOS
    assert not m.is_terminated() and allowed(m) == {0, 2, 3, 4, EOS}


def test_special_padding_and_out_of_range(vocab: Vocabulary) -> None:
    m = compile_regex(r"[\s\S]*", vocab).matcher()  # any text (valid UTF-8)
    mask = m.mask()
    assert mask.shape == (40,) and not mask[BOS] and not mask[PAD] and not mask[10:].any()
    assert mask[EOS] and mask[[0, 1, 2, 3, 4, 7, 9]].all()
    assert not mask[8]  # a lone UTF-8 continuation byte cannot start a character
    with pytest.raises(TokenRejected, match="special"):
        m.advance(BOS)
    with pytest.raises(TokenRejected, match="padding"):
        m.advance(PAD)
    for bad in (-1, 40, 10**9):
        with pytest.raises(InvalidTokenId):
            m.advance(bad)
        with pytest.raises(InvalidTokenId):
            m.validate_tokens([0, bad])
    with pytest.raises(InvalidTokenId):
        m.advance("a")  # type: ignore[arg-type]
    m.advance(np.int64(7))  # numpy integers are fine; partial UTF-8 (λ = CE BB)
    assert not m.is_accepting() and allowed(m) == {8}
    m.advance(8)
    assert m.is_accepting()


def test_rejected_token_leaves_state_unchanged(vocab: Vocabulary) -> None:
    m = compile_regex("abc", vocab).matcher()
    m.advance(0)
    before = (m.mask(), m.state, m.is_accepting())
    with pytest.raises(TokenRejected, match="not allowed"):
        m.advance(3)  # 'c' after 'a'
    assert np.array_equal(m.mask(), before[0]) and m.state == before[1]
    assert not m.try_advance(3) and m.try_advance(1)
    assert allowed(m) == {3}


def test_partial_utf8_tokens(vocab: Vocabulary) -> None:
    m = compile_regex("λ+", vocab).matcher()
    assert allowed(m) == {7, 9}
    m.advance(7)                               # first byte of λ
    assert allowed(m) == {8} and not m.is_accepting()
    m.advance(8)
    assert m.is_accepting() and allowed(m) == {7, 9, EOS}


def test_validate_tokens_and_rollback(vocab: Vocabulary) -> None:
    m = compile_regex("(ab)+c", vocab).matcher()
    assert m.validate_tokens([2, 0, 1, 3, EOS, EOS, 0]) == 6
    assert m.validate_tokens([2, 3, 0]) == 2
    assert m.validate_tokens([]) == 0 and m.state == m.constraint.dfa.start  # no state change
    for t in (0, 1, 2):
        m.advance(t)
    masks = allowed(m)
    m.advance(3)
    m.advance(EOS)
    m.rollback(2)
    assert allowed(m) == masks and not m.is_terminated()
    m.rollback(3)
    assert allowed(m) == {0, 2, 4}
    with pytest.raises(RollbackError, match="only 0"):
        m.rollback(1)
    with pytest.raises(RollbackError):
        m.rollback(-1)


def test_max_rollback(vocab: Vocabulary) -> None:
    m = compile_regex("(ab)*", vocab).matcher(max_rollback=2)
    assert m.max_rollback == 2
    for t in (2, 2, 2, 0):
        m.advance(t)
    m.rollback(2)
    with pytest.raises(RollbackError, match="max_rollback=2"):
        m.rollback(1)
    assert m.is_accepting()  # after 'abab'
    with pytest.raises(RollbackError):
        compile_regex("(ab)*", vocab).matcher(max_rollback=-1)


def test_copy_and_reset(vocab: Vocabulary) -> None:
    m = compile_regex("(ab)+c", vocab).matcher()
    m.advance(2)
    twin = m.copy()
    twin.advance(3)
    assert twin.is_accepting() and not m.is_accepting()
    twin.rollback(1)
    m.advance(0)
    assert allowed(twin) == {0, 2, 3, 4} and allowed(m) == {1}
    m.reset()
    assert allowed(m) == {0, 2, 4}
    with pytest.raises(RollbackError):
        m.rollback(1)


def test_fill_bitmask_rows_and_shape_errors(vocab: Vocabulary) -> None:
    m = compile_regex("(ab)+c?", vocab).matcher()
    bm = np.full((3, 2), -1, dtype=np.int32)  # ceil(40/32) = 2 words
    m.fill_bitmask(bm, 1)
    assert (bm[0] == -1).all() and (bm[2] == -1).all()
    assert int(bm[1, 0]) & 0xFFFFFFFF == (1 << 0) | (1 << 2) | (1 << 4) and bm[1, 1] == 0
    row = np.zeros(2, dtype=np.int32)
    m.advance(2)
    m.fill_bitmask(row)
    assert int(row[0]) & 0xFFFFFFFF == (1 << 0) | (1 << 2) | (1 << 3) | (1 << 4) | (1 << EOS)
    for bad, index in [(np.zeros(3, np.int32), 0), (np.zeros((2, 2), np.int64), 0),
                       (np.zeros((2, 2), np.int32), 2), (np.zeros((2, 2), np.int32), -1),
                       (np.zeros(2, np.int32), 1), ([0, 0], 0), (np.zeros((1, 2, 2), np.int32), 0)]:
        with pytest.raises(BitmaskShapeError):
            m.fill_bitmask(bad, index)


def test_forced_bytes(vocab: Vocabulary) -> None:
    m = compile_regex("abc(a|b)", vocab).matcher()
    assert m.forced_bytes() == b"abc"
    m.advance(0)
    assert m.forced_bytes() == b"bc"
    m.advance(1)
    m.advance(3)
    assert m.forced_bytes() == b""
    m.advance(0)
    m.advance(EOS)
    assert m.forced_bytes() == b""


def test_accepts_is_string_level_full_match(vocab: Vocabulary) -> None:
    c = compile_regex(r"(ab)+c?", vocab)
    for s in ["ab", "abab", "ababc", "", "abc c", "abca", "a"]:
        assert c.accepts(s) == (re.fullmatch(r"(ab)+c?", s) is not None), s
    assert c.accepts(b"ababc")


def test_compile_cache_and_immutability(vocab: Vocabulary) -> None:
    a = compile_regex("a+b", vocab)
    assert compile_regex("a+b", vocab) is a
    assert compile_regex("a+b", vocab, flags=re.IGNORECASE) is not a
    other = Vocabulary.from_tokens(TOKENS, eos_token_ids=[EOS], logit_width=40)  # no BOS special
    assert compile_regex("a+b", other) is not a
    with pytest.raises(AttributeError):
        a.vocab = other  # type: ignore[misc]
    node = literal("abc")
    assert compile_regex_node(node, vocab) is compile_regex_node(literal("abc"), vocab)


def test_compile_errors(vocab: Vocabulary) -> None:
    with pytest.raises(RegexSyntaxError):
        compile_regex("(ab", vocab)
    with pytest.raises(RegexUnsupported):
        compile_regex(r"(a)\1", vocab)
    with pytest.raises(RegexUnsupported):
        compile_regex(r"a(?=b)", vocab)
    with pytest.raises(CompileError, match="matches no string"):
        compile_regex(r"[^\s\S]", vocab)
    with pytest.raises(CompileError):
        compile_regex(b"ab", vocab)  # type: ignore[arg-type]
    with pytest.raises(CompileError):
        compile_regex("ab", TOKENS)  # type: ignore[arg-type]
    with pytest.raises(CompileError, match="empty"):
        compile_choice([], vocab)
    with pytest.raises(CompileError):
        compile_choice("abc", vocab)  # type: ignore[arg-type]
    with pytest.raises(CompileError):
        compile_choice(["a", 3], vocab)  # type: ignore[list-item]


def test_compile_choice(vocab: Vocabulary) -> None:
    c = compile_choice(["abc", "ab", "cab"], vocab)
    for s in ["abc", "ab", "cab", "a", "abca", ""]:
        assert c.accepts(s) == (s in {"abc", "ab", "cab"})
    m = c.matcher()
    assert allowed(m) == {0, 2, 3, 4}
    m.advance(2)
    assert allowed(m) == {3, EOS}


def test_threads_share_a_constraint(load_vocab) -> None:
    """Masks computed concurrently from one constraint equal the single-threaded ones."""
    vocab = load_vocab("gpt-2")
    pattern = r"[a-z]{1,6}( [a-z]{1,6}){0,4}\."
    text = b"one two three four."
    ids = [vocab.tokens.index(bytes([b])) for b in text]  # byte by byte: many states
    ref_c = compile_regex(pattern, vocab, flags=0)
    # the same language spelled differently: a distinct, cold constraint for the threads
    shared = compile_regex("(?:" + pattern + ")", vocab)
    assert shared is not ref_c
    expected = []
    m = ref_c.matcher()
    for t in ids:
        expected.append(np.packbits(m.mask()))
        m.advance(t)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            mm = shared.matcher()
            for k, t in enumerate(ids):
                assert np.array_equal(np.packbits(mm.mask()), expected[k])
                mm.advance(t)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    run_threads(run)
    assert not errors, errors


def test_threads_share_a_schema_constraint(load_vocab) -> None:
    """Grammar masks (lexer walks that compute lazy-DFA rows inside the kernel, under the
    DFA's lock) computed by four threads from one cold schema constraint equal the masks
    of a single-threaded compile of the same schema."""
    from constrained.schema import _CACHE, compile_json_schema

    def cold(schema_: dict):  # a fresh compile (the per-process schema cache bypassed)
        _CACHE.items.clear()
        return compile_json_schema(schema_, vocab)

    vocab = load_vocab("gpt-2")
    schema = {"type": "object", "properties": {
        "name": {"type": "string", "maxLength": 12}, "age": {"type": "integer", "minimum": 0},
        "tags": {"type": "array", "items": {"type": "string", "format": "date"}}},
        "required": ["name"]}
    docs = [b'{"name":"ada","age":36,"tags":["2024-01-02"]}', b'{"name":"x","tags":[]}',
            b'{"name":"bob lee","age":7}', b'{"name":""}']
    by_bytes = {t: i for i, t in enumerate(vocab.tokens)}
    token_docs = [[by_bytes[bytes([b])] for b in d] for d in docs]  # byte by byte: many rows

    def masks(constraint, ids: list[int]) -> list[bytes]:
        m = constraint.matcher()
        out = []
        for t in ids:
            out.append(np.packbits(m.mask()).tobytes())
            m.advance(t)
        return out

    reference = cold(schema)
    expected = [masks(reference, ids) for ids in token_docs]
    shared = cold(schema)
    assert shared is not reference
    errors: list[BaseException] = []

    def run(k: int) -> None:
        try:
            for j in range(len(docs)):
                i = (j + k) % len(docs)  # threads walk the documents in different orders
                assert masks(shared, token_docs[i]) == expected[i]
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
