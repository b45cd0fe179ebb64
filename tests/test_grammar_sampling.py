"""Property tests: sampling under random logits always yields outputs Lark parses.

For every shipped grammar (and a few other grammars Lark loads), tokens are drawn from
random logits restricted to the mask on the Llama-3 vocabulary for a random number of
steps (or until EOS is drawn), then a shortest completion found by search is
teacher-forced (none of its tokens may be masked) and EOS must be allowed. Every output
must parse with ``lark.Lark(grammar, parser="earley")`` (soundness), and with
``parser="lalr"`` where the grammar is LALR(1); forced bytes must agree with the token
drawn.
"""
from __future__ import annotations

import json

import lark
import numpy as np
import pytest

import grammars
from constrained.grammar import GrammarConstraint, compile_lark
from constrained.grammar.compiled import CompiledGrammar
from constrained.vocab import Vocabulary
from tests.sampling import sample_then_complete
from tests.testdata import vocab_path

N_SAMPLES = 8
MAX_RANDOM_TOKENS = 32


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    return Vocabulary.from_gguf(vocab_path("llama-bpe"))


def sample(c: GrammarConstraint, vocab: Vocabulary, rng: np.random.Generator,
           by_bytes: dict[bytes, int]) -> bytes:
    """Masked random tokens, then a shortest completion and EOS (tests/sampling.py)."""
    return sample_then_complete(c, vocab, rng, by_bytes, max_random_tokens=MAX_RANDOM_TOKENS,
                                stop_probability=0.35, length_penalty=0.7, max_token_len=16)


@pytest.fixture(scope="module")
def by_bytes(vocab: Vocabulary) -> dict[bytes, int]:
    return {t: i for i, t in enumerate(vocab.tokens)
            if t and i not in vocab.special_token_ids and len(t) <= 16}


@pytest.mark.parametrize("name", grammars.names())
def test_shipped_grammar_samples_parse_with_lark(name: str, vocab: Vocabulary,
                                                 by_bytes: dict[bytes, int]) -> None:
    text = grammars.load(name)
    c = compile_lark(text, vocab)
    ref = lark.Lark(text, parser="earley")
    try:  # the LALR reference (contextual lexer) too, where the grammar is LALR(1)
        lalr: lark.Lark | None = lark.Lark(text, parser="lalr")
    except lark.exceptions.GrammarError:
        lalr = None
    rng = np.random.default_rng(sum(map(ord, name)))
    for _ in range(N_SAMPLES):
        out = sample(c, vocab, rng, by_bytes)
        ref.parse(out.decode("utf-8"))  # raises on an unsound output
        if lalr is not None:
            lalr.parse(out.decode("utf-8"))


CORPUS_GRAMMARS = {
    "lark common ESCAPED_STRING / SIGNED_NUMBER json": r"""
        ?start: value
        ?value: object | array | string | SIGNED_NUMBER -> number | "true" | "false" | "null"
        array  : "[" [value ("," value)*] "]"
        object : "{" [pair ("," pair)*] "}"
        pair   : string ":" value
        string : ESCAPED_STRING
        %import common.ESCAPED_STRING
        %import common.SIGNED_NUMBER
        %import common.WS
        %ignore WS
    """,
    "ambiguous left-recursive": r"""
        start: e
        e: e "+" e | e e | NAME | "(" e ")"
        NAME: /[a-c]+/
    """,
    "keywords vs names": r"""
        start: stmt+
        stmt: "if" NAME ":" NAME ";" | NAME "=" NAME ";"
        NAME: /[a-z]+/
        %ignore " "
    """,
}


@pytest.mark.parametrize("label", sorted(CORPUS_GRAMMARS))
def test_other_grammars_samples_parse_with_lark(label: str, vocab: Vocabulary,
                                                by_bytes: dict[bytes, int]) -> None:
    text = CORPUS_GRAMMARS[label]
    c = compile_lark(text, vocab)
    ref = lark.Lark(text, parser="earley")
    rng = np.random.default_rng(7)
    for _ in range(N_SAMPLES):
        out = sample(c, vocab, rng, by_bytes)
        ref.parse(out.decode("utf-8"))


def _corpus_grammars() -> list[tuple[str, str, str | None]]:
    """Distinct corpus grammars Lark loads and we compile: (id, text, source path)."""
    from tests import test_lark_corpus as lc

    out, seen = [], set()
    for row in lc.load_rows():
        key = (row["grammar"], json.dumps(row["options"], sort_keys=True))
        if key in seen or row["options"].get("start", "start") != "start":
            continue
        seen.add(key)
        cg = lc.compiled(row["grammar"], row["source"], key[1])
        if isinstance(cg, CompiledGrammar):
            out.append((row["id"], row["grammar"], row["source"]))
    return out


def test_corpus_grammars_samples_parse_with_lark(vocab: Vocabulary,
                                                 by_bytes: dict[bytes, int]) -> None:
    """Two samples from every distinct corpus grammar (Lark-loadable, compiled by us)."""
    from pathlib import Path

    grammars_seen = 0
    rng = np.random.default_rng(11)
    for gid, text, source in _corpus_grammars():
        paths = [str(Path(source).parent)] if source else []
        c = compile_lark(text, vocab, import_paths=paths)
        ref = lark.Lark(text, parser="earley", import_paths=paths)
        for _ in range(2):
            out = sample(c, vocab, rng, by_bytes)
            try:
                ref.parse(out.decode("utf-8"))
            except lark.exceptions.LarkError as e:  # pragma: no cover - a soundness bug
                raise AssertionError(f"{gid}: Lark rejects our output {out!r}: {e}") from e
        grammars_seen += 1
    assert grammars_seen >= 50, grammars_seen
