"""Property tests: generated regexes + random logits -> masked sampling always yields re.fullmatch.

Sampling follows the mask only (the bitmask is applied to random logits, then argmax); it must
never reach a state whose mask is empty, and whatever it finishes with EOS must be a full match
of the pattern according to Python's ``re``.
"""
from __future__ import annotations

import re

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from constrained.compile import compile_regex
from constrained.masks.bitmask import apply_token_bitmask, bitmask_words
from constrained.vocab import Vocabulary

ATOMS = ["a", "b", "0", " ", "é", "🦙", "λ", r"\.", "-", "[a-c]", "[0-9]", r"\d", "[^a]", ".",
         "[α-ω]", r"\w", "[é🦙x]"]


def _regexes() -> st.SearchStrategy[str]:
    atom = st.sampled_from(ATOMS)

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        rep = st.tuples(inner, st.sampled_from(["?", "*", "+", "{2}", "{1,3}", "{0,2}", "{2,}"])).map(
            lambda t: f"(?:{t[0]}){t[1]}")
        cat = st.lists(inner, min_size=2, max_size=4).map("".join)
        alt = st.lists(inner, min_size=2, max_size=3).map(lambda xs: "(?:" + "|".join(xs) + ")")
        return rep | cat | alt

    return st.recursive(atom, extend, max_leaves=8)


def _sample(vocab: Vocabulary, pattern: str, seed: int, max_steps: int = 300) -> bytes | None:
    """Masked sampling from random logits; returns the output on EOS (None if the cap is hit)."""
    c = compile_regex(pattern, vocab)
    m = c.matcher()
    rng = np.random.default_rng(seed)
    eos = vocab.eos_token_ids[0]
    bits = np.zeros(bitmask_words(vocab.logit_width), dtype=np.int32)
    out = b""
    for step in range(max_steps):
        m.fill_bitmask(bits)
        logits = rng.standard_normal(vocab.logit_width).astype(np.float32)
        apply_token_bitmask(logits, bits)
        assert np.isfinite(logits).any(), f"dead end after {out!r} for {pattern!r}"
        eos_ok = np.isfinite(logits[eos])
        if eos_ok and (rng.random() < 0.3 or step > 40):
            m.advance(eos)
            return out
        logits[eos] = -np.inf
        if not np.isfinite(logits).any():
            assert eos_ok
            m.advance(eos)
            return out
        tid = int(np.argmax(logits))
        m.advance(tid)
        out += vocab.tokens[tid]
    return None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pattern=_regexes(), seed=st.integers(0, 2**32 - 1))
def test_sampling_on_gpt2_yields_full_matches(pattern: str, seed: int, load_vocab) -> None:
    vocab = load_vocab("gpt-2")
    out = _sample(vocab, pattern, seed)
    if out is not None:
        assert re.fullmatch(pattern, out.decode("utf-8")), (pattern, out)


# a tiny vocabulary with partial UTF-8 pieces and multi-character tokens
TINY = [bytes([b]) for b in range(256)] + [b"ab", b"a b", b"\xce\xbb\xce", b"\xb1", b"00", b"\xf0\x9f",
                                           b"\xa6\x99", b" \xc3", b"\xa9-", b".-", b"<eos>"]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pattern=_regexes(), seed=st.integers(0, 2**32 - 1))
def test_sampling_on_tiny_vocab_yields_full_matches(pattern: str, seed: int) -> None:
    vocab = Vocabulary.from_tokens(TINY, eos_token_ids=[len(TINY) - 1], logit_width=300)
    out = _sample(vocab, pattern, seed)
    if out is not None:
        assert re.fullmatch(pattern, out.decode("utf-8")), (pattern, out)
