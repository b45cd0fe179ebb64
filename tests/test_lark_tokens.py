"""Token-level exactness on the Llama-3 vocabulary (128k byte-level BPE tokens).

Corpus inputs that Lark accepts, tokenized canonically (our engine's tokenizer for the
same GGUF vocabulary) and randomly (any split into vocabulary tokens), are teacher-forced
through the matcher: no token may be masked and EOS must be allowed at the end
(completeness). Inputs Lark rejects must meet a masked token or a refused EOS
(soundness). At every step the mask agrees with advancing each token individually.
"""
from __future__ import annotations

import json
import random
from functools import cache
from typing import Any

import pytest

from constrained.grammar import GrammarConstraint
from constrained.grammar.compiled import CompiledGrammar
from constrained.vocab import Vocabulary
from tests import test_gbnf_corpus as gbnf_corpus
from tests import test_lark_corpus as lark_corpus
from tests.testdata import vocab_path


@pytest.fixture(scope="module")
def llama3() -> tuple[Vocabulary, Any]:
    from engine.tokenizer import Tokenizer

    path = vocab_path("llama-bpe")
    return Vocabulary.from_gguf(path), Tokenizer.from_gguf(path)


@cache
def _constraint(cg: CompiledGrammar, vocab: Vocabulary) -> GrammarConstraint:
    """The corpus test's compiled grammar (same semantics) bound to ``vocab``."""
    return GrammarConstraint.from_compiled(cg, vocab)


def random_split(data: bytes, by_bytes: dict[bytes, int], rng: random.Random) -> list[int]:
    """A random tokenization of ``data`` into vocabulary tokens (not the canonical one)."""
    ids, pos = [], 0
    while pos < len(data):
        options = [n for n in range(1, min(16, len(data) - pos) + 1)
                   if data[pos:pos + n] in by_bytes]
        n = rng.choice(options)
        ids.append(by_bytes[data[pos:pos + n]])
        pos += n
    return ids


def teacher_force(c: GrammarConstraint, ids: list[int], check_sample: int,
                  rng: random.Random) -> tuple[int | None, bool]:
    """Advance ``ids``; returns (index of the first masked token or None, EOS allowed at end)."""
    m = c.matcher()
    eos = c.vocab.eos_token_ids[0]
    n_text = len(c.vocab.tokens)
    for i, tid in enumerate(ids):
        mask = m.mask()
        if check_sample:
            state = m.state
            for t in rng.sample(range(n_text), check_sample) + [tid]:
                if t in c.vocab.special_token_ids:
                    continue
                assert bool(mask[t]) == (m._advance_token(state, t) is not None), (
                    f"mask disagrees with advance for token {t} {c.vocab.tokens[t]!r}")
        if not mask[tid]:
            return i, False
        m.advance(tid)
    return None, bool(m.mask()[eos])


def _rows(kind: str) -> list[tuple[Any, bytes, bool, str]]:
    out = []
    if kind == "lark":
        for row in lark_corpus.load_rows():
            cg = lark_corpus.compiled(row["grammar"], row["source"],
                                      json.dumps(row["options"], sort_keys=True))
            if isinstance(cg, CompiledGrammar) and lark_corpus.verdict(row) == "ok":
                out.append((cg, row["input"].encode(), row["label"], row["id"]))
    else:
        for row in gbnf_corpus.load_rows():
            cg = gbnf_corpus.compiled(row["grammar"])
            if isinstance(cg, CompiledGrammar) and gbnf_corpus.verdict(row) == "ok":
                out.append((cg, row["input"].encode(), row["accept"], row["id"]))
    return out


@pytest.mark.parametrize("kind,n_rows", [("lark", 48), ("gbnf", 24)])
def test_teacher_forcing_canonical_and_random(llama3: tuple[Vocabulary, Any], kind: str,
                                              n_rows: int) -> None:
    vocab, tok = llama3
    by_bytes = {t: i for i, t in enumerate(vocab.tokens)
                if t and i not in vocab.special_token_ids and len(t) <= 16}
    rng = random.Random(1234)
    rows = [r for r in _rows(kind) if len(r[1]) <= 400]
    sample = rng.sample(rows, min(n_rows, len(rows)))
    checked = {True: 0, False: 0}
    for k, (cg, data, label, rid) in enumerate(sample):
        c = _constraint(cg, vocab)
        canonical = tok.encode(data.decode("utf-8"), parse_special=False)
        assert vocab.decode(canonical) == data
        splits = [canonical, random_split(data, by_bytes, rng)]
        for ids in splits:
            masked_at, eos_ok = teacher_force(c, ids, 24 if k < 6 else 0, rng)
            if label:
                assert masked_at is None, f"{rid}: token {masked_at} masked ({ids[masked_at]})"
                assert eos_ok, f"{rid}: EOS refused after an accepted input"
            else:
                assert masked_at is not None or not eos_ok, f"{rid}: rejected input accepted"
        checked[label] += 1
    assert checked[True] >= n_rows // 4 and checked[False] >= 1, checked


def test_random_tokenizations_on_sentencepiece_vocabulary() -> None:
    """Llama-2's SentencePiece vocabulary (``▁`` pieces, ``<0xNN>`` byte fallback): random
    splits of accepted inputs are never masked and end with EOS allowed."""
    vocab = Vocabulary.from_gguf(vocab_path("llama-spm"))
    by_bytes = {t: i for i, t in enumerate(vocab.tokens)
                if t and i not in vocab.special_token_ids and len(t) <= 16}
    rng = random.Random(99)
    rows = [r for r in _rows("lark") + _rows("gbnf") if r[2] and len(r[1]) <= 300]
    for cg, data, _, rid in rng.sample(rows, 16):
        c = _constraint(cg, vocab)
        ids = random_split(data, by_bytes, rng)
        masked_at, eos_ok = teacher_force(c, ids, 8, rng)
        assert masked_at is None and eos_ok, (rid, masked_at)
