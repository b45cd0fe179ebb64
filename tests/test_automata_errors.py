"""Bad input fails loudly: malformed patterns, each unsupported construct (named, with
its character offset), possessive/atomic forms that would change the language, and
resource blow-ups (raise ConstraintTooComplex instead of hanging)."""
from __future__ import annotations

import re

import pytest

from constrained.automata import LazyDFA, Limits, parse_regex
from constrained.errors import ConstraintTooComplex, RegexSyntaxError, RegexUnsupported


@pytest.mark.parametrize("pattern,position", [
    ("(", 0), ("a{2,1}", 2), ("[a", 0), ("*a", 0), ("a)", 1), ("\\", 0),
    ("(?P<n>a)(?P<n>b)", 12), ("a\\", 1), ("(?L)a", 3), ("(?au)a", 4),
])
def test_malformed_patterns(pattern: str, position: int) -> None:
    with pytest.raises(RegexSyntaxError, match=f"at position {position}") as info:
        parse_regex(pattern)
    assert info.value.position == position  # type: ignore[attr-defined]
    with pytest.raises(re.error):
        re.compile(pattern)


def test_non_str_pattern() -> None:
    with pytest.raises(RegexSyntaxError, match="must be str"):
        parse_regex(b"abc")  # type: ignore[arg-type]


def test_bad_lookbehind_is_a_syntax_error_like_python() -> None:
    with pytest.raises(RegexSyntaxError, match="fixed-width"):
        parse_regex("(?<=a+)b")


@pytest.mark.parametrize("pattern,construct,position", [
    (r"(a)\1", "backreference", 3),
    ("(?P<x>a)(?P=x)", "backreference", 8),
    ("a(?=b)", "lookahead", 1),
    ("a(?!b)", "negative lookahead", 1),
    ("(?<=a)b", "lookbehind", 0),
    ("(?<!a)b", "negative lookbehind", 0),
    ("(a)?(?(1)b|c)", "conditional", 4),
    (r"\bfoo", r"word boundary \b", 0),
    (r"a\B", r"word boundary \B", 1),
    (r"(?x) a \b", r"word boundary \b", 7),
    ("a^b", "anchor ^", 1),
    ("^a^b", "anchor ^", 2),
    ("a$b", "anchor $", 1),
    (r"a\Ab", r"anchor \A", 1),
    (r"a\Zb", r"anchor \Z", 1),
    ("(^a)*", "anchor ^", 1),
    ("(?m)a$\nb", "anchor $", 5),
    ("[$^]a^", "anchor ^", 5),
    ("a*+a", "possessive quantifier", 2),
    ("(a|ab)++", "possessive quantifier", 7),
    ("(?>a|ab)c", "atomic group", 0),
])
def test_unsupported_constructs(pattern: str, construct: str, position: int) -> None:
    with pytest.raises(RegexUnsupported) as info:
        parse_regex(pattern)
    msg = str(info.value)
    assert construct in msg and f"position {position}" in msg, msg
    assert info.value.position == position  # type: ignore[attr-defined]


@pytest.mark.parametrize("pattern,strings", [
    ("^abc$", ["abc", "abc\n", "ab"]),
    (r"\Aabc\Z", ["abc", "abc\n"]),
    ("^(a|^b)$", ["a", "b", "ab"]),
    ("(?m)^a$", ["a", "a\n"]),
    ("(^a)?b", ["ab", "b"]),
    ("^$", ["", "\n"]),
    ("a*+b", ["aaab", "b", "ab", "aa"]),
    ("(?>ab|cd)e", ["abe", "cde", "ae"]),
    (r"[a-z]++\d", ["abc1", "1", "ab"]),
    (r"\d?+x", ["1x", "x", "11x"]),
    ("(?:ab)*+c", ["ababc", "c", "abac"]),
])
def test_allowed_anchors_and_provably_safe_possessives(pattern: str, strings: list[str]) -> None:
    dfa = LazyDFA([parse_regex(pattern)])
    for s in strings:
        assert dfa.matches(s.encode()) == bool(re.fullmatch(pattern, s)), (pattern, s)


def test_counted_repetition_blowup_raises() -> None:
    with pytest.raises(ConstraintTooComplex, match="max_nfa_states"):
        LazyDFA([parse_regex(r"(\w{100}){100}")])
    with pytest.raises(ConstraintTooComplex):
        LazyDFA([parse_regex(r"a{1000}")], Limits(max_nfa_states=500))


def test_deep_nesting_raises() -> None:
    with pytest.raises(ConstraintTooComplex, match="nested too deeply"):
        parse_regex("(" * 5000 + "a" + ")" * 5000)


def test_dfa_state_limit_raises() -> None:
    # the classic exponential DFA: the n-th byte from the end is an 'a'
    dfa = LazyDFA([parse_regex(r"[ab]*a[ab]{14}")], Limits(max_states=300))
    with pytest.raises(ConstraintTooComplex, match="max_states"):
        for i in range(5000):
            dfa.walk(dfa.start, format(i, "016b").replace("0", "a").replace("1", "b").encode())


def test_state_set_limit_raises() -> None:
    # after k bytes the NFA can be in ~k/2 copies of the body: sets grow with k
    dfa = LazyDFA([parse_regex(r"(?:a|aa){300}")], Limits(max_state_set_total=5_000))
    with pytest.raises(ConstraintTooComplex, match="max_state_set_total"):
        dfa.walk(dfa.start, b"a" * 300)


def test_nullable_counted_repeat_stays_small() -> None:
    dfa = LazyDFA([parse_regex(r"(a?){5000}")], Limits(max_state_set_total=50_000))
    assert dfa.matches(b"a" * 5000)
    assert not dfa.matches(b"a" * 5001)


def test_time_limit_raises() -> None:
    with pytest.raises(ConstraintTooComplex, match="max_seconds"):
        LazyDFA([parse_regex(r"x{60000}")], Limits(max_seconds=0.0))


def test_template_flag_refused_and_debug_flag_ignored(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(RegexUnsupported, match="TEMPLATE"):
        parse_regex("a*", 1)
    dfa = LazyDFA([parse_regex("ab", re.DEBUG)])
    assert dfa.matches(b"ab")
    assert capsys.readouterr().out == ""


def test_deep_ast_raises() -> None:
    from constrained.automata import Alt, ByteSet, Concat

    node = ByteSet.of(97)
    for _ in range(5000):
        node = Alt((Concat((node, ByteSet.of(98))), ByteSet.of(99)))
    with pytest.raises(ConstraintTooComplex, match="nested too deeply"):
        LazyDFA([node])
