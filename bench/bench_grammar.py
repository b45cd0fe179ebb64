"""Lark grammar benchmark: ours vs llguidance and xgrammar (Lark input), same run, one thread.

    python bench/bench_grammar.py                 # table + bench/results/grammar.json
    python bench/bench_grammar.py --engines ours  # only our engine (no peer environment needed)

Cases: JSON as a Lark grammar with ``%ignore`` whitespace and with explicit whitespace
rules, arithmetic, the SQL SELECT subset (shipped grammars) and a larger corpus grammar
(syncode's C grammar). Every engine gets the same vocabulary (Llama-3 128k by default) and
teacher-forces the same valid inputs (greedy longest-match tokenization): per token it
fills a bitmask (timed) and advances; EOS must be allowed at the end. Cold pass = first
pass over a freshly compiled grammar; warm = the same inputs again; each case is run
``--repeat`` times from a fresh compile and the per-step minimum kept (filters scheduler
noise on a shared machine; every repetition stays cold). The measuring loop is
bench_regex.py's (shared), run in a subprocess per case and engine, the engines
alternating case by case (peers in bench/.venv-peers, created by bench/peers/setup.sh).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS",
             "TVM_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))

import bench_regex as br

import grammars

JSON_EXPLICIT_WS = r"""
?start: _ws value _ws
?value: object | array | STRING | NUMBER | "true" | "false" | "null"
array  : "[" _ws [value _ws ("," _ws value _ws)*] "]"
object : "{" _ws [pair _ws ("," _ws pair _ws)*] "}"
pair   : STRING _ws ":" _ws value
_ws: WS?
STRING: /"(?:[^"\\\x00-\x1f]|\\["\\\/bfnrt]|\\u[0-9a-fA-F]{4})*"/
NUMBER: /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/
WS: /[ \t\n\r]+/
"""

JSON_DOCS = [
    '{"name": "Alice", "age": 30, "emails": ["alice@example.com", "a@b.org"], "admin": false}',
    ('[\n  {"id": 1, "tags": ["x", "y"], "score": 9.75, "meta": null},\n'
     '  {"id": 2, "tags": [], "score": -1.5e3, "meta": {"nested": {"deep": [1, 2, 3]}}}\n]'),
    '{"text": "Line with \\"quotes\\" and \\\\ backslash \\u00e9", "ok": true, "n": 0}',
]
C_PROGRAM = """int add(int a, int b) {
    int c = a + b * 2;
    while (c > 10) { c = c - 1; }
    if (c == 3) { return c; } else { print(c); }
    return c;
}
void main() {
    int x = add(1, 2);
    for (int i = 0; i < 10; i = i + 1) { x = x + i; }
}
"""


def _c_grammar() -> str:
    path = REPO.parent / "shared" / "corpora" / "lark" / "grammars" / "syncode" / "c_grammar.lark"
    return path.read_text(encoding="utf-8") if path.exists() else ""


CASES: list[tuple[str, str, list[str]]] = [
    ("json", grammars.load("json"), JSON_DOCS),
    ("json_ws", JSON_EXPLICIT_WS, JSON_DOCS),
    ("arith", grammars.load("arithmetic"),
     ["-(12 + 2.5) * 3 / x", "((a_1 + b) * (c - 42)) / -d + 7 * 7 * 7", "1"]),
    ("sql", grammars.load("sql"),
     [("SELECT name, age AS years FROM users WHERE age >= 18 AND name LIKE 'A%' "
       "ORDER BY age DESC LIMIT 10;"),
      ("select u.id, count(*) from users as u join orders as o on u.id = o.user_id "
       "group by u.id"),
      "SELECT * FROM t WHERE NOT (a = 1 OR b IN (1, 2, 3)) AND c IS NOT NULL"]),
    ("c", _c_grammar(), [C_PROGRAM]),
]


class Ours(br.Ours):
    name = "ours"

    def __init__(self, *a: Any) -> None:
        br.Engine.__init__(self, *a)
        from constrained.masks.trie import TokenTrie
        from constrained.vocab import Vocabulary

        self.vocab = Vocabulary.from_tokens(self.tokens, eos_token_ids=[self.eos],
                                            special_token_ids=sorted(self.special),
                                            logit_width=self.width)
        TokenTrie.for_vocab(self.vocab).slices  # per-vocabulary setup (trie, kernels, slices), like the peers' tokenizer info
        # process-level one-time work (imports, Lark's own grammar-of-grammars parser),
        # counted in setup like the peers' tokenizer preparation
        self.compile('start: "a"i').matcher().mask()

    def compile(self, text: str) -> Any:  # type: ignore[override]
        from constrained.grammar import GrammarConstraint, lark_to_grammar

        return GrammarConstraint(lark_to_grammar(text), self.vocab)


class XGrammar(br.XGrammar):
    name = "xgrammar"

    def compile(self, text: str) -> Any:  # type: ignore[override]
        compiler = self.xgr.GrammarCompiler(self.info, max_threads=1, cache_enabled=False)
        return compiler.compile_grammar(self.xgr.Grammar.from_lark(text))


class LLGuidance(br.LLGuidance):
    name = "llguidance"

    def compile(self, text: str) -> Any:  # type: ignore[override]
        return self.llg.LLMatcher.grammar_from_lark(text)


ENGINES = ("ours", "llguidance", "xgrammar")


def _merge_rounds(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """One case's results over two workers: per-step minima of both, the faster
    compile and first mask, correct only if both were."""
    if old is None or "error" in old:
        return new
    if "error" in new:
        return old
    out = dict(new)
    out["compile_ms"] = min(old["compile_ms"], new["compile_ms"])
    out["ttfm_ms"] = min(old["ttfm_ms"], new["ttfm_ms"])
    out["correct"] = old["correct"] and new["correct"]
    for p in ("cold", "warm"):
        mask = np.minimum(old[p]["mask_steps"], new[p]["mask_steps"]).tolist()
        adv = np.minimum(old[p]["advance_steps"], new[p]["advance_steps"]).tolist()
        out[p] = {"mask": br._stats(mask), "advance": br._stats(adv), "mask_steps": mask,
                  "advance_steps": adv}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vocab", default="llama-bpe")
    ap.add_argument("--engines", default=",".join(ENGINES))
    ap.add_argument("--cases", default=",".join(c[0] for c in CASES))
    ap.add_argument("--peers-python", default=str(br.PEERS_PY))
    ap.add_argument("--out", default=str(HERE / "results" / "grammar.json"))
    ap.add_argument("--repeat", type=int, default=3,
                    help="cold repetitions (fresh compile each); per-step minimum kept")
    ap.add_argument("--rounds", type=int, default=2,
                    help="workers per (case, engine), spread over the run; per-step minimum "
                         "across all of them")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    cases = args.cases.split(",")
    if args.worker:
        br.CASES = CASES
        br.ADAPTERS = {"ours": Ours, "xgrammar": XGrammar, "llguidance": LLGuidance}
        print(json.dumps(br.run_engine(args.worker, args.vocab, cases, args.repeat)))
        return
    all_res: dict[str, Any] = {}
    engines: list[tuple[str, str]] = []
    for eng in args.engines.split(","):
        py = sys.executable if eng == "ours" else args.peers_python
        if not Path(py).exists():
            print(f"[{eng}] skipped: {py} missing (run bench/peers/setup.sh)", file=sys.stderr)
            continue
        engines.append((eng, py))
    env = dict(os.environ, PYTHONPATH=str(REPO))
    # one worker per (case, engine) and round, engines alternating case by case: a
    # machine that slows down for a minute (shared hosts do) then slows every engine's
    # run of a case alike, instead of all the cases of whichever engine ran during it;
    # the rounds repeat the whole sequence, and per step the fastest of all the workers'
    # repetitions is kept (one slow stretch moved our cold means by up to 40% between
    # single-round runs of the same code, 2026-12-08)
    for rnd in range(args.rounds):
        for name in cases:
            for eng, py in engines:
                proc = subprocess.run([py, __file__, "--worker", eng, "--vocab", args.vocab,
                                       "--cases", name, "--repeat", str(args.repeat)],
                                      capture_output=True, text=True, env=env,
                                      cwd=str(REPO), check=False)
                if proc.returncode != 0:
                    print(f"[{eng}] {name} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
                    continue
                got = json.loads(proc.stdout.strip().splitlines()[-1])
                merged = all_res.setdefault(eng, {**got, "cases": {}})
                merged["setup_s"] = min(merged["setup_s"], got["setup_s"])
                for case, res in got["cases"].items():
                    merged["cases"][case] = _merge_rounds(merged["cases"].get(case), res)
                print(f"[{eng}] {name} round {rnd + 1} done (setup {got['setup_s']:.2f} s)",
                      file=sys.stderr)

    header = (f"{'case':<8} {'engine':<11} {'ttfm ms':>8} | {'cold mean':>9} {'p50':>7} "
              f"{'p99':>8} {'max':>8} | {'warm mean':>9} {'p50':>6} {'p99':>7} {'max':>7} | "
              f"ok  | cold/llg warm/llg")
    print(f"\nvocabulary {args.vocab}; ttfm = compile + first mask (ms); masks in us; "
          f"one thread; per-step min over {args.rounds} rounds x {args.repeat} cold "
          "repetitions\n")
    print(header)
    print("-" * len(header))
    for name in cases:
        llg = all_res.get("llguidance", {}).get("cases", {}).get(name, {})
        for eng, r in all_res.items():
            c = r["cases"].get(name)
            if c is None:
                continue
            if "error" in c:
                print(f"{name:<8} {eng:<11} ERROR {c['error'][:110]}")
                continue
            cold, warm = c["cold"]["mask"], c["warm"]["mask"]
            ratios = []
            for p in ("cold", "warm"):
                ref = llg.get(p, {}).get("mask", {}).get("mean_us") if "error" not in llg else None
                ratios.append(c[p]["mask"]["mean_us"] / ref if ref else None)
            c["cold_mean_vs_llguidance"], c["warm_mean_vs_llguidance"] = ratios
            print(f"{name:<8} {eng:<11} {c['ttfm_ms']:>8.1f} | "
                  f"{cold['mean_us']:>9.1f} {cold['p50_us']:>7.1f} {cold['p99_us']:>8.1f} "
                  f"{cold['max_us']:>8.1f} | {warm['mean_us']:>9.1f} {warm['p50_us']:>6.1f} "
                  f"{warm['p99_us']:>7.1f} {warm['max_us']:>7.1f} | "
                  f"{'yes' if c['correct'] else 'NO ':<3} | {br._fmt(ratios[0], '>8.2f')} "
                  f"{br._fmt(ratios[1], '>8.2f')}")
    for r in all_res.values():
        for c in r["cases"].values():
            c.pop("mask_hashes", None)
            for p in ("cold", "warm"):
                if p in c:
                    c[p].pop("mask_steps", None)
                    c[p].pop("advance_steps", None)
    meta = {"vocab": args.vocab, "repeat": args.repeat, "rounds": args.rounds,
            "python": platform.python_version(),
            "machine": platform.machine(), "cpu_count": os.cpu_count(), "threads": 1,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "results": all_res}, indent=1))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
