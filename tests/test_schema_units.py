"""Unit tests of the JSON Schema compiler's parts against independent references:
Python's own arithmetic (digit automata), ``re`` (patterns), jsonschema's format checker,
``json.dumps`` layouts (whitespace policies), and the error contract."""
from __future__ import annotations

import json
import random
import re
from decimal import Decimal
from typing import Any

import pytest

from constrained.automata import LazyDFA
from constrained.errors import SchemaError, SchemaUnsatisfiable, SchemaUnsupported
from constrained.schema import numeric, schema_to_grammar, schema_to_language
from constrained.schema.ecma import EcmaUnsupported, ecma_to_python
from constrained.schema.formats import FORMATS, format_node
from constrained.schema.jsontext import strings_except
from tests.test_schema_helpers import acceptor, policy_dumps, reference_validator


# ------------------------------------------------------------------ numeric
@pytest.mark.parametrize("seed", range(4))
def test_integer_ranges_match_python_comparisons(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(25):
        lo = rng.choice([None, rng.randint(-3000, 3000)])
        hi = rng.choice([None, rng.randint(-3000, 3000)])
        dfa = LazyDFA([numeric.integer_range(lo, hi, 4)])
        for v in list(range(-10005, 10005, 53)) + [lo or 0, hi or 0, (lo or 0) - 1, (hi or 0) + 1]:
            expect = (lo is None or v >= lo) and (hi is None or v <= hi) and abs(v) <= 9999
            assert dfa.matches(str(v).encode()) == expect, (lo, hi, v)
        for text in ("-0", "01", "+1", "1.0", "1e2", ""):
            assert not dfa.matches(text.encode())


@pytest.mark.parametrize("seed", range(4))
def test_decimal_ranges_match_decimal_comparisons(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(25):
        lo = rng.choice([None, Decimal(rng.randint(-400, 400)) / rng.choice([1, 10, 100])])
        hi = rng.choice([None, Decimal(rng.randint(-400, 400)) / rng.choice([1, 10, 100])])
        lo_ex, hi_ex = rng.random() < 0.5, rng.random() < 0.5
        dfa = LazyDFA([numeric.decimal_range(lo, lo_ex, hi, hi_ex, 4, 3)])
        for _ in range(200):
            text = rng.choice(["%d" % rng.randint(-500, 500), "%.1f" % rng.uniform(-5, 5),
                               "%.2f" % rng.uniform(-5, 5), "%.3f" % rng.uniform(-50, 50),
                               "%.4f" % rng.uniform(-5, 5), "0.0", "-0.0", "-0"])
            v = Decimal(text)
            expect = ((lo is None or (v > lo if lo_ex else v >= lo)) and (hi is None or (v < hi if hi_ex else v <= hi))
                      and ("." not in text or len(text.split(".")[1]) <= 3)
                      and not (text.startswith("-") and v == 0))
            assert dfa.matches(text.encode()) == expect, (lo, lo_ex, hi, hi_ex, text)


@pytest.mark.parametrize("m", [2, 4, 5, 8, 10, 25, 40, 7])
def test_integer_multiples(m: int) -> None:
    for lo, hi in [(None, None), (-50, None), (None, 77), (-1000, 1000)]:
        try:
            dfa = LazyDFA([numeric.integer_multiples(m, lo, hi, 4)])
        except numeric.NumericUnsupported:
            assert m == 7 and (lo is None or hi is None)  # refused only when not decidable here
            continue
        for v in range(-10100, 10100, 3):
            expect = (lo is None or v >= lo) and (hi is None or v <= hi) and abs(v) <= 9999 and v % m == 0
            assert dfa.matches(str(v).encode()) == expect, (m, lo, hi, v)


def test_float_bounds_agree_with_jsonschema() -> None:
    schema = {"type": "number", "exclusiveMinimum": 0.1, "maximum": 2.675}
    accepts = acceptor(schema)
    val = reference_validator(schema)
    for text in ["0.1", "0.10", "0.1000001", "0.11", "2.675", "2.6750", "2.6751", "1", "0", "3", "2.67"]:
        assert accepts(text.encode()) == val.is_valid(json.loads(text)), text


# ------------------------------------------------------------------ ECMA patterns
PATTERNS = ["^a+$", "abc", "^\\d{3}-\\d{4}$", "[a-z]{2,}", "^(foo|bar)[0-9]*$", "x|^y$", "^[^\\s]+$",
            "\\w+@\\w+\\.com", "^[A-Z][a-z]*( [A-Z][a-z]*)*$", "^.{2,4}$", "a{2}", "^\\$[0-9]+(\\.[0-9]{2})?$"]
SAMPLES = ["", "a", "aaa", "abc", "xabcx", "123-4567", "12-4567", "foo", "bar12", "foox", "y", "xy", "ab c",
           "me@site.com", "Hello World", "hello World", "ab", "abcde", "a{,2}", "$12.50", "$1.5", "\n", "é", "ab\n"]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_ecma_patterns_have_search_semantics(pattern: str) -> None:
    accepts = acceptor({"type": "string", "pattern": pattern})
    val = reference_validator({"type": "string", "pattern": pattern})
    for s in SAMPLES:
        ok = accepts(json.dumps(s, ensure_ascii=False).encode())
        if ok:
            assert val.is_valid(s), (pattern, s)  # sound against the reference validator
        if s.isascii() and "\n" not in s:
            # jsonschema runs Python's re.search; it agrees with ECMA-262 on such strings
            assert ok == val.is_valid(s), (pattern, s)


@pytest.mark.parametrize("pattern", ["^\\D+$", "^[^\\d]+$", "^\\W$", "^\\S+$", "^\\s$", "^[\\w-]+$", "^[^\\s\\W]+$"])
def test_shorthand_classes_are_sound_for_the_reference_validator(pattern: str) -> None:
    # jsonschema runs patterns with Python's Unicode re; ECMA-262 reads \d \w \s as ASCII/ECMA
    # sets: whatever we accept must satisfy both readings
    accepts = acceptor({"type": "string", "pattern": pattern})
    val = reference_validator({"type": "string", "pattern": pattern})
    for s in ["\u0663", "a", "1", "\ufeff", " ", "\u00a0", "\u00e9", "-", "_", "x1", "\u2028"]:
        if accepts(json.dumps(s, ensure_ascii=False).encode()):
            assert val.is_valid(s), (pattern, s)


def test_ecma_specifics() -> None:
    # \d is ASCII in ECMA, '.' excludes line terminators, '$' only at the very end
    assert not re.fullmatch(ecma_to_python("^\\d$"), "\u0663")
    assert not re.fullmatch(ecma_to_python("^.$"), "\u2028")
    assert not re.fullmatch(ecma_to_python("^a$"), "a\n")
    assert re.fullmatch(ecma_to_python("^a{,2}$"), "a{,2}")  # not a quantifier in ECMA-262
    assert re.fullmatch(ecma_to_python("^\\uD83D\\uDE00$"), "\U0001F600")
    for bad in ["(?=a)", "(?<!a)b", "(a)\\1", "\\bword", "\\p{L}", "a(^b)"]:
        with pytest.raises(EcmaUnsupported):
            ecma_to_python(bad)
    with pytest.raises(SchemaUnsupported, match="pattern.*at /pattern"):
        schema_to_language({"type": "string", "pattern": "(?=x)"})
    assert schema_to_language({"type": "string", "pattern": "(?=x)"}, lenient=True) is not None


# ------------------------------------------------------------------ formats
FORMAT_SAMPLES = {
    "date": ["2020-02-29", "2021-02-29", "1900-02-29", "2000-02-29", "0000-01-01", "2021-13-01", "2021-4-01"],
    "date-time": ["2020-01-01T00:00:00Z", "2020-01-01t00:00:00.123+05:30", "2020-01-01T24:00:00Z",
                  "2020-01-01 00:00:00Z", "2020-01-01T00:00:00"],
    "time": ["12:00:00Z", "12:00:00.5-01:00", "25:00:00Z", "12:60:00Z", "12:00:00"],
    "ipv4": ["1.2.3.4", "255.255.255.255", "256.1.1.1", "01.2.3.4", "1.2.3"],
    "ipv6": ["::1", "::", "1:2:3:4:5:6:7:8", "::ffff:1.2.3.4", "1::2::3", "12345::", "1:2:3:4:5:6:7:8:9"],
    "uuid": ["2eb8aa08-aa98-11ea-b4aa-73b441d16380", "2eb8aa08aa9811eab4aa73b441d16380", "2eb8aa08-aa98-11ea-b4aa-73b441d1638"],
    "email": ["a@b.com", "first.last@ex-ample.org", "a@@b", "@b.com", "a b@c.com"],
    "json-pointer": ["", "/a/b", "/a~0b/~1", "a/b", "/a~2"],
}


@pytest.mark.parametrize("fmt", sorted(FORMAT_SAMPLES))
def test_formats_are_sound_against_jsonschema(fmt: str) -> None:
    dfa = LazyDFA([format_node(fmt)])
    checker = reference_validator({}).format_checker
    for s in FORMAT_SAMPLES[fmt]:
        if dfa.matches(s.encode()):
            assert checker.conforms(s, fmt), (fmt, s)


def test_dates_agree_exactly_with_jsonschema() -> None:
    dfa = LazyDFA([format_node("date")])
    checker = reference_validator({}).format_checker
    for y in list(range(12)) + list(range(396, 404)) + list(range(1896, 1904)) + [2000, 9999]:
        for m in range(14):
            for d in range(33):
                s = "%04d-%02d-%02d" % (y, m, d)
                assert dfa.matches(s.encode()) == checker.conforms(s, "date"), s


def test_known_formats_compile() -> None:
    for fmt in FORMATS:
        assert LazyDFA([format_node(fmt)]).start > 0
    with pytest.raises(SchemaUnsupported, match="format.*unknown format 'iri'"):
        schema_to_language({"type": "string", "format": "iri"})


# ------------------------------------------------------------------ strings / keys
def test_strings_except_is_the_complement_of_a_word_set() -> None:
    words = ["", "a", "ab", "abc", "b", "é", "zz"]
    dfa = LazyDFA([strings_except(words)])
    for s in ["", "a", "ab", "abc", "abcd", "b", "c", "é", "ée", "z", "zz", "zzz", "ac", "\u2028"]:
        assert dfa.matches(s.encode()) == (s not in words), s


def test_string_lengths_count_code_points_and_escapes() -> None:
    accepts = acceptor({"type": "string", "minLength": 2, "maxLength": 3})
    for s in ["a", "ab", "abc", "abcd", "é😀", "\n\"", "\\\\\\\\"]:
        assert accepts(json.dumps(s, ensure_ascii=False).encode()) == (2 <= len(s) <= 3), s
    assert accepts(b'"\\u000a\\u001F"')  # control characters may use \\u00XX in any case


# ------------------------------------------------------------------ layouts and options
OBJ_SCHEMA = {"type": "object", "properties": {"a": {"type": "array", "items": {"type": "integer"}},
                                               "b": {"type": "object", "properties": {"c": {"type": "null"}},
                                                     "additionalProperties": False}},
              "additionalProperties": False}
OBJ = {"a": [1, 2], "b": {"c": None}}


def test_whitespace_policies() -> None:
    flexible = acceptor(OBJ_SCHEMA)
    compact = acceptor(OBJ_SCHEMA, whitespace="compact")
    indented = acceptor(OBJ_SCHEMA, indent=2)
    assert flexible(json.dumps(OBJ).encode()) and flexible(json.dumps(OBJ, indent=1).encode())
    assert not flexible((" " + json.dumps(OBJ)).encode())  # nothing around the document
    assert not flexible(json.dumps(OBJ, indent=9).encode())  # runs bounded by max_whitespace
    assert compact(json.dumps(OBJ, separators=(",", ":")).encode()) and not compact(json.dumps(OBJ).encode())
    assert indented(json.dumps(OBJ, indent=2).encode()) and not indented(json.dumps(OBJ).encode())
    assert indented(json.dumps({"a": [], "b": {}}, indent=2).encode())


def test_additional_properties_option_and_order_policy() -> None:
    schema = {"type": "object", "properties": {"x": {"type": "integer"}, "y": {"type": "string"}}}
    spec = acceptor(schema)
    strict = acceptor(schema, additional_properties=False)
    assert spec(b'{"x": 1, "z": [1, {"q": null}]}') and not strict(b'{"x": 1, "z": 2}')
    assert spec(b'{"x": 1, "y": "a"}') and not spec(b'{"y": "a", "x": 1}')  # declared order
    assert not spec(b'{"x": 1, "x": 2}')  # a declared key never repeats
    assert strict(b"{}") and strict(b'{"y": "a"}')


def test_recursion_goes_through_the_grammar() -> None:
    schema = {"$defs": {"t": {"type": "array", "items": {"$ref": "#/$defs/t"}}}, "$ref": "#/$defs/t"}
    g = schema_to_grammar(schema)
    assert any(r.name.startswith("ref_") for r in g.rules.values())
    accepts = acceptor(schema)
    deep = "[" * 40 + "]" * 40
    assert accepts(deep.encode()) and not accepts(("[" * 40 + "]" * 39).encode())


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize("schema, error, text", [
    ({"type": "strin"}, SchemaError, "not a JSON Schema type"),
    ({"$ref": "#/$defs/missing"}, SchemaError, "does not resolve"),
    ({"$ref": "#nope"}, SchemaError, "no anchor"),
    ({"$ref": "https://example.com/other.json"}, SchemaUnsupported, "outside this document"),
    ({"properties": {"a": {"format": "no-such-format", "type": "string"}}}, SchemaUnsupported,
     "at /properties/a/format"),
    ({"allOf": [{"type": "string"}, {"type": "integer"}]}, SchemaUnsatisfiable, "accepts no JSON value"),
    ({"type": "integer", "minimum": 5, "maximum": 4}, SchemaUnsatisfiable, "accepts no JSON value"),
    ({"not": {"minimum": 3}}, SchemaUnsupported, "not: only negated types, string values and {} are supported (at /not"),
    ({"if": {"type": "string"}, "then": {"minLength": 2}}, SchemaUnsupported, "if: keyword not supported"),
    ({"type": "array", "uniqueItems": True}, SchemaUnsupported, "uniqueItems"),
    ({"oneOf": [{"type": "integer"}, {"minimum": 2}]}, SchemaUnsupported, "not provably disjoint"),
    ({"type": "string", "pattern": "(unclosed"}, SchemaError, "not a valid ECMA-262 regex"),
    ({"minLength": -1}, SchemaError, "non-negative integer"),
    (False, SchemaUnsatisfiable, "accepts no JSON value"),
    ([1, 2], SchemaError, "cannot use list"),
    ("{not json", SchemaError, "not valid JSON"),
])
def test_bad_schemas_raise_specific_errors(schema: Any, error: type[Exception], text: str) -> None:
    with pytest.raises(error, match=re.escape(text)):
        schema_to_language(schema)


def test_negations_and_dependencies() -> None:
    accepts = acceptor({"not": {"type": ["string", "null"]}, "type": ["string", "integer", "null"]})
    assert accepts(b"3") and not accepts(b'"x"') and not accepts(b"null")
    accepts = acceptor({"type": "string", "not": {"enum": ["a", "b"]}})
    assert accepts(b'"c"') and accepts(b'"ab"') and not accepts(b'"a"') and not accepts(b'"\\u0061"')
    accepts = acceptor({"type": "object", "properties": {"x": {"not": {}}, "y": {"type": "integer"}}})
    assert accepts(b'{"y": 1}') and not accepts(b'{"x": 1}')
    schema = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
              "dependentRequired": {"a": ["b"]}, "additionalProperties": False}
    accepts = acceptor(schema)
    val = reference_validator(schema)
    for text in ["{}", '{"a": 1}', '{"b": 1}', '{"a": 1, "b": 2}']:
        assert accepts(text.encode()) == val.is_valid(json.loads(text)), text
    schema = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
              "dependentSchemas": {"b": {"properties": {"a": {"minimum": 5}}}}, "additionalProperties": False}
    accepts = acceptor(schema)
    val = reference_validator(schema)
    for text in ["{}", '{"a": 1}', '{"b": 1}', '{"a": 1, "b": 2}', '{"a": 7, "b": 2}']:
        assert accepts(text.encode()) == val.is_valid(json.loads(text)), text


def test_contains_agrees_with_jsonschema() -> None:
    for schema in [{"contains": {"minimum": 5}}, {"type": "array", "items": {"type": "integer"}, "contains": {"const": 3}}]:
        accepts = acceptor(schema)
        val = reference_validator(schema)
        for text in ["[]", "[1]", "[5]", "[1, 6, 2]", "[3]", "[1, 3, 3]", "3", '["x", 7]']:
            assert accepts(text.encode()) == val.is_valid(json.loads(text)), (schema, text)


def test_split_lexemes_is_the_same_language() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer", "minimum": 2}, "b": {"type": "array",
              "items": {"type": "string", "maxLength": 2}, "maxItems": 3}, "c": {"enum": [1, "x"]}},
              "required": ["a"], "additionalProperties": {"type": "boolean"}}
    whole, split = acceptor(schema), acceptor(schema, split_lexemes=True)
    assert isinstance(schema_to_language(schema, split_lexemes=True), type(schema_to_grammar(schema)))
    for text in ['{"a": 2}', '{"a": 1}', '{"a": 3, "b": ["xy", ""], "c": "x"}', '{"a": 3, "b": ["xyz"]}',
                 '{"a": 3, "b": [], "z": true}', '{"a": 3, "z": 1}', '{"a": 3, "b": ["", "", "", ""]}', "{}"]:
        assert whole(text.encode()) == split(text.encode()), text


def test_unknown_option_is_an_error() -> None:
    with pytest.raises(SchemaError, match="unknown JSON Schema option"):
        schema_to_language({}, whitespaces="compact")


def test_oneof_disjoint_is_exact() -> None:
    schema = {"oneOf": [{"type": "integer"}, {"type": "string"}, {"const": None}]}
    accepts = acceptor(schema)
    assert accepts(b"3") and accepts(b'"x"') and accepts(b"null") and not accepts(b"true")
    tagged = {"oneOf": [{"type": "object", "properties": {"k": {"const": "a"}, "v": {"type": "integer"}}, "required": ["k"]},
                        {"type": "object", "properties": {"k": {"const": "b"}, "v": {"type": "string"}}, "required": ["k"]}]}
    accepts = acceptor(tagged, additional_properties=False)
    assert accepts(b'{"k": "a", "v": 1}') and accepts(b'{"k": "b", "v": "s"}') and not accepts(b'{"k": "a", "v": "s"}')


ENUM_BOUNDED = [
    # the keyword beside the bound is one the structural compiler refuses
    {"allOf": [{"enum": [[1, 2, 3], {"foo": 1}, "x", 12]}, {"not": {"not": {"type": "array"}}}]},
    {"enum": [3, 5, 15, 30, 7], "oneOf": [{"multipleOf": 3}, {"multipleOf": 5}]},
    {"enum": ["a", "b", "ab", 1], "allOf": [{"not": {"pattern": "^a"}}, {"not": {"const": 1}}]},
    {"$defs": {"v": {"const": {"k": [1, None]}}}, "$ref": "#/$defs/v", "not": {"required": ["z"]}},
    {"const": "2024-01-01", "format": "date"},
]


@pytest.mark.parametrize("schema", ENUM_BOUNDED, ids=range(len(ENUM_BOUNDED)))
def test_enum_bounded_schemas_are_their_values_that_validate(schema: Any) -> None:
    """An enum/const bound makes any schema finite: the compiled language is exactly the
    bounding values jsonschema accepts (whatever keywords sit beside the bound)."""
    check = reference_validator(schema)
    accepts = acceptor(schema)
    candidates = [[1, 2, 3], {"foo": 1}, "x", 12, 3, 5, 15, 30, 7, "a", "b", "ab", 1,
                  {"k": [1, None]}, "2024-01-01", [], None, "y"]
    n_valid = 0
    for value in candidates:
        valid = check.is_valid(value)
        n_valid += valid
        assert accepts(json.dumps(value).encode()) == valid, value
    assert n_valid >= 1


def test_many_pattern_properties_disjoint_and_overlapping_agree_with_jsonschema() -> None:
    """Six patterns, two of which overlap (``^a`` / ``b$``): only the overlapping pair
    needs a combined key language; every key/value mix agrees with jsonschema."""
    schema = {"type": "object", "patternProperties": {
        "^a": {"type": "integer"}, "b$": {"minimum": 10}, "^x_[0-9]+$": {"type": "string"},
        "^y_": {"type": "boolean"}, "^z$": {"type": "null"}, "^q:(en|nl)$": {"const": 1}},
        "additionalProperties": {"type": "array"}}
    check = reference_validator(schema)
    accepts = acceptor(schema)
    keys = ["a", "ab", "b", "xb", "x_12", "x_", "y_1", "z", "q:en", "q:de", "other"]
    values: list[Any] = [1, 12, 5.5, "s", True, None, [], [1]]
    n_valid = 0
    for k in keys:
        for v in values:
            text = json.dumps({k: v})
            valid = check.is_valid({k: v})
            n_valid += valid
            assert accepts(text.encode()) == valid, text
    assert 10 < n_valid < len(keys) * len(values)
    too_many = {"type": "object", "patternProperties": {f"{c}": {"type": "integer"} for c in "abcdefg"}}
    with pytest.raises(SchemaUnsupported, match="combinations of overlapping patterns"):
        acceptor(too_many)


ONE_OF_BY_TYPE = [
    # disjoint on objects by a discriminator; every other value matches both branches,
    # so oneOf rejects it (no "type": object written anywhere)
    {"oneOf": [{"properties": {"t": {"const": "x"}}, "required": ["t"]},
               {"properties": {"t": {"const": "y"}}, "required": ["t"]}]},
    # ansible's shape: each branch requires one spelling and negates the other's presence
    {"oneOf": [{"not": {"required": ["a"]}, "required": ["b"]},
               {"not": {"required": ["b"]}, "required": ["a"]}]},
    # a vacuous-on-strings pair beside a string branch: strings match twice, so none pass
    {"oneOf": [{"minProperties": 1}, {"maxProperties": 0}, {"type": "string"}]},
    {"not": {"required": ["a", "b"]}, "properties": {"a": {"type": "integer"}}},
    # closed objects with no common property: only {} matches both, so oneOf excludes it
    {"oneOf": [{"additionalProperties": False, "properties": {"a": {"type": "integer"}}},
               {"additionalProperties": False, "properties": {"b": {"type": "integer"}}}]},
    # a discriminator told apart by patterns, and an annotation that differs across allOf
    {"type": "object", "required": ["t"], "oneOf": [
        {"properties": {"t": {"type": "string", "pattern": "^x$"}}},
        {"properties": {"t": {"type": "string", "pattern": "^y$"}}}],
     "allOf": [{"x-note": 1}, {"x-note": 2}]},
    # an exclusive choice of fields (WashingtonPost wp_0): each branch lacks the others' names
    {"oneOf": [{"required": ["a"]}, {"required": ["b"]}]},
    {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}, "c": {}},
     "oneOf": [{"required": ["a"]}, {"required": ["b", "c"]}, {"required": ["c"]}]},
    # bitbucket-pipelines' caches: a negated name next to patternProperties of a closed object
    {"type": "object", "patternProperties": {"^[a-z]+$": {"type": "integer"}},
     "not": {"required": ["docker"]}, "additionalProperties": False},
]


@pytest.mark.parametrize("schema", ONE_OF_BY_TYPE, ids=range(len(ONE_OF_BY_TYPE)))
def test_one_of_split_by_type_and_negated_required_agree_with_jsonschema(schema: Any) -> None:
    check = reference_validator(schema)
    accepts = acceptor(schema)
    candidates: list[Any] = [{"t": "x"}, {"t": "y"}, {"t": "z"}, {}, {"a": 1}, {"b": 2},
                             {"a": 1, "b": 2}, {"a": "s"}, 5, "s", None, [], True, {"t": "x", "a": 1},
                             {"docker": 1}, {"A": 1}, {"c": 1}, {"b": "x", "c": 1}, {"a": 1, "c": 2}]
    verdicts = []
    for value in candidates:
        valid = check.is_valid(value)
        verdicts.append(valid)
        text = policy_dumps(value, schema)  # declared properties first (the policy)
        assert accepts(text.encode()) == valid, text
    assert any(verdicts) and not all(verdicts)


def test_recursion_through_a_merge_becomes_a_rule() -> None:
    """``items: {type: object, anyOf: [{$ref: node}, ...]}`` inside ``node`` merges the
    schema being compiled into a branch: the merged schema is memoised by its parts, so
    the recursion meets it again and becomes a grammar rule (was refused)."""
    schema = {"$defs": {
        "node": {"properties": {"name": {"type": "string"}, "kids": {"type": "array", "items": {
            "type": "object", "anyOf": [{"$ref": "#/$defs/node"}, {"$ref": "#/$defs/leaf"}]}}},
            "additionalProperties": False},
        "leaf": {"properties": {"v": {"type": "integer"}}, "required": ["v"], "additionalProperties": False}},
        "$ref": "#/$defs/node"}
    check = reference_validator(schema)
    accepts = acceptor(schema)
    candidates: list[Any] = [
        {"name": "a", "kids": [{"v": 1}, {"name": "b", "kids": [{"kids": [{"v": 2}]}]}]},
        {"kids": [{"v": "x"}]}, {"kids": [1]}, {"kids": [{"name": "c", "v": 1}]}, {}, "s",
        {"kids": [{"kids": [{"kids": [{"kids": []}]}]}]}, {"kids": [{"v": 1, "w": 2}]}]
    verdicts = []
    for value in candidates:
        valid = check.is_valid(value)
        verdicts.append(valid)
        assert accepts(json.dumps(value).encode()) == valid, value
    assert any(verdicts) and not all(verdicts)


NEGATIONS = [
    ({"type": "string", "not": {"pattern": "(?:lint|plugin)$"}}, ["a", "xlint", "plugin", "plug", 5]),
    # pattern holds vacuously for non-strings, so its negation admits strings only
    ({"not": {"pattern": "^a"}}, ["a", "ba", 5, None, [], "", "abc", 1.5]),
    ({"type": ["string", "integer"], "not": {"pattern": "^a"}}, ["a", "ba", 5, None]),
    ({"type": "object", "not": {"allOf": [{"required": ["site"]}, {"required": ["app"]}]}},
     [{}, {"site": 1}, {"app": 1}, {"site": 1, "app": 2}, 5]),
    # two different negations in allOf (ansible's tasks): both hold
    ({"allOf": [{"not": {"required": ["site"]}}, {"not": {"required": ["app"]}}]},
     [{}, {"site": 1}, {"app": 1}, {"site": 1, "app": 2}, {"x": 1}, 5, "s"]),
]


@pytest.mark.parametrize("schema,candidates", NEGATIONS, ids=range(len(NEGATIONS)))
def test_negated_patterns_and_required_agree_with_jsonschema(schema: Any, candidates: list[Any]) -> None:
    check = reference_validator(schema)
    accepts = acceptor(schema)
    verdicts = [check.is_valid(c) for c in candidates]
    for value, valid in zip(candidates, verdicts):
        assert accepts(json.dumps(value).encode()) == valid, value
    assert any(verdicts) and not all(verdicts)


def test_nesting_past_the_cap_is_refused_with_its_pointer(monkeypatch: pytest.MonkeyPatch) -> None:
    """The guard against a recursion through merges that never closes: past
    MAX_NESTING containers compilation stops with SchemaUnsupported (cap lowered here)."""
    from constrained.schema import compiler

    monkeypatch.setattr(compiler, "MAX_NESTING", 2)
    deep = {"type": "object", "properties": {"a": {"type": "array", "items": {
        "type": "object", "properties": {"b": {"type": "array", "items": {"type": "integer"}}}}}}}
    with pytest.raises(SchemaUnsupported, match="does not close"):
        acceptor(deep)
    monkeypatch.setattr(compiler, "MAX_NESTING", 48)
    assert acceptor(deep)(b'{"a": [{"b": [1]}]}')


def test_a_schema_merged_with_itself_keeps_one_copy_of_its_choices() -> None:
    """allOf members that are the same schema conjoin to it: its anyOf groups are not
    multiplied (nine copies of a two-branch anyOf were 512 combinations, over the cap;
    WashingtonPost's author/reference recursion met that at every level)."""
    schema = {"$defs": {"x": {"anyOf": [{"type": "integer"}, {"type": "string", "maxLength": 2}]}},
              "allOf": [{"$ref": "#/$defs/x"} for _ in range(9)],
              "properties": {"k": {"allOf": [{"$ref": "#/$defs/x"}, {"$ref": "#/$defs/x"}]}}}
    check = reference_validator(schema)
    accepts = acceptor(schema)
    for value in [1, "ab", "abc", None, {"k": 1}, 2.5, [1]]:
        assert accepts(json.dumps(value).encode()) == check.is_valid(value), value
