"""JSON Schema benchmark: ours vs xgrammar, llguidance, outlines-core on real-world schemas.

    python bench/bench_schema.py                  # 500 schemas, table + bench/results/schema.json
    python bench/bench_schema.py --n 60 --engines ours,llguidance

A stratified sample of MaskBench / JSONSchemaBench schemas (round-robin over every
category, deterministic) on the Llama-3 128k vocabulary, one thread. Per engine: compile
rate (coverage), time to first mask (compile + first bitmask) p50/p99, per-token bitmask
time mean/p50/p99/max while teacher-forcing the valid instances (compact JSON, our
declared-order policy; greedy longest-match tokens), and invalid instances accepted
(every token allowed and EOS allowed at the end). Each engine runs in its own worker
process (peers from bench/.venv-peers, see bench/peers/setup.sh).
"""
from __future__ import annotations

import argparse
import collections
import gzip
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS",
             "TVM_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))

import bench_regex as br
import numpy as np

PEERS_PY = HERE / ".venv-peers" / "bin" / "python"
CORPUS = REPO.parent / "shared" / "corpora" / "maskbench.jsonl.gz"


def stratified_sample(n: int) -> list[dict[str, Any]]:
    """Round-robin over categories (file order inside each): deterministic, every category."""
    by_cat: dict[str, list[dict[str, Any]]] = collections.OrderedDict()
    with gzip.open(CORPUS, "rt") as f:
        for line in f:
            row = json.loads(line)
            by_cat.setdefault(row["category"], []).append(row)
    out: list[dict[str, Any]] = []
    i = 0
    while len(out) < n and any(i < len(v) for v in by_cat.values()):
        for rows in by_cat.values():
            if i < len(rows) and len(out) < n:
                out.append(rows[i])
        i += 1
    return out


class Ours(br.Engine):
    name = "ours"

    def __init__(self, *a: Any) -> None:
        super().__init__(*a)
        from constrained.masks.trie import TokenTrie
        from constrained.vocab import Vocabulary

        self.vocab = Vocabulary.from_tokens(self.tokens, eos_token_ids=[self.eos],
                                            special_token_ids=sorted(self.special), logit_width=self.width)
        TokenTrie.for_vocab(self.vocab)
        self.compile({"type": "string"}).matcher().mask()  # warm-up outside the timings

    def clear_caches(self) -> None:
        from constrained.schema import _CACHE

        _CACHE.items.clear()  # time real compilation

    def compile(self, schema: Any) -> Any:
        from constrained.schema import compile_json_schema

        return compile_json_schema(schema, self.vocab)

    def matcher(self, c: Any) -> Any:
        return c.matcher()

    def fill(self, m: Any, buf: Any) -> None:
        m.fill_bitmask(buf, 0)

    def advance(self, m: Any, tid: int) -> bool:
        return m.try_advance(tid)


class XGrammar(br.XGrammar):
    def compile(self, schema: Any) -> Any:
        compiler = self.xgr.GrammarCompiler(self.info, max_threads=1, cache_enabled=False)
        return compiler.compile_json_schema(json.dumps(schema), any_whitespace=True, strict_mode=False)


class LLGuidance(br.LLGuidance):
    def compile(self, schema: Any) -> Any:
        return self.llg.LLMatcher.grammar_from_json_schema(schema)


class OutlinesCore(br.OutlinesCore):
    def compile(self, schema: Any) -> Any:
        from outlines_core.json_schema import build_regex_from_schema

        return self.oc.Index(build_regex_from_schema(json.dumps(schema)), self.vocab)


ADAPTERS = {"ours": Ours, "xgrammar": XGrammar, "llguidance": LLGuidance, "outlines_core": OutlinesCore}


def _policy_text(instance: Any, schema: Any) -> str:
    from tests.test_schema_helpers import policy_dumps

    return policy_dumps(instance, schema, separators=(",", ":"))


def _run(eng: Any, compiled: Any, toks: list[int], mask_ns: list[int] | None) -> bool:
    """Teacher-force ``toks`` then EOS; True iff all allowed."""
    m = eng.matcher(compiled)
    for tid in toks + [eng.eos]:
        buf = eng.new_bitmask()
        a = time.perf_counter_ns()
        eng.fill(m, buf)
        b = time.perf_counter_ns()
        if mask_ns is not None:
            mask_ns.append(b - a)
        words = eng.to_numpy(buf)[0].astype("<i4")
        if not (int(words[tid >> 5]) >> (tid & 31)) & 1:
            return False
        if tid == eng.eos:
            return True
        if not eng.advance(m, tid):
            return False
    return True


def run_engine(engine: str, vocab_name: str, start: int, count: int, n: int) -> dict[str, Any]:
    tokens, eos, special, width = br._load_vocab(vocab_name)
    eng = ADAPTERS[engine](tokens, eos, special, width)
    ids = {t: i for i, t in reversed(list(enumerate(tokens))) if i not in special and t}
    max_len = max(len(t) for t in ids)
    rows = stratified_sample(n)[start:start + count]
    out: dict[str, Any] = {}
    for row in rows:
        res: dict[str, Any] = {"category": row["category"]}
        # the previous schema's constraint is released (and caches cleared) before the
        # clock starts: its teardown is not part of compiling the next one
        compiled = m = None
        eng.clear_caches()
        try:
            t0 = time.perf_counter_ns()
            compiled = eng.compile(row["schema"])
            m = eng.matcher(compiled)
            buf = eng.new_bitmask()
            eng.fill(m, buf)
            res["ttfm_ms"] = (time.perf_counter_ns() - t0) / 1e6
            mask_ns: list[int] = []
            valid_ok = valid_n = invalid_acc = invalid_n = 0
            for test in row["tests"]:
                text = _policy_text(test["instance"], row["schema"])
                toks = br._greedy(ids, max_len, text.encode())
                if test["valid"]:
                    valid_n += 1
                    valid_ok += _run(eng, compiled, toks, mask_ns)
                else:
                    invalid_n += 1
                    invalid_acc += _run(eng, compiled, toks, None)
            res.update(mask_ns=mask_ns, valid_ok=valid_ok, valid_n=valid_n, invalid_acc=invalid_acc,
                       invalid_n=invalid_n)
        except Exception as exc:
            res["error"] = f"{type(exc).__name__}: {exc}"[:200]
        out[row["id"]] = res
    return out


def _common_subset(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Print each engine's mask mean over the schemas every engine compiled.

    Each engine's own mean covers only the schemas it compiled, so engines with different
    coverage average over different masks; on the common subset the teacher-forced token
    sequences are the same for every engine, which makes the means comparable.
    """
    if len(results) < 2:
        return {}
    common = set.intersection(*({k for k, r in res.items() if "error" not in r} for res in results.values()))
    print(f"\nmask mean over the {len(common)} schemas every engine compiled (same token sequences):")
    out: dict[str, Any] = {"schemas": len(common)}
    for eng, res in results.items():
        ns = np.array([x for k in sorted(common) for x in res[k]["mask_ns"]], dtype=np.float64) / 1e3
        if ns.size:
            out[eng] = {"mask_mean_us": float(ns.mean()), "mask_p50_us": float(np.percentile(ns, 50)),
                        "mask_p99_us": float(np.percentile(ns, 99)), "masks": int(ns.size)}
            print(f"  {eng:<14} mean {ns.mean():8.1f} us  p50 {np.percentile(ns, 50):7.1f}  "
                  f"p99 {np.percentile(ns, 99):8.1f}  masks {ns.size}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--vocab", default="llama-bpe")
    ap.add_argument("--engines", default="ours,llguidance,xgrammar,outlines_core")
    ap.add_argument("--chunk", type=int, default=25, help="schemas per worker process")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per worker")
    ap.add_argument("--out", default=str(HERE / "results" / "schema.json"))
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--start", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(run_engine(args.worker, args.vocab, args.start, args.chunk, args.n)))
        return
    results: dict[str, dict[str, Any]] = {}
    engines: list[tuple[str, str]] = []
    for eng in args.engines.split(","):
        py = sys.executable if eng == "ours" else str(PEERS_PY)
        if not Path(py).exists():
            print(f"[{eng}] skipped: {py} missing (run bench/peers/setup.sh)", file=sys.stderr)
            continue
        engines.append((eng, py))
        results[eng] = {}
    # engines alternate chunk by chunk, so a machine that slows down for a few minutes
    # (shared hosts do) slows every engine alike instead of whichever ran then
    for start in range(0, args.n, args.chunk):
        for eng, py in engines:
            merged = results[eng]
            try:
                proc = subprocess.run([py, __file__, "--worker", eng, "--vocab", args.vocab, "--n", str(args.n),
                                       "--start", str(start), "--chunk", str(args.chunk)],
                                      capture_output=True, text=True, cwd=str(REPO), timeout=args.timeout,
                                      env=dict(os.environ, PYTHONPATH=str(REPO)))
                merged.update(json.loads(proc.stdout.strip().splitlines()[-1]))
            except (subprocess.TimeoutExpired, IndexError, ValueError) as exc:
                print(f"[{eng}] chunk {start}: {type(exc).__name__}", file=sys.stderr)
                for row in stratified_sample(args.n)[start:start + args.chunk]:
                    merged.setdefault(row["id"], {"category": row["category"], "error": "worker failed/timeout"})
            print(f"[{eng}] {min(start + args.chunk, args.n)}/{args.n}", file=sys.stderr)
    summary: dict[str, Any] = {}
    header = (f"{'engine':<14} {'compiled':>9} {'ttfm p50':>9} {'p99':>9} | {'mask mean':>9} {'p50':>7} "
              f"{'p99':>8} {'max':>9} | {'valid ok':>9} {'invalid acc':>11}")
    print(f"\n{args.n} schemas (stratified MaskBench), vocabulary {args.vocab}, one thread; "
          f"ttfm ms, mask us\n\n{header}\n{'-' * len(header)}")
    for eng, res in results.items():
        ok = [r for r in res.values() if "error" not in r]
        ttfm = np.array([r["ttfm_ms"] for r in ok]) if ok else np.zeros(1)
        masks = np.array([x for r in ok for x in r["mask_ns"]], dtype=np.float64) / 1e3
        if not masks.size:
            masks = np.zeros(1)
        s = {"compiled": len(ok), "n": len(res), "ttfm_p50_ms": float(np.percentile(ttfm, 50)),
             "ttfm_p99_ms": float(np.percentile(ttfm, 99)), "mask_mean_us": float(masks.mean()),
             "mask_p50_us": float(np.percentile(masks, 50)), "mask_p99_us": float(np.percentile(masks, 99)),
             "mask_max_us": float(masks.max()), "valid_ok": sum(r["valid_ok"] for r in ok),
             "valid_n": sum(r["valid_n"] for r in ok), "invalid_accepted": sum(r["invalid_acc"] for r in ok),
             "invalid_n": sum(r["invalid_n"] for r in ok)}
        summary[eng] = s
        print(f"{eng:<14} {s['compiled']:>4}/{s['n']:<4} {s['ttfm_p50_ms']:>9.2f} {s['ttfm_p99_ms']:>9.1f} | "
              f"{s['mask_mean_us']:>9.1f} {s['mask_p50_us']:>7.1f} {s['mask_p99_us']:>8.1f} {s['mask_max_us']:>9.1f} | "
              f"{s['valid_ok']:>4}/{s['valid_n']:<4} {s['invalid_accepted']:>5}/{s['invalid_n']:<5}")
    summary["common_subset"] = _common_subset(results)
    for res in results.values():
        for r in res.values():
            ns = r.pop("mask_ns", None)
            if ns is not None:  # kept per schema so subsets can be compared from the JSON later
                r["mask_n"], r["mask_sum_us"] = len(ns), sum(ns) / 1e3
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"n": args.n, "vocab": args.vocab, "python": platform.python_version(), "cpu_count": os.cpu_count(),
            "threads": 1, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    out.write_text(json.dumps({"meta": meta, "summary": summary, "results": results}, indent=1))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
