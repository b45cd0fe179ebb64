"""Regex -> automaton compile benchmark (our constrained.automata only).

    python bench/bench_automata.py        # table + bench/results/automata.json

Per pattern: parse (re._parser -> byte AST), NFA build, LazyDFA init (start state),
time to expand the start row ("first mask" needs it), and a full exploration of the DFA
when it has at most 20k states. Parse/UTF-8 caches are cleared per pattern; the
one-time Unicode tables (case folding, \\d \\w \\s) are built first and reported apart.
Each time is the best of 3 runs.
"""
from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from constrained.automata import (
    ANY_BYTE,
    And,
    LazyDFA,
    Limits,
    Node,
    Not,
    Repeat,
    build_nfa,
    charsets,
    parse_regex,
    regex_syntax,
    utf8,
)
from constrained.errors import ConstraintTooComplex

WORDS = [f"{a}{b}{c}word" for a in "abcdefghij" for b in "klmnopqrst" for c in "uv"][:200]
PATTERNS: dict[str, str] = {
    "phone": r"\(\d{3}\) \d{3}-\d{4}",
    "iso_date": r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])",
    "ipv4": r"((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)",
    "email": r"[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}",
    "words200": "|".join(WORDS),
    "words200_ci": "(?i)" + "|".join(WORDS),
    "sentence": r"[A-Za-z][a-z ]{10,200}\.",
    "unicode_email": r"\w+@\w+\.com",
    "unicode_word64": r"\w{1,64}",
    "dot1000": r".{1000}",
    "ascii_word64": r"(?a)\w{1,64}",
}


REPEATS = 3  # each number is the best of REPEATS runs (the machine is shared and noisy)


def _boolean_cases() -> dict[str, Node]:
    """Intersection/complement nodes as the JSON-Schema and Lark front ends build them."""
    return {
        "and_len<=2000": And((parse_regex(r"(?s).*"), Repeat(ANY_BYTE, 0, 2000))),
        "and_not_foo": And((parse_regex(r"\w+"), Not(parse_regex(".*foo.*")))),
    }


def run_node(name: str, node: Node) -> dict[str, Any]:
    t0 = time.perf_counter()
    dfa = LazyDFA([node])
    t1 = time.perf_counter()
    dfa.transitions(dfa.start)
    t2 = time.perf_counter()
    return {"name": name, "nfa_states": dfa.nfa.n_states, "classes": dfa.n_classes,
            "dfa_init_ms": _ms(t1 - t0), "first_row_ms": _ms(t2 - t1)}


def _clear_caches() -> None:
    regex_syntax._parse_cached.cache_clear()
    utf8.utf8_ranges_node.cache_clear()
    charsets.literal_ranges.cache_clear()


def _ms(t: float) -> float:
    return round(t * 1000, 3)


def run_one(name: str, pattern: str) -> dict[str, Any]:
    _clear_caches()
    t0 = time.perf_counter()
    node = parse_regex(pattern)
    t1 = time.perf_counter()
    nfa = build_nfa([node])
    t2 = time.perf_counter()
    dfa = LazyDFA([node])  # includes its own NFA build
    t3 = time.perf_counter()
    dfa.transitions(dfa.start)
    t4 = time.perf_counter()
    row: dict[str, Any] = {
        "name": name, "parse_ms": _ms(t1 - t0), "nfa_ms": _ms(t2 - t1),
        "nfa_states": nfa.n_states, "classes": dfa.n_classes,
        "dfa_init_ms": _ms(t3 - t2), "first_row_ms": _ms(t4 - t3),
        "compile_to_first_row_ms": _ms((t1 - t0) + (t3 - t2) + (t4 - t3)),
    }
    try:
        small = LazyDFA([node], Limits(max_states=20_000))
        t5 = time.perf_counter()
        n = small.explore()
        row["explore_ms"] = _ms(time.perf_counter() - t5)
        row["dfa_states"] = n
    except ConstraintTooComplex:
        row["explore_ms"] = None
        row["dfa_states"] = ">20000"
    return row


def main() -> None:
    t = time.perf_counter()
    for kind in ("lower", "decimal", "word", "space", "iscased"):
        charsets._table(kind)
    table_ms = _ms(time.perf_counter() - t)
    rows = []
    boolean_rows: list[dict[str, Any]] = []
    for name, pat in PATTERNS.items():
        runs = [run_one(name, pat) for _ in range(REPEATS)]
        best = dict(runs[0])
        for key in list(best):
            if key.endswith("_ms") and all(r[key] is not None for r in runs):
                best[key] = min(r[key] for r in runs)
        rows.append(best)
    cols = ["name", "parse_ms", "nfa_ms", "nfa_states", "classes", "dfa_init_ms", "first_row_ms",
            "compile_to_first_row_ms", "explore_ms", "dfa_states"]
    print(f"one-time Unicode tables: {table_ms} ms")
    print(" | ".join(cols))
    for r in rows:
        print(" | ".join(str(r[c]) for c in cols))
    out = REPO / "bench" / "results" / "automata.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"python": sys.version, "machine": platform.machine(),
                               "unicode_tables_ms": table_ms, "rows": rows}, indent=1))
    print("\nintersection / complement (LazyDFA init includes the product DFA):")
    print("name | nfa_states | classes | dfa_init_ms | first_row_ms")
    for name, node in _boolean_cases().items():
        runs = [run_node(name, node) for _ in range(REPEATS)]
        best = min(runs, key=lambda r: r["dfa_init_ms"])
        boolean_rows.append(best)
        print(" | ".join(str(best[c]) for c in ("name", "nfa_states", "classes", "dfa_init_ms",
                                                  "first_row_ms")))
    out.write_text(json.dumps({"python": sys.version, "machine": platform.machine(),
                               "unicode_tables_ms": table_ms, "rows": rows,
                               "boolean_rows": boolean_rows}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
