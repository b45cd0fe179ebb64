"""Grammar token masks: the mask machinery's fast paths agree with each other and with
advancing every token one by one (the definition of the mask), on a real vocabulary.

The cold-mask fast paths (grouping few ending nodes in plain Python, sparse live words,
the compile-time lexer exploration, the inline cache lookups) must not change a single
bit: each case is checked exhaustively over GPT-2's 50k tokens at every step of a
teacher-forced input, with the fast paths forced on everywhere and off everywhere.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pytest

import grammars
from constrained.grammar import GrammarConstraint, lark_to_grammar
from constrained.grammar import token_masks as tm

LOOKAHEAD = 'start: (OP | NAME | WS)+\nOP: /[+*-]|[?](?![a-z])/\nNAME: /[a-z]+/\nWS: " "'
UNARY = """
?start: expr
?expr: expr "+" term | term
?term: "-" term | "*" term | "(" expr ")" | NUMBER | NAME
NUMBER: /[0-9]+/
NAME: /[a-z_]+/
%ignore " "
"""

# terminals spelled by the same regex in different contexts share one DFA lexeme
DUPLICATES = r"""
start: pair ("," pair)*
pair: KEY ":" VAL | "#" NUM | "#" NUM "_" TAG | "@" UNDER TAG
KEY: /[a-z]+/
VAL: /[a-z]+/
TAG: /[0-9]+/
NUM: /[0-9]+/
UNDER: "_"
WS: " "
%ignore WS
"""

CASES = [
    ("arithmetic", grammars.load("arithmetic"), "-(12 + 3.5) * x_1 / 2"),
    ("lookahead", LOOKAHEAD, "a? +b ?* c"),
    # long runs of one operator (GPT-2 has ``----``-like tokens): one parser level per lexeme
    ("unary", UNARY, "--*--(a + ---1) + ----b"),
    ("duplicates", DUPLICATES, "ab:cd, #12_3 ,@_45,#6"),
]


def _exhaustive(c: GrammarConstraint, state: object) -> np.ndarray:
    """bool[vocab]: which tokens advance from ``state`` (EOS and specials left out)."""
    m = c.matcher()
    out = np.zeros(len(c.vocab.tokens), dtype=bool)
    for t, tok in enumerate(c.vocab.tokens):
        if t in c.vocab.special_token_ids or not tok:
            continue
        out[t] = m._advance_token(state, t) is not None  # type: ignore[arg-type]
    return out


@pytest.mark.parametrize("name,grammar,text", CASES, ids=[c[0] for c in CASES])
def test_masks_equal_token_by_token_advance(name: str, grammar: str, text: str,
                                            load_vocab: Callable[[str], object],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    vocab = load_vocab("gpt-2")
    ids = {t: i for i, t in enumerate(vocab.tokens)}  # type: ignore[attr-defined]
    data = text.encode()
    # a byte-by-byte-ish tokenization: longest vocabulary token up to 3 bytes
    toks, pos = [], 0
    while pos < len(data):
        n = next(k for k in (3, 2, 1) if data[pos:pos + k] in ids)
        toks.append(ids[data[pos:pos + n]])
        pos += n
    wants: list[np.ndarray] = []  # the exhaustive masks, computed on the first pass
    special = list(vocab.special_token_ids)  # type: ignore[attr-defined]
    n_text = len(vocab.tokens)  # type: ignore[attr-defined]
    # dense live words everywhere / sparse live words everywhere; small entry walks in
    # plain Python / every walk compiled
    for small, tiny in ((0, 2), (10**9, 2), (10**9, 0)):
        monkeypatch.setattr(tm, "_SPARSE_WORDS", small)
        monkeypatch.setattr(tm, "_TINY_ENTRIES", tiny)
        c = GrammarConstraint(lark_to_grammar(grammar), vocab)  # type: ignore[arg-type]
        m = c.matcher()
        for step, tid in enumerate(toks):
            mask = m.mask()[:n_text]
            if step == len(wants):
                wants.append(_exhaustive(c, m.state))
            want = wants[step]
            mask[special] = want[special] = False
            bad = np.flatnonzero(mask != want)
            assert bad.size == 0, (
                f"{name} step {step} small={small} tiny={tiny}: mask wrong for "
                f"{[vocab.tokens[i] for i in bad[:5]]}")  # type: ignore[attr-defined]
            m.advance(tid)
        assert m.mask()[vocab.eos_token_ids[0]], f"{name}: EOS refused at the end"  # type: ignore[attr-defined]


def _walk_summary(trie: object, walk: tm.Walk, n_words: int) -> tuple[set[int], set[object]]:
    """(token ids a walk keeps alive, its groups as (lexemes, nodes)) in a comparable form."""
    live, groups = walk
    words = np.zeros(n_words, dtype=np.int32)
    if isinstance(live, tuple):
        np.bitwise_or.at(words, live[0], live[1])
    elif live is not None:
        words |= live
    bits = np.unpackbits(words.view(np.uint8), bitorder="little")
    return set(np.flatnonzero(bits).tolist()), {(g[0], tuple(g[1].tolist())) for g in groups}


# a recursive schema compiles to a grammar that keeps every lexing (lexer forks)
SCHEMA = {"type": "object", "properties": {
    "name": {"type": "string", "maxLength": 12}, "tag": {"enum": ["a-b", "ab", "a"]},
    "n": {"type": "integer"}, "kids": {"type": "array", "items": {"$ref": "#"}}},
    "required": ["name"]}
# every lexing kept: after ``ab`` the lexeme AB may end while ABCD goes on (a lexer fork)
FORKS = """
start: (AB | ABCD | CD | X)+
AB: "ab"
ABCD: "abcd"
CD: "c" "d"?
X: /[a-z]/
"""
WALK_CASES = [*CASES, ("schema", SCHEMA, '{"name": "x-1", "tag": "ab", "n": -12, "kids": []}'),
              ("forks", FORKS, "abcdabcabab")]


@pytest.mark.parametrize("name,grammar,text", WALK_CASES, ids=[c[0] for c in WALK_CASES])
def test_tiny_python_walks_equal_the_compiled_walk(name: str, grammar: str | dict[str, object],
                                                   text: str,
                                                   load_vocab: Callable[[str], object]) -> None:
    """The plain-Python entry walk gives exactly the compiled walk's result (live tokens,
    ending groups) for one or two entry nodes in every lexer mode a teacher-forced
    input reaches; it declines (None) only past its visit budget or an unknown row."""
    import random

    vocab = load_vocab("gpt-2")
    if isinstance(grammar, dict):
        from constrained.schema import compile_json_schema

        c = compile_json_schema(grammar, vocab)
        assert isinstance(c, GrammarConstraint) and c.compiled.all_lexings
    else:
        g = lark_to_grammar(grammar)
        if name == "forks":
            g = dataclasses.replace(g, lexing="all")
        c = GrammarConstraint(g, vocab)  # type: ignore[arg-type]
    trie = c.walk_trie()
    nfb = c.compiled.not_followed_by or None
    n_words = (trie.node_of_token.size + 31) // 32
    # the entry walks the masks of a teacher-forced input ask for, plus random ones
    asked: list[tuple[object, np.ndarray]] = []
    real_walk = tm.lexer_walk

    def record(trie_: object, mode: object, key: object, q: int, entry: object,
               nfb_: object = None) -> object:
        if entry is not None:
            asked.append((mode, entry))
        return real_walk(trie_, mode, key, q, entry, nfb_)  # type: ignore[arg-type]

    m = c.matcher()
    state = m.state
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tm, "lexer_walk", record)
        patch.setattr(tm, "_TINY_ENTRIES", 0)
        for byte in text.encode():
            c.allowed_words(state[0])
            state = m._advance_bytes(state, bytes([byte]))  # type: ignore[assignment]
            assert state is not None
    rng = random.Random(len(text))
    shallow = np.flatnonzero(trie.depth <= 3).tolist()
    modes = list({id(mode): mode for mode, _ in asked}.values())
    asked += [(rng.choice(modes), np.unique(rng.sample(shallow, rng.choice((1, 2)))).astype(np.int32))
              for _ in range(500)]
    taken = compared = forks = 0
    for mode, entry in asked:
        if entry.shape[0] > 2:
            continue
        tiny = tm._tiny_walk(trie, mode, entry, nfb)
        words, dn, df = tm.lexer_walk_nodes(trie, mode.dfa, mode.start, entry, mode.start)
        nz = tm.nonzero_words(words, 10**9)
        full: tm.Walk = ((nz, words[nz].view(np.int32)) if nz.size else None,
                         tm._group_ends(trie, mode, dn, df, nfb) if dn.size else [])
        compared += 1
        if tiny is not None:
            taken += 1
            forks += int((df < 0).any())
            assert _walk_summary(trie, tiny, n_words) == _walk_summary(trie, full, n_words)
    assert taken > compared // 4, (taken, compared)  # the comparison is not vacuous
    if name == "forks":
        assert forks > 0  # walks that pass a lexer fork are among them


def test_duplicate_regexes_share_a_dfa_lexeme_and_agree_with_lark() -> None:
    """Equal regexes are one DFA lexeme (accepting for every terminal spelling it), and
    the language is unchanged: every string of up to 5 symbols agrees with Lark."""
    import itertools

    import lark

    from constrained.grammar.compiled import CompiledGrammar
    from tests.testdata import lark_accepts

    cg = CompiledGrammar(lark_to_grammar(DUPLICATES))
    names = cg.lexeme_names
    assert cg.dfa_lexeme[names.index("KEY")] == cg.dfa_lexeme[names.index("VAL")]
    assert cg.dfa_lexeme[names.index("NUM")] == cg.dfa_lexeme[names.index("TAG")]
    assert len(cg.dfa_nodes) < len(cg.nodes)
    reference = lark.Lark(DUPLICATES, parser="earley")
    n_accepted = 0
    for size in range(6):
        for chars in itertools.product("a1:,#_@ ", repeat=size):
            text = "".join(chars)
            expected = lark_accepts(reference, text)
            n_accepted += expected
            assert cg.accepts(text.encode()) == expected, text
    assert n_accepted > 50  # the enumeration reaches every alternative
