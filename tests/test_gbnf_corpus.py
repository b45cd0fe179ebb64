"""GBNF corpus (../shared/corpora/gbnf_cases.jsonl): agreement with llama.cpp / xgrammar labels.

Rows come from llama.cpp's grammar integration tests and xgrammar's EBNF tests, labelled
by those projects. String level: our GBNF front end + lexer + Earley parser must give the
label; explained disagreements live in ``tests/ratchets/lark_gbnf.json`` (a new one fails,
a fixed one must be removed). The shipped llama.cpp grammars in ``gbnf/`` must compile.
"""
from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from constrained.errors import CompileError
from constrained.grammar import gbnf_to_grammar
from constrained.grammar.compiled import CompiledGrammar
from tests.testdata import CORPORA, corpus

RATCHET = Path(__file__).parent / "ratchets" / "lark_gbnf.json"


def load_rows() -> list[dict[str, Any]]:
    path = corpus("gbnf_cases.jsonl")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@cache
def compiled(text: str) -> CompiledGrammar | CompileError:
    try:
        return CompiledGrammar(gbnf_to_grammar(text))
    except CompileError as e:
        return e


def verdict(row: dict[str, Any]) -> str:
    cg = compiled(row["grammar"])
    if isinstance(cg, CompileError):
        return f"compile: {type(cg).__name__}: {str(cg)[:120]}"
    got = cg.accepts(row["input"].encode("utf-8"))
    if got == row["accept"]:
        return "ok"
    return "false-accept" if got else "false-reject"


def test_string_level_agreement() -> None:
    rows = load_rows()
    assert len(rows) > 100
    ratchet: dict[str, str] = json.loads(RATCHET.read_text()) if RATCHET.exists() else {}
    new, fixed = {}, []
    for row in rows:
        v = verdict(row)
        if v != "ok" and row["id"] not in ratchet:
            new[row["id"]] = v
        elif v == "ok" and row["id"] in ratchet:
            fixed.append(row["id"])
    assert not new, f"new disagreements: {new}"
    assert not fixed, f"ratchet entries now pass, remove them from {RATCHET.name}: {fixed}"


@pytest.mark.parametrize("name", ["arithmetic", "c", "chess", "english", "japanese", "json",
                                  "json_arr", "list", "vllm-sql"])
def test_shipped_llama_cpp_grammars_compile(name: str) -> None:
    path = CORPORA / "gbnf" / f"{name}.gbnf"
    if not path.exists():
        pytest.skip(f"{path} not present")
    cg = CompiledGrammar(gbnf_to_grammar(path.read_text(encoding="utf-8")))
    assert cg.initial.parser.expected


if __name__ == "__main__":  # regenerate the ratchet: python -m tests.test_gbnf_corpus
    failures = {r["id"]: v for r in load_rows() if (v := verdict(r)) != "ok"}
    RATCHET.write_text(json.dumps(dict(sorted(failures.items())), indent=1) + "\n")
    print(f"{len(failures)} ratchet entries written to {RATCHET}")
