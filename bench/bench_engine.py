"""Engine benchmark: SmolLM2-135M-Instruct prefill / decode tokens/s and peak RSS, side by side.

Engines (each in its own subprocess, BLAS/torch/llama.cpp threads pinned to the same count):
* ours          engine (numpy, float32 weights dequantised from the Q4_1 GGUF)
* transformers  transformers + torch (CPU) loading the same GGUF (float32)
* llama.cpp     llama-cpp-python built from source, the same Q4_1 GGUF (batch 1 only:
                its Python API decodes one sequence)

The peers live in a separate environment (never dependencies of the project): pass its
interpreter with --ref-python (default /tmp/refenv/bin/python, skipped with a note if absent).

Each time is the best of BENCH_ENGINE_REPEATS (default 3) runs, to damp noise from other
processes. Run: ``python bench/bench_engine.py [--threads 1 2] [--batch 1 8]`` — prints a
table and writes bench/results/bench_engine.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "bench_engine.json"
PROMPT_TOKENS = 128
DECODE_TOKENS = 32
REPEATS = int(os.environ.get("BENCH_ENGINE_REPEATS", "3"))  # best of N per measurement (shared machines)
TEXT = (
    "The history of the printing press begins in the fifteenth century, when movable type "
    "transformed how knowledge spread across Europe. Scholars, merchants and priests soon "
) * 8


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ---------------------------------------------------------------- workers (run in subprocesses)
def worker_ours(model_path: str, batch: int) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from engine import load_model

    t0 = time.perf_counter()
    model = load_model(model_path)
    load_s = time.perf_counter() - t0
    ids = model.tokenizer.encode(TEXT)[:PROMPT_TOKENS]
    model.start([ids[:8]] * batch, max_new_tokens=4)  # warm-up
    prefill_s = decode_s = float("inf")
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        session = model.start([ids] * batch, max_new_tokens=DECODE_TOKENS, prefill_chunk=PROMPT_TOKENS)
        prefill_s = min(prefill_s, time.perf_counter() - t0)
        t0 = time.perf_counter()
        for _ in range(DECODE_TOKENS):
            nxt = np.argmax(session.logits, axis=1)
            session.step([[int(t)] for t in nxt])
        decode_s = min(decode_s, time.perf_counter() - t0)
    return {"load_s": load_s, "prefill_s": prefill_s, "decode_s": decode_s}


def worker_transformers(model_path: str, batch: int, threads: int) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(threads)
    p = Path(model_path)
    t0 = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(str(p.parent), gguf_file=p.name)
    model = AutoModelForCausalLM.from_pretrained(str(p.parent), gguf_file=p.name, dtype=torch.float32).eval()
    load_s = time.perf_counter() - t0
    ids = tok(TEXT, add_special_tokens=False)["input_ids"][:PROMPT_TOKENS]
    x = torch.tensor([ids] * batch)
    with torch.no_grad():
        model(x[:, :8])  # warm-up
        prefill_s = decode_s = float("inf")
        for _ in range(REPEATS):
            t0 = time.perf_counter()
            out = model(x, use_cache=True)
            prefill_s = min(prefill_s, time.perf_counter() - t0)
            past = out.past_key_values
            nxt = out.logits[:, -1].argmax(-1, keepdim=True)
            t0 = time.perf_counter()
            for _ in range(DECODE_TOKENS):
                out = model(nxt, past_key_values=past, use_cache=True)
                past = out.past_key_values
                nxt = out.logits[:, -1].argmax(-1, keepdim=True)
            decode_s = min(decode_s, time.perf_counter() - t0)
    return {"load_s": load_s, "prefill_s": prefill_s, "decode_s": decode_s}


def worker_llamacpp(model_path: str, batch: int, threads: int) -> dict[str, Any]:
    import numpy as np
    from llama_cpp import Llama

    if batch != 1:
        return {"skipped": "llama-cpp-python decodes one sequence per context"}
    t0 = time.perf_counter()
    llm = Llama(model_path=model_path, n_ctx=512, n_batch=512, n_threads=threads, n_threads_batch=threads,
                logits_all=False, verbose=False)
    load_s = time.perf_counter() - t0
    ids = llm.tokenize(TEXT.encode("utf-8"), add_bos=False)[:PROMPT_TOKENS]
    llm.eval(ids[:8])  # warm-up
    prefill_s = decode_s = float("inf")
    for _ in range(REPEATS):
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(ids)
        prefill_s = min(prefill_s, time.perf_counter() - t0)
        t0 = time.perf_counter()
        for _ in range(DECODE_TOKENS):
            nxt = int(np.argmax(llm.scores[llm.n_tokens - 1]))
            llm.eval([nxt])
        decode_s = min(decode_s, time.perf_counter() - t0)
    return {"load_s": load_s, "prefill_s": prefill_s, "decode_s": decode_s}


def run_worker(args: argparse.Namespace) -> None:
    if args.worker == "ours":
        res = worker_ours(args.model, args.batch[0])
    elif args.worker == "transformers":
        res = worker_transformers(args.model, args.batch[0], args.threads[0])
    else:
        res = worker_llamacpp(args.model, args.batch[0], args.threads[0])
    res["peak_rss_mb"] = _peak_rss_mb()
    print("RESULT " + json.dumps(res))


# ---------------------------------------------------------------- driver
def _spawn(python: str, engine: str, model: str, batch: int, threads: int) -> dict[str, Any]:
    env = dict(os.environ)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    cmd = [python, str(Path(__file__).resolve()), "--worker", engine, "--model", model,
           "--batch", str(batch), "--threads", str(threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return {"error": (proc.stderr or proc.stdout).strip()[-400:]}


def _has(python: str, module: str) -> bool:
    return Path(python).exists() and subprocess.run(
        [python, "-c", f"import {module}"], capture_output=True, check=False
    ).returncode == 0


def main() -> int:
    ap = argparse.ArgumentParser(description="engine prefill/decode benchmark")
    ap.add_argument("--worker", choices=["ours", "transformers", "llamacpp"])
    ap.add_argument("--model", default=None, help="GGUF path (default: the provisioned default model)")
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--ref-python", default="/tmp/refenv/bin/python")
    ap.add_argument("--engines", nargs="+", default=["ours", "transformers", "llamacpp"])
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    if args.worker:
        run_worker(args)
        return 0
    if args.model is None:
        sys.path.insert(0, str(ROOT))
        from engine.registry import model_path

        args.model = str(model_path())
    available = {"ours": sys.executable}
    notes = []
    for eng, module in (("transformers", "transformers"), ("llamacpp", "llama_cpp")):
        if eng in args.engines:
            if _has(args.ref_python, module):
                available[eng] = args.ref_python
            else:
                notes.append(f"{eng}: not measured ({module} not importable by {args.ref_python})")
    rows = []
    for threads in args.threads:
        for batch in args.batch:
            for eng in args.engines:
                if eng not in available:
                    continue
                res = _spawn(available[eng], eng, args.model, batch, threads)
                row: dict[str, Any] = dict(engine=eng, threads=threads, batch=batch, **res)
                if "decode_s" in res:
                    row["prefill_tok_s"] = batch * PROMPT_TOKENS / res["prefill_s"]
                    row["decode_tok_s"] = batch * DECODE_TOKENS / res["decode_s"]
                rows.append(row)
                print(_format(row), flush=True)
    summary = _ratios(rows)
    print()
    for line in summary + notes:
        print(line)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "prompt_tokens": PROMPT_TOKENS, "decode_tokens": DECODE_TOKENS, "model": args.model,
        "rows": rows, "summary": summary, "notes": notes,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }, indent=2))
    print(f"wrote {args.out}")
    return 0


def _format(row: dict[str, Any]) -> str:
    head = f"{row['engine']:<13} threads={row['threads']} batch={row['batch']}"
    if "decode_tok_s" in row:
        return (f"{head}  prefill {row['prefill_tok_s']:8.1f} tok/s  decode {row['decode_tok_s']:7.1f} tok/s"
                f"  peak RSS {row['peak_rss_mb']:7.0f} MB  load {row['load_s']:.1f}s")
    return f"{head}  {row.get('skipped') or row.get('error')}"


def _ratios(rows: list[dict[str, Any]]) -> list[str]:
    def get(eng: str, threads: int, batch: int) -> float | None:
        for r in rows:
            if (r["engine"], r["threads"], r["batch"]) == (eng, threads, batch) and "decode_tok_s" in r:
                return float(r["decode_tok_s"])
        return None

    out = []
    for threads in sorted({r["threads"] for r in rows}):
        ours1, ours8 = get("ours", threads, 1), get("ours", threads, 8)
        tf1, lc1 = get("transformers", threads, 1), get("llamacpp", threads, 1)
        if ours1 and tf1:
            out.append(f"threads={threads}: batch-1 decode ours/transformers = {ours1 / tf1:.2f}x (target >= 2)")
        if ours8 and lc1:
            out.append(f"threads={threads}: batch-8 decode ours / llama.cpp batch-1 = {ours8 / lc1:.2f}x (target >= 1.2)")
    return out


if __name__ == "__main__":
    sys.exit(main())
