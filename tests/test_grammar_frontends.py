"""Front ends and policies: Lark/GBNF loading, errors, %ignore bounds, regex rewrites,
shipped grammars, the IR entry point and matcher behaviour on a small vocabulary."""
from __future__ import annotations

import random
import re

import lark
import numpy as np
import pytest

import grammars
from constrained.automata import parse_regex
from constrained.errors import (
    ConstraintTooComplex,
    GrammarSyntaxError,
    GrammarUnsupported,
    TokenRejected,
)
from constrained.grammar import (
    Grammar,
    Lexeme,
    ParserLimits,
    Rule,
    compile_gbnf,
    compile_grammar,
    compile_lark,
    gbnf_to_grammar,
    lark_to_grammar,
)
from constrained.grammar.compiled import CompiledGrammar
from constrained.grammar.lark_frontend import _KNOWN_REWRITES
from constrained.vocab import Vocabulary


def accepts(text: str, data: str, **kw: object) -> bool:
    return CompiledGrammar(lark_to_grammar(text, **kw)).accepts(data.encode())  # type: ignore[arg-type]


def lark_accepts(text: str, data: str) -> bool:
    try:
        lark.Lark(text, parser="earley").parse(data)
        return True
    except lark.exceptions.LarkError:
        return False


@pytest.fixture(scope="module")
def small_vocab() -> Vocabulary:
    """Every printable ASCII byte, a few multi-byte tokens, EOS last, padded logit width."""
    toks = [bytes([b]) for b in range(32, 127)] + [b"\n", b"hello", b"he", b"llo w", b'{"',
                                                    b'":', b'",', b"true", b"</s>"]
    return Vocabulary(toks, eos_token_ids=[len(toks) - 1], logit_width=len(toks) + 37)


# --- Lark errors ---------------------------------------------------------------------------
def test_lark_syntax_error_has_location() -> None:
    with pytest.raises(GrammarSyntaxError, match=r"line 2"):
        lark_to_grammar('start: "a"\nfoo: : bar\n')


def test_lark_undefined_rule() -> None:
    with pytest.raises(GrammarSyntaxError, match="undefined_rule|not defined"):
        lark_to_grammar("start: undefined_rule")


def test_lark_declare_is_unsupported() -> None:
    with pytest.raises(GrammarUnsupported, match="declare"):
        lark_to_grammar('start: INDENT "a"\n%declare INDENT')


def test_lark_postlex_is_unsupported() -> None:
    with pytest.raises(GrammarUnsupported, match="post-lexer"):
        lark_to_grammar('start: "a"', postlex=object())


def test_lark_lookaround_terminal_names_the_terminal() -> None:
    with pytest.raises(GrammarUnsupported, match="WORD"):
        lark_to_grammar("start: WORD\nWORD: /a(?=b)b/")


def test_non_text_grammar() -> None:
    with pytest.raises(GrammarSyntaxError):
        lark_to_grammar(b"start: 'a'")  # type: ignore[arg-type]


def test_missing_start_rule() -> None:
    with pytest.raises(GrammarSyntaxError, match="foo2"):
        lark_to_grammar('foo: "a"', start="foo2")


# --- Lark semantics ------------------------------------------------------------------------
def test_escaped_string_rewrite_matches_like_python_re() -> None:
    (orig, new), = _KNOWN_REWRITES.items()
    assert orig == lark.Lark('start: ESCAPED_STRING\n%import common.ESCAPED_STRING'
                             ).terminals[0].pattern.value
    rng = random.Random(0)
    for _ in range(20000):
        s = "".join(rng.choice('ab\\"\n') for _ in range(rng.randint(0, 9)))
        a, b = re.match(orig, s), re.match(new, s)
        assert (a and a.group()) == (b and b.group()), s


@pytest.mark.parametrize("data", ['"a"', '"a" "b"', '"a\\"b"', '"x"y"'])
def test_lazy_quantifier_lexeme_stops_at_first_match(data: str) -> None:
    g = 'start: STR+\nSTR: /".*?"/\n%ignore " "'
    assert accepts(g, data, ignore_max_bytes=None) == lark_accepts(g, data)


@pytest.mark.parametrize("data", ["ifx", "if x", "iffy", "x", "if"])
def test_keywords_and_names_follow_lark_earley(data: str) -> None:
    g = 'start: "if" NAME | NAME\nNAME: /[a-z]+/\n%ignore " "'
    assert accepts(g, data) == lark_accepts(g, data)


def test_templates_priorities_flags_and_aliases() -> None:
    g = r"""
        start: _sep{item, ","} -> items
        _sep{x, s}: x (s x)*
        ?item: WORD | NUMBER
        WORD.2: /[a-z]+/i
        %import common.NUMBER
        %ignore " "
    """
    for data in ["Abc, 12, x", "a,b", "", "a,,b", "1.5e3"]:
        assert accepts(g, data) == lark_accepts(g, data), data


def test_ignore_is_bounded_by_default_and_configurable() -> None:
    g = 'start: "a" "b"\nWS: /[ ]+/\n%ignore WS'
    assert accepts(g, "a" + " " * 8 + "b", ignore_max_bytes=8, max_ignore=1)
    assert not accepts(g, "a" + " " * 9 + "b", ignore_max_bytes=8, max_ignore=1)
    # a run of ignored text is at most max_ignore lexemes of ignore_max_bytes each
    assert accepts(g, "a" + " " * 16 + "b", ignore_max_bytes=8, max_ignore=2)
    assert not accepts(g, "a" + " " * 17 + "b", ignore_max_bytes=8, max_ignore=2)
    assert not accepts(g, "a" + " " * 4200 + "b")  # default: 16 x 256 bytes
    assert accepts(g, "a" + " " * 4000 + "b")
    assert accepts(g, "a" + " " * 300 + "b", ignore_max_bytes=None)


def test_max_ignore_bounds_runs_of_ignored_lexemes() -> None:
    g = 'start: "a" "b"\nC: /#[a-z]*;/\n%ignore " "\n%ignore C'
    assert accepts(g, "a #x; #y; b", max_ignore=5)  # " ", C, " ", C, " " in a row
    assert not accepts(g, "a #x; #y; b", max_ignore=4)
    assert accepts(g, "a" + " #x;" * 50 + " b", max_ignore=None)


def test_item_limit_raises_too_complex() -> None:
    g = "start: " + " | ".join(f"r{i}" for i in range(40)) + "\n" + "\n".join(
        f'r{i}: "x{i}"' for i in range(40))
    with pytest.raises(ConstraintTooComplex):
        CompiledGrammar(lark_to_grammar(g), parser_limits=ParserLimits(max_items_per_set=10))


# --- GBNF ----------------------------------------------------------------------------------
@pytest.mark.parametrize("text,match", [
    ('root ::= "a', "unterminated string"),
    ("root ::= [a-", "unterminated character class"),
    ("root ::= foo", "undefined rule 'foo'"),
    ("root ::= (\"a\"", "missing"),
    ('root ::= "a"\nroot ::= "b"', "defined twice"),
    ('root ::= "\\q"', "unknown escape"),
    ("", "empty grammar"),
])
def test_gbnf_errors(text: str, match: str) -> None:
    with pytest.raises(GrammarSyntaxError, match=match):
        gbnf_to_grammar(text)


def test_gbnf_error_location() -> None:
    with pytest.raises(GrammarSyntaxError, match="line 2, column"):
        gbnf_to_grammar('root ::= "a"\nx ::= @')


def test_gbnf_lookahead_unsupported() -> None:
    with pytest.raises(GrammarUnsupported):
        gbnf_to_grammar('root ::= (= "a") "a"')


def test_gbnf_repetitions_and_classes() -> None:
    cg = CompiledGrammar(gbnf_to_grammar(
        'root ::= "x"{2,3} [^a-c]? ("ab" | "c")* [0-9]{2} # comment\n'))
    for data, want in [("xx12", True), ("xxx12", True), ("xxxxx12", False), ("xxd12", True),
                       ("xxa12", False), ("xxabcab12", True), ("xx1", False), ("xxé12", True)]:
        assert cg.accepts(data.encode()) == want, data


# --- IR entry point (used by the JSON Schema compiler) ---------------------------------------
def test_compile_grammar_from_ir(small_vocab: Vocabulary) -> None:
    # list -> "[" items? "]" ; items -> items "," NUM | NUM   (recursion stays in rules)
    g = Grammar(
        rules={"list": Rule("list", (("LB", "items", "RB"), ("LB", "RB"))),
               "items": Rule("items", (("items", "COMMA", "NUM"), ("NUM",)))},
        lexemes={"LB": Lexeme("LB", parse_regex(r"\["), literal=b"["),
                 "RB": Lexeme("RB", parse_regex(r"\]"), literal=b"]"),
                 "COMMA": Lexeme("COMMA", parse_regex(","), literal=b","),
                 "NUM": Lexeme("NUM", parse_regex(r"[0-9]+"))},
        start="list")
    c = compile_grammar(g, small_vocab)
    for data, want in [("[]", True), ("[1,22,333]", True), ("[1,]", False), ("[", False)]:
        assert c.accepts(data) == want, data


def test_undefined_symbol_in_ir() -> None:
    g = Grammar(rules={"s": Rule("s", (("X",),))}, lexemes={}, start="s")
    with pytest.raises(GrammarSyntaxError, match="undefined symbol 'X'"):
        CompiledGrammar(g)


def test_unproductive_start() -> None:
    g = Grammar(rules={"s": Rule("s", (("s",),))}, lexemes={}, start="s")
    with pytest.raises(GrammarSyntaxError, match="derives no finite string"):
        CompiledGrammar(g)


# --- matcher behaviour ------------------------------------------------------------------------
def test_matcher_masks_eos_rollback_and_forced_bytes(small_vocab: Vocabulary) -> None:
    assert compile_lark('start: "hello" NAME\nNAME: /[a-z]+/\n%ignore " "', small_vocab
                        ).matcher().forced_bytes() == b""  # a leading space is allowed
    c = compile_lark('start: "hello" " " NAME\nNAME: /[a-z]+/', small_vocab)
    m = c.matcher()
    ids = {t: i for i, t in enumerate(small_vocab.tokens)}
    assert m.forced_bytes() == b"hello"
    mask = m.mask()
    assert mask.shape == (small_vocab.logit_width,)
    assert set(np.flatnonzero(mask)) == {ids[b"h"], ids[b"he"], ids[b"hello"]}
    m.advance(ids[b"hello"])
    assert not m.is_accepting() and not m.mask()[small_vocab.eos_token_ids[0]]
    with pytest.raises(TokenRejected):
        m.advance(ids[b"1"])
    m.advance(ids[b" "])
    m.advance(ids[b"x"])
    assert m.is_accepting() and m.mask()[small_vocab.eos_token_ids[0]]
    assert not m.mask()[len(small_vocab.tokens):].any()  # padding ids never allowed
    m.rollback(1)
    assert m.validate_tokens([ids[b"x"], ids[b"y"], ids[b"1"]]) == 2
    assert compile_lark('start: "hello" NAME\nNAME: /[a-z]+/', small_vocab).accepts("hellohe")


def test_mask_crosses_several_lexemes_in_one_token(small_vocab: Vocabulary) -> None:
    c = compile_lark('start: "{" STR ":" VAL "}"\nSTR: /"[a-z]*"/\nVAL: "true"', small_vocab)
    m = c.matcher()
    ids = {t: i for i, t in enumerate(small_vocab.tokens)}
    assert m.mask()[ids[b'{"']]  # "{" then the start of STR
    m.advance(ids[b'{"'])
    m.advance(ids[b"a"])
    assert m.mask()[ids[b'":']] and not m.mask()[ids[b'",']]  # ends STR, then ":"
    m.advance(ids[b'":'])
    m.advance(ids[b"true"])
    m.advance(ids[b"}"])
    assert m.is_accepting()


def test_compile_gbnf_entry_point(small_vocab: Vocabulary) -> None:
    c = compile_gbnf('root ::= "he" "llo"+', small_vocab)
    assert c.accepts("hellollo") and not c.accepts("he")


# --- shipped grammars -------------------------------------------------------------------------
def test_shipped_grammar_names_and_headers() -> None:
    assert {"json", "arithmetic", "sql", "csv", "list", "tool_call", "chess"} <= set(
        grammars.names())
    for name in grammars.names():
        text = grammars.load(name)
        assert text.startswith(f"// {name}:"), name  # header says what it accepts
        lark.Lark(text)
    with pytest.raises(KeyError, match="available"):
        grammars.load("nope")


SHIPPED_EXAMPLES = {
    "json": (['{"a": [1, -2.5e3, true, null, "x\\n\\u00e9"]}', " [ ] ", '"s"'],
             ["[1,]", '{"a" 1}', "01", '"\\x"', "tru"]),
    "arithmetic": (["-(1 + 2.5) * 3 / x", "1", "a_b*(c)"], ["1 +", "(1", "1..2", "*2"]),
    "sql": (["SELECT a, b AS c FROM t WHERE a = 1 AND b LIKE 'x%' ORDER BY a DESC LIMIT 3;",
             "select * from t", "SELECT count(*) FROM t GROUP BY x"],
            ["SELECT FROM t", "SELECT a", "SELECT a FROM t WHERE"]),
    "csv": (['a,b,"c""d"\n1,2,3\n', "x", 'a,"b\nc"'], ['a,"b', 'a"b']),
    "list": (["- milk\n- eggs\n"], ["- milk", "milk\n", "- \n"]),
    "tool_call": (['get_weather(city="Paris", days=3)', 'search("x", limit=10); f()',
                   "f([1, {\"a\": null}])"], ["f(", "f(x=)", "f(1, x=2, 3)"]),
    "chess": (["1. e4 e5 2. Nf3 Nc6 3. Bb5 a6 4. O-O 1-0", "1. d4", "1/2-1/2",
               "1. exd8=Q+ Qh4xe1#"], ["1. e9", "e4", "1. e4  e5", "1. Ke"]),
}


@pytest.mark.parametrize("name", sorted(SHIPPED_EXAMPLES))
def test_shipped_grammars_agree_with_lark(name: str) -> None:
    text = grammars.load(name)
    cg = CompiledGrammar(lark_to_grammar(text))
    good, bad = SHIPPED_EXAMPLES[name]
    lalr = lark.Lark(text, parser="lalr")  # every shipped grammar is LALR(1) as well
    for data in good + bad:
        want = lark_accepts(text, data)
        assert want == (data in good), f"example mislabelled: {data!r}"
        try:
            lalr.parse(data)
            assert want, f"LALR accepts {data!r}, Earley does not"
        except lark.exceptions.LarkError:
            assert not want, f"LALR rejects {data!r}, Earley accepts"
        assert cg.accepts(data.encode()) == want, data


@pytest.mark.parametrize("data", ["?", "?a", "a?", "a?+", "??", "?+a", "a?b", "+?"])
def test_trailing_negative_lookahead_matches_lark(data: str, small_vocab: Vocabulary) -> None:
    g = 'start: (OP | NAME)+\nOP: /[+*]|[?](?![a-z])/\nNAME: /[a-z]+/'
    assert accepts(g, data) == lark_accepts(g, data)
    # the token mask honours the rule too: after "?", no letter may follow
    m = compile_lark(g, small_vocab).matcher()
    ids = {t: i for i, t in enumerate(small_vocab.tokens)}
    m.advance(ids[b"?"])
    mask = m.mask()
    assert not mask[ids[b"a"]] and mask[ids[b"+"]] and mask[ids[b"?"]]


def test_options_that_change_terminals_are_unsupported() -> None:
    with pytest.raises(GrammarUnsupported, match="edit_terminals"):
        lark_to_grammar('start: "a"', edit_terminals=lambda t: t)
    with pytest.raises(GrammarUnsupported, match="custom Lark lexer"):
        lark_to_grammar('start: "a"', lexer=object)
    # tree-shaping options are accepted and do not change the language
    assert accepts('start: "a" "b"', "ab", keep_all_tokens=True, maybe_placeholders=False)
