"""The shared regex corpus (rust-lang/regex, outlines-core, xgrammar cases) against Python ``re``.

Reference = Python's own ``re.fullmatch`` on the row's pattern (the engine implements
Python syntax). Rows Python cannot compile must raise RegexSyntaxError. Refusals and
known failures are listed in ``tests/ratchets/regex_corpus.json``; anything else that
regresses fails, and so does a listed case that now passes (tighten the ratchet).
"""
from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any

import pytest

from constrained.automata import LazyDFA, parse_regex
from constrained.errors import RegexSyntaxError, RegexUnsupported
from tests.testdata import corpus

RATCHET = Path(__file__).parent / "ratchets" / "regex_corpus.json"
# corpus feature flags that name constructs an automaton may refuse
REFUSABLE_FEATURES = {"word_boundary", "line_anchor", "lookaround", "backref"}


def _rows() -> list[dict[str, Any]]:
    with corpus("regex_cases.jsonl").open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _pattern(row: dict[str, Any]) -> str:
    return str(row.get("pattern_with_inline_flags", row["pattern"]))


def _python_compiles(pattern: str) -> re.Pattern[str] | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return re.compile(pattern)
        except (re.error, ValueError, OverflowError):
            return None


def test_regex_corpus_against_python_re() -> None:
    ratchet = json.loads(RATCHET.read_text(encoding="utf-8"))
    known_refused: dict[str, str] = ratchet["refused"]
    known_failing: dict[str, str] = ratchet["failing"]
    rows = _rows()
    dfas: dict[str, LazyDFA | RegexUnsupported] = {}
    regressions: list[str] = []
    fixed: list[str] = []
    checked = 0
    for row in rows:
        pattern = _pattern(row)
        rx = _python_compiles(pattern)
        if rx is None:
            with pytest.raises(RegexSyntaxError), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                parse_regex(pattern)
            continue
        if pattern not in dfas:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    dfas[pattern] = LazyDFA([parse_regex(pattern)])
                except RegexUnsupported as exc:
                    dfas[pattern] = exc
        compiled = dfas[pattern]
        rid = row["id"]
        if isinstance(compiled, RegexUnsupported):
            if rid not in known_refused:
                regressions.append(f"{rid}: newly refused: {compiled}")
            elif not REFUSABLE_FEATURES & set(row["features"]):
                regressions.append(f"{rid}: refused but flagged only {row['features']}")
            continue
        if rid in known_refused:
            fixed.append(f"{rid}: no longer refused")
        checked += 1
        expected = bool(rx.fullmatch(row["string"]))
        got = compiled.matches(row["string"].encode("utf-8", "surrogatepass"))
        if got != expected:
            if rid not in known_failing:
                regressions.append(f"{rid}: {pattern!r} on {row['string']!r}: got {got}, re says {expected}")
        elif rid in known_failing:
            fixed.append(f"{rid}: now passes")
    assert not regressions, "\n".join(regressions)
    assert not fixed, "remove from tests/ratchets/regex_corpus.json:\n" + "\n".join(fixed)
    assert checked >= 400, checked


def test_corpus_rows_that_python_refuses_name_a_position() -> None:
    for row in _rows():
        pattern = _pattern(row)
        if _python_compiles(pattern) is not None:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(RegexSyntaxError, match="position"):
                parse_regex(pattern)
