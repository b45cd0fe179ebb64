"""Token-level proof of regex constraints on the four real vocabularies.

Valid strings, teacher-forced under a canonical-like (greedy longest-match) tokenization and
under random non-canonical tokenizations, are accepted at every step, with EOS allowed exactly
when Python's ``re`` says the prefix is a full match. Invalid strings, whose first offending byte
is known by construction, are rejected exactly at the token holding that byte.
"""
from __future__ import annotations

import random
import re

import numpy as np
import pytest

from constrained import TokenRejected
from constrained.compile import compile_regex
from constrained.vocab import Vocabulary
from tests.conftest import REAL_VOCABS

# name -> (pattern, valid strings, [(invalid string, index of its first offending CHARACTER,
#          byte offset inside that character)])  — offending by construction, see comments
CASES: dict[str, tuple[str, list[str], list[tuple[str, int, int]]]] = {
    "phone": (r"\(\d{3}\) \d{3}-\d{4}", ["(555) 123-4567", "(000) 999-0000"],
              [("(555) 12x-4567", 8, 0),      # a digit is required at 8
               ("(555)-123-4567", 5, 0)]),    # a space is required after ')'
    "iso_date": (r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])", ["2024-02-29", "1999-12-31"],
                 [("2024-13-01", 6, 0),       # after month '1' only 0-2
                  ("2024-02-32", 9, 0)]),     # after day '3' only 0-1
    "email": (r"[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}",
              ["john.doe+tag@example.co.uk", "a@b.io"],
              [("john@@example.com", 5, 0),   # '@' is not in the domain class
               ("john doe@x.com", 4, 0)]),    # space is in neither class
    "ipv4": (r"((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)",
             ["192.168.0.255", "8.8.8.8"],
             [("256.1.1.1", 2, 0),            # '25' may only continue with 0-5 or '.'
              ("1.2.3.4.5", 7, 0)]),          # four octets are complete, nothing may follow
    "json": (r'\{"name": "[^"\\]{1,20}", "age": \d{1,3}\}', ['{"name": "Ada Lovelace", "age": 36}'],
             [('{"name": "Ada", "age": 1234}', 26, 0),   # a fourth digit
              ('{"name": "", "age": 1}', 10, 0)]),       # the name needs at least one char
    "unicode": (r"[α-ω]+ (😀|🦙)+ [^\x00-\x7f]{2}", ["λαμβδα 🦙😀 日本", "ω 😀 éé"],
                [("λαμβδα 🦙x", 8, 0),          # after an emoji: emoji or space
                 ("λ€", 1, 0),                  # € (E2 82 AC): E2 starts no allowed char
                 ("λϊ", 1, 1)]),                # ϊ = CF 8A: CF is a fine lead byte, 8A is past ω (CF 89)
    "text": (r"[A-Za-z][a-z ]{10,200}\.", ["Hello there general kenobi.", "x" + "y " * 60 + "."],
             [("Hello World.", 6, 0),         # no capitals after the first letter
              ("Hi there.", 8, 0)]),          # '.' before ten [a-z ] characters
}


def _byte_offset(text: str, char_index: int, inner: int) -> int:
    return len(text[:char_index].encode("utf-8")) + inner


class Tokenizations:
    """Tokenizations of byte strings over one vocabulary, computed from the token table alone."""

    def __init__(self, vocab: Vocabulary) -> None:
        self.vocab = vocab
        self.ids: dict[bytes, int] = {}
        for i in vocab.text_token_ids.tolist():
            self.ids.setdefault(vocab.tokens[i], i)
        self.max_len = max(len(t) for t in self.ids)

    def greedy(self, data: bytes) -> list[int]:
        """Longest match first, left to right (what a BPE tokenizer mostly produces)."""
        out, pos = [], 0
        while pos < len(data):
            for n in range(min(self.max_len, len(data) - pos), 0, -1):
                tid = self.ids.get(data[pos:pos + n])
                if tid is not None:
                    out.append(tid)
                    pos += n
                    break
            else:
                raise AssertionError(f"no token for byte {data[pos]:#x}")
        return out

    def random(self, data: bytes, rng: random.Random) -> list[int]:
        """A uniformly chosen token among all that match at each position (non-canonical)."""
        out, pos = [], 0
        while pos < len(data):
            options = [self.ids[data[pos:pos + n]] for n in range(1, min(self.max_len, len(data) - pos) + 1)
                       if data[pos:pos + n] in self.ids]
            tid = rng.choice(options)
            out.append(tid)
            pos += len(self.vocab.tokens[tid])
        return out


@pytest.fixture(scope="module")
def tokenizations(load_vocab):
    memo: dict[str, Tokenizations] = {}

    def get(name: str) -> Tokenizations:
        if name not in memo:
            memo[name] = Tokenizations(load_vocab(name))
        return memo[name]

    return get


def _teacher_force(vocab: Vocabulary, pattern: str, ids: list[int]) -> None:
    c = compile_regex(pattern, vocab)
    m = c.matcher()
    eos = vocab.eos_token_ids[0]
    data = b""
    for tid in ids:
        mask = m.mask()
        try:
            complete = re.fullmatch(pattern, data.decode("utf-8")) is not None
        except UnicodeDecodeError:
            complete = False  # a partial character is never a full match
        assert mask[eos] == complete == m.is_accepting(), (pattern, data)
        assert mask[tid], (pattern, data, vocab.tokens[tid])
        m.advance(tid)
        data += vocab.tokens[tid]
    assert re.fullmatch(pattern, data.decode("utf-8"))
    assert m.mask()[eos] and m.is_accepting()
    m.advance(eos)
    assert m.is_terminated()


@pytest.mark.parametrize("vocab_name", REAL_VOCABS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_valid_strings_all_tokenizations(case: str, vocab_name: str, load_vocab, tokenizations) -> None:
    vocab = load_vocab(vocab_name)
    tk = tokenizations(vocab_name)
    pattern, valid, _ = CASES[case]
    rng = random.Random(f"{case}/{vocab_name}")
    for text in valid:
        data = text.encode("utf-8")
        greedy = tk.greedy(data)
        assert vocab.decode(greedy) == data
        _teacher_force(vocab, pattern, greedy)
        for _ in range(3):
            ids = tk.random(data, rng)
            assert vocab.decode(ids) == data
            _teacher_force(vocab, pattern, ids)


@pytest.mark.parametrize("vocab_name", REAL_VOCABS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_invalid_strings_rejected_at_first_offending_byte(case: str, vocab_name: str, load_vocab,
                                                          tokenizations) -> None:
    vocab = load_vocab(vocab_name)
    tk = tokenizations(vocab_name)
    pattern, valid, invalid = CASES[case]
    rng = random.Random(f"bad/{case}/{vocab_name}")
    c = compile_regex(pattern, vocab)
    for text, char_index, inner in invalid:
        assert re.fullmatch(pattern, text) is None
        off = _byte_offset(text, char_index, inner)
        # the bytes before the offending one are a prefix of a valid string (viable by construction)
        data = text.encode("utf-8")
        for ids in [tk.greedy(data)] + [tk.random(data, rng) for _ in range(3)]:
            m = c.matcher()
            pos = 0
            for tid in ids:
                tok = vocab.tokens[tid]
                if pos <= off < pos + len(tok):
                    before = m.mask()
                    assert not before[tid], (text, tok)
                    with pytest.raises(TokenRejected):
                        m.advance(tid)
                    assert np.array_equal(m.mask(), before)  # state unchanged
                    break
                assert m.mask()[tid], (text, pos, tok)
                m.advance(tid)
                pos += len(tok)
            else:
                raise AssertionError(f"{text!r}: offending byte {off} never reached")


@pytest.mark.parametrize("vocab_name", ["llama-bpe", "llama-spm"])
def test_mask_equals_brute_force_over_all_tokens(vocab_name: str, load_vocab, tokenizations) -> None:
    """Along a path, the whole mask equals stepping every token's bytes through the automaton."""
    vocab = load_vocab(vocab_name)
    single = tokenizations(vocab_name).ids  # single-byte tokens exist for every byte
    pattern = r"[a-z]{2,5}(-\d{1,3})? (🦙|é)"
    c = compile_regex(pattern, vocab)
    m = c.matcher()
    text_ids = vocab.text_token_ids.tolist()
    is_eos = np.isin(np.arange(vocab.logit_width), vocab.eos_token_ids)
    for piece in [b"", b"ab", b"c-", b"12", b" \xf0\x9f"]:
        for b in piece:
            m.advance(single[bytes([b])])  # byte by byte: exercises mid-character states
        expected = np.zeros(vocab.logit_width, dtype=bool)
        for i in text_ids:
            s = m.state
            for b in vocab.tokens[i]:
                s = c.dfa.step(s, b)
                if s == 0:
                    break
            expected[i] = s != 0
        assert expected.any()
        assert np.array_equal(m.mask() & ~is_eos, expected), piece
