"""Regex constraint benchmark: ours vs xgrammar, llguidance and outlines-core, same run, one thread.

    python bench/bench_regex.py                 # table + bench/results/regex.json
    python bench/bench_regex.py --engines ours  # only our engine (no peer environment needed)

Every engine gets the same vocabulary (Llama-3 128k by default, token bytes from our GGUF
reader) and teacher-forces the same valid strings (greedy longest-match tokenization):
per token it fills a bitmask (timed), checks the next token is allowed, advances (timed);
at the end EOS must be allowed. Cold pass = first pass over a freshly compiled constraint;
warm pass = the same strings again on the same compiled constraint. Each engine runs in its
own subprocess (peers in bench/.venv-peers, created by bench/peers/setup.sh). The allowed
sets (special tokens and EOS excluded) are hashed per step and compared with ours.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS",
             "TVM_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PEERS_PY = HERE / ".venv-peers" / "bin" / "python"
ENGINES = ("ours", "xgrammar", "llguidance", "outlines_core")


def _words(n: int) -> list[str]:
    rng = random.Random(200)
    out: set[str] = set()
    while len(out) < n:
        out.add("".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(4, 10))))
    return sorted(out)


WORDS = _words(200)
OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
CASES: list[tuple[str, str, list[str]]] = [
    ("phone", r"\([0-9]{3}\) [0-9]{3}-[0-9]{4}", ["(555) 123-4567", "(212) 867-5309", "(800) 000-1111"]),
    ("iso_date", r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])",
     ["2024-02-29", "1999-12-31", "2000-01-01"]),
    ("email", r"[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}",
     ["john.doe+tag@example.co.uk", "alice@mail.example.org", "x_y-z@sub.domain.io"]),
    ("ipv4", rf"({OCTET}\.){{3}}{OCTET}", ["192.168.0.255", "10.0.0.1", "8.8.4.4"]),
    ("alt200", "(" + "|".join(WORDS) + ")", [WORDS[7], WORDS[100], WORDS[199]]),
    ("free_text", r"[A-Za-z][a-z ]{10,200}\.",
     ["The quick brown fox jumps over the lazy dog and keeps running far away.",
      "A " + "very long sentence made of many small words that goes on " * 3 + "end."]),
]


# ----------------------------------------------------------------------------- engines
class Engine:
    """Adapter: compile(pattern) -> handle; matcher(handle) -> m; fill(m, buf); advance(m, tid)."""

    def __init__(self, tokens: list[bytes], eos: int, special: set[int], width: int) -> None:
        self.tokens, self.eos, self.special, self.width = tokens, eos, special, width
        self.words = (width + 31) // 32

    def new_bitmask(self) -> Any:
        return np.zeros((1, self.words), dtype=np.int32)

    def clear_caches(self) -> None:
        """Forget per-process compile caches so every repetition compiles cold."""

    def to_numpy(self, buf: Any) -> np.ndarray:
        return np.asarray(buf)


class Ours(Engine):
    name = "ours"

    def __init__(self, *a: Any) -> None:
        super().__init__(*a)
        from constrained.masks.trie import TokenTrie
        from constrained.vocab import Vocabulary

        self.vocab = Vocabulary.from_tokens(self.tokens, eos_token_ids=[self.eos],
                                            special_token_ids=sorted(self.special),
                                            logit_width=self.width)
        TokenTrie.for_vocab(self.vocab).slices  # per-vocabulary setup (trie, kernels, slices), like the peers' tokenizer info
        self.compile("(ab|c)d").matcher().mask()  # import + first-use warm-up, outside the timings

    def compile(self, pattern: str) -> Any:
        from constrained.automata import parse_regex
        from constrained.compile import RegexConstraint

        return RegexConstraint(parse_regex(pattern), self.vocab, source=pattern)  # bypass the cache

    def clear_caches(self) -> None:
        from constrained.automata import regex_syntax

        # class-compressed tries live on the compiled constraint; the parse is cached per process
        regex_syntax._parse_cached.cache_clear()  # every repetition parses the pattern again

    def matcher(self, c: Any) -> Any:
        return c.matcher()

    def fill(self, m: Any, buf: Any) -> None:
        m.fill_bitmask(buf, 0)

    def advance(self, m: Any, tid: int) -> bool:
        return m.try_advance(tid)


class XGrammar(Engine):
    name = "xgrammar"

    def __init__(self, *a: Any) -> None:
        super().__init__(*a)
        import torch
        import xgrammar as xgr

        torch.set_num_threads(1)
        self.xgr = xgr
        # control tokens become empty strings: xgrammar never allows those
        enc = [b"" if i in self.special else t for i, t in enumerate(self.tokens)]
        self.info = xgr.TokenizerInfo(enc, xgr.VocabType.RAW, vocab_size=self.width,
                                      stop_token_ids=[self.eos])

    def compile(self, pattern: str) -> Any:
        compiler = self.xgr.GrammarCompiler(self.info, max_threads=1, cache_enabled=False)
        return compiler.compile_regex(pattern)

    def matcher(self, c: Any) -> Any:
        return self.xgr.GrammarMatcher(c)

    def new_bitmask(self) -> Any:
        return self.xgr.allocate_token_bitmask(1, self.width)

    def to_numpy(self, buf: Any) -> np.ndarray:
        return buf.numpy()

    def fill(self, m: Any, buf: Any) -> None:
        m.fill_next_token_bitmask(buf, 0)

    def advance(self, m: Any, tid: int) -> bool:
        return bool(m.accept_token(tid))


class LLGuidance(Engine):
    name = "llguidance"

    def __init__(self, *a: Any) -> None:
        super().__init__(*a)
        import llguidance
        import llguidance.numpy as lnp

        self.llg, self.lnp = llguidance, lnp
        outer = self
        ids = {t: i for i, t in reversed(list(enumerate(self.tokens))) if i not in self.special}
        max_len = max(len(t) for t in ids)

        class Tok:
            eos_token_id = outer.eos
            bos_token_id = None
            # llguidance marks special tokens with a leading 0xFF byte
            tokens = [b"\xff" + t if i in outer.special else t for i, t in enumerate(outer.tokens)]
            special_token_ids = sorted(outer.special)

            def __call__(self, data: bytes) -> list[int]:
                return _greedy(ids, max_len, data)

        self.tok = llguidance.LLTokenizer(llguidance.TokenizerWrapper(Tok()), n_vocab=self.width)

    def compile(self, pattern: str) -> Any:
        return self.llg.LLMatcher.grammar_from_regex(pattern)

    def matcher(self, c: Any) -> Any:
        m = self.llg.LLMatcher(self.tok, c)
        if m.is_error():
            raise RuntimeError(m.get_error())
        return m

    def fill(self, m: Any, buf: Any) -> None:
        self.lnp.fill_next_token_bitmask(m, buf, 0)

    def advance(self, m: Any, tid: int) -> bool:
        return bool(m.consume_token(tid))


class OutlinesCore(Engine):
    name = "outlines_core"

    def __init__(self, *a: Any) -> None:
        super().__init__(*a)
        import outlines_core

        self.oc = outlines_core
        mapping: dict[bytes, list[int]] = {}
        for i, t in enumerate(self.tokens):
            if i not in self.special and t:
                mapping.setdefault(t, []).append(i)
        self.vocab = outlines_core.Vocabulary(self.eos, mapping)

    def compile(self, pattern: str) -> Any:
        return self.oc.Index(pattern, self.vocab)

    def matcher(self, c: Any) -> Any:
        return self.oc.Guide(c)

    def fill(self, m: Any, buf: Any) -> None:
        m.write_mask_into(buf.ctypes.data, buf.size, 4)

    def advance(self, m: Any, tid: int) -> bool:
        try:
            m.advance(tid, return_tokens=False)
        except ValueError:
            return False
        return True


ADAPTERS: dict[str, Callable[..., Engine]] = {
    "ours": Ours, "xgrammar": XGrammar, "llguidance": LLGuidance, "outlines_core": OutlinesCore,
}


# ------------------------------------------------------------------------------ helpers
def _greedy(ids: dict[bytes, int], max_len: int, data: bytes) -> list[int]:
    """Longest-match tokenization (canonical-like; the same for every engine)."""
    out, pos = [], 0
    while pos < len(data):
        for n in range(min(max_len, len(data) - pos), 0, -1):
            tid = ids.get(data[pos:pos + n])
            if tid is not None:
                out.append(tid)
                pos += n
                break
        else:
            raise ValueError(f"no token for byte {data[pos]:#x}")
    return out


def _stats(ns: list[int]) -> dict[str, float]:
    a = np.asarray(ns, dtype=np.float64) / 1e3  # microseconds
    if a.size == 0:
        return {"n": 0}
    return {"n": int(a.size), "mean_us": float(a.mean()), "p50_us": float(np.percentile(a, 50)),
            "p99_us": float(np.percentile(a, 99)), "max_us": float(a.max())}


def _load_vocab(name: str) -> tuple[list[bytes], int, set[int], int]:
    sys.path.insert(0, str(REPO))
    from constrained.vocab import Vocabulary
    from tests.testdata import vocab_path

    v = Vocabulary.from_gguf(vocab_path(name))
    return list(v.tokens), v.eos_token_ids[0], set(v.special_token_ids), v.logit_width


def _one_run(eng: Engine, pattern: str, samples: list[str], ids: dict[bytes, int], max_len: int,
             not_text: np.ndarray, tokens: list[bytes]) -> dict[str, Any]:
    """Compile + cold pass + warm pass once; raw per-step nanoseconds and mask hashes."""
    eos, width = eng.eos, eng.width
    t0 = time.perf_counter_ns()
    compiled = eng.compile(pattern)
    t1 = time.perf_counter_ns()
    m = eng.matcher(compiled)
    buf = eng.new_bitmask()
    eng.fill(m, buf)
    t2 = time.perf_counter_ns()
    out: dict[str, Any] = {"compile_ns": t1 - t0, "ttfm_ns": t2 - t0, "errors": [], "hashes": []}
    for pass_name in ("cold", "warm"):
        mask_ns: list[int] = []
        adv_ns: list[int] = []
        for k, text in enumerate(samples):
            toks = _greedy(ids, max_len, text.encode("utf-8"))
            m = eng.matcher(compiled)
            for tid in toks + [eos]:
                buf = eng.new_bitmask()
                a = time.perf_counter_ns()
                eng.fill(m, buf)
                b = time.perf_counter_ns()
                mask_ns.append(b - a)
                words = eng.to_numpy(buf)[0].astype("<i4")
                allowed = np.unpackbits(words.view(np.uint8), bitorder="little")[:width].astype(bool)
                if pass_name == "cold":
                    text_allowed = allowed & ~not_text
                    text_allowed[eos] = False
                    out["hashes"].append(hashlib.sha1(np.packbits(text_allowed).tobytes()).hexdigest()[:16])
                if not allowed[tid]:
                    out["errors"].append(f"{pass_name}: token {tid} {tokens[tid]!r} masked in sample {k}")
                    break
                if tid == eos:
                    break
                a = time.perf_counter_ns()
                ok = eng.advance(m, tid)
                b = time.perf_counter_ns()
                adv_ns.append(b - a)
                if not ok:
                    out["errors"].append(f"{pass_name}: advance({tid}) refused")
                    break
        out[pass_name] = (mask_ns, adv_ns)
    return out


def run_engine(engine_name: str, vocab_name: str, case_names: list[str], repeat: int) -> dict[str, Any]:
    """Benchmark one engine on every case (inside the worker process).

    Each case is compiled and teacher-forced ``repeat`` times from scratch (fresh compile,
    per-process compile caches cleared); per step the minimum over repetitions is kept,
    which filters out scheduler noise on a shared machine while every repetition stays cold.
    """
    tokens, eos, special, width = _load_vocab(vocab_name)
    t0 = time.perf_counter()
    eng = ADAPTERS[engine_name](tokens, eos, special, width)
    setup_s = time.perf_counter() - t0
    ids = {t: i for i, t in reversed(list(enumerate(tokens))) if i not in special and t}
    max_len = max(len(t) for t in ids)
    not_text = np.zeros(width, dtype=bool)
    not_text[sorted(special)] = True
    not_text[len(tokens):] = True
    results: dict[str, Any] = {"engine": engine_name, "setup_s": setup_s, "repeat": repeat, "cases": {}}
    for name, pattern, samples in CASES:
        if name not in case_names:
            continue
        res: dict[str, Any] = {"pattern": pattern if len(pattern) < 80 else pattern[:77] + "..."}
        try:
            runs = []
            for _ in range(repeat):
                eng.clear_caches()
                runs.append(_one_run(eng, pattern, samples, ids, max_len, not_text, tokens))
            res["compile_ms"] = min(r["compile_ns"] for r in runs) / 1e6
            res["ttfm_ms"] = min(r["ttfm_ns"] for r in runs) / 1e6
            for pass_name in ("cold", "warm"):
                mask = np.min([r[pass_name][0] for r in runs], axis=0).tolist()
                adv = np.min([r[pass_name][1] for r in runs], axis=0).tolist()
                # per-step minima kept raw too: drivers that run a worker more than once
                # (bench_grammar.py --rounds) take the minimum across workers
                res[pass_name] = {"mask": _stats(mask), "advance": _stats(adv),
                                  "mask_steps": mask, "advance_steps": adv}
            errors = [e for r in runs for e in r["errors"]]
            res["correct"] = not errors
            if errors:
                res["errors"] = errors[:5]
            res["mask_hashes"] = runs[0]["hashes"]
        except Exception as exc:  # a peer failing one case must not hide the others
            res["error"] = f"{type(exc).__name__}: {exc}"[:300]
        results["cases"][name] = res
    return results


# ----------------------------------------------------------------------------- driver
def _fmt(x: Any, spec: str = ".1f") -> str:
    return "-" if x is None else format(x, spec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vocab", default="llama-bpe")
    ap.add_argument("--engines", default=",".join(ENGINES))
    ap.add_argument("--cases", default=",".join(c[0] for c in CASES))
    ap.add_argument("--peers-python", default=str(PEERS_PY))
    ap.add_argument("--out", default=str(HERE / "results" / "regex.json"))
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per engine and case")
    ap.add_argument("--repeat", type=int, default=3, help="cold repetitions; per-step minimum kept")
    ap.add_argument("--mem-gb", type=float, default=6.0, help="address-space cap per worker")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    cases = args.cases.split(",")
    if args.worker:
        import resource

        cap = int(args.mem_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        print(json.dumps(run_engine(args.worker, args.vocab, cases, args.repeat)))
        return

    all_res: dict[str, Any] = {}
    for eng in args.engines.split(","):
        py = sys.executable if eng == "ours" else args.peers_python
        if not Path(py).exists():
            print(f"[{eng}] skipped: {py} missing (run bench/peers/setup.sh)", file=sys.stderr)
            continue
        env = dict(os.environ, PYTHONPATH=str(REPO))
        merged: dict[str, Any] = {"engine": eng, "setup_s": None, "cases": {}}
        for case in cases:  # one process per case: a peer blowing up loses only that case
            try:
                proc = subprocess.run(
                    [py, __file__, "--worker", eng, "--vocab", args.vocab, "--cases", case,
                     "--mem-gb", str(args.mem_gb), "--repeat", str(args.repeat)],
                    capture_output=True, text=True, env=env, cwd=str(REPO), timeout=args.timeout)
            except subprocess.TimeoutExpired:
                merged["cases"][case] = {"error": f"timeout after {args.timeout:.0f} s"}
                print(f"[{eng}] {case}: timeout", file=sys.stderr)
                continue
            if proc.returncode != 0:
                tail = proc.stderr.strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
                merged["cases"][case] = {"error": f"worker failed ({proc.returncode}): {tail[0][:200]}"}
                print(f"[{eng}] {case}: failed: {tail[0][:200]}", file=sys.stderr)
                continue
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            merged["setup_s"] = r["setup_s"]
            merged["cases"].update(r["cases"])
            print(f"[{eng}] {case}: done", file=sys.stderr)
        all_res[eng] = merged

    ours = all_res.get("ours", {}).get("cases", {})
    header = (f"{'case':<10} {'engine':<14} {'compile':>8} {'ttfm':>8} | {'cold mean':>9} {'p50':>7} "
              f"{'p99':>8} {'max':>8} | {'warm mean':>9} {'p50':>6} {'p99':>7} {'max':>7} | "
              f"{'adv':>6} | ok  agree | cold x llg")
    print(f"\nvocabulary {args.vocab}; times: compile/ttfm ms, mask/advance us; one thread; "
          f"per-step min over {args.repeat} cold repetitions\n")
    print(header)
    print("-" * len(header))
    for name in cases:
        llg_cold = all_res.get("llguidance", {}).get("cases", {}).get(name, {}).get("cold", {}) \
            .get("mask", {}).get("mean_us")
        for eng, r in all_res.items():
            c = r["cases"].get(name)
            if c is None:
                continue
            if "error" in c:
                print(f"{name:<10} {eng:<14} ERROR {c['error'][:100]}")
                continue
            cold, warm = c["cold"]["mask"], c["warm"]["mask"]
            ref = ours.get(name, {}).get("mask_hashes")
            mine = c.get("mask_hashes", [])
            agree = "-" if not ref else f"{sum(a == b for a, b in zip(ref, mine))}/{len(ref)}"
            c["agree_with_ours"] = agree
            ratio = (cold["mean_us"] / llg_cold) if llg_cold else None
            c["cold_mean_vs_llguidance"] = ratio
            print(f"{name:<10} {eng:<14} {c['compile_ms']:>8.2f} {c['ttfm_ms']:>8.2f} | "
                  f"{cold['mean_us']:>9.1f} {cold['p50_us']:>7.1f} {cold['p99_us']:>8.1f} {cold['max_us']:>8.1f} | "
                  f"{warm['mean_us']:>9.1f} {warm['p50_us']:>6.1f} {warm['p99_us']:>7.1f} {warm['max_us']:>7.1f} | "
                  f"{c['warm']['advance'].get('mean_us', 0):>6.1f} | {'yes' if c['correct'] else 'NO ':<3} "
                  f"{agree:>5} | {_fmt(ratio, '.2f')}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"vocab": args.vocab, "repeat": args.repeat, "python": platform.python_version(), "machine": platform.machine(),
            "cpu_count": os.cpu_count(), "threads": 1, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    for r in all_res.values():
        for c in r["cases"].values():
            c.pop("mask_hashes", None)
    out.write_text(json.dumps({"meta": meta, "results": all_res}, indent=1))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
