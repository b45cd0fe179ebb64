"""End-to-end benchmark: SmolLM2-135M-Instruct on CPU, unconstrained vs constrained decoding.

For batch 1 (the 8 prompts one at a time) and batch 8 (one batch) and each constraint (JSON
Schema with the default flexible whitespace and with ``indent=2`` layout, regex, Lark JSON grammar) we run generate()'s decoding loop greedily on the same prompts, with and without jump-forward, and an
unconstrained baseline that decodes EXACTLY the same number of tokens per row (raw argmax loop
over the same model session API, no masks). Reported:

* tok/s         generated tokens / wall seconds
* overhead %    (constrained time without jump-forward / unconstrained time for the same
                 tokens) - 1: the per-token cost of masking, sampling and matching
* mask/model %  time in masks + sampling + matcher / time in the model, within the same run
                (insensitive to machine load, unlike the wall-clock ratio above)
* JF speed-up   unconstrained time for the jump-forward run's tokens / jump-forward run time
                (> 1 means constrained generation with jump-forward beats unconstrained)
* saved         forward passes jump-forward avoided (sum over rows)

Run: ``python bench/bench_e2e.py`` (prints a table, writes bench/results/bench_e2e.json).
BLAS threads are pinned to 1 unless OPENBLAS_NUM_THREADS is already set.
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import constrained
from constrained.generation.lm import LMAdapter, model_info

PROMPTS = [
    "Extract the person: Maria Lopez, 34, a doctor from Madrid.",
    "Extract the person: John Smith is a 51 year old teacher living in Leeds.",
    "Extract the person: Aiko Tanaka (27) works as an engineer in Osaka.",
    "Extract the person: Pierre Dubois, artist, aged 45, Paris.",
    "Extract the person: Fatima Khan is 38 and a nurse in Lahore.",
    "Extract the person: Lars Nilsson, 62, retired pilot, Stockholm.",
    "Extract the person: Chen Wei, 29, software developer in Shenzhen.",
    "Extract the person: Olga Petrova, a 41 year old chemist from Kazan.",
]

PERSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 40},
        "age": {"type": "integer", "minimum": 0, "maximum": 130},
        "occupation": {"type": "string", "maxLength": 40},
        "city": {"type": "string", "maxLength": 40},
    },
    "required": ["name", "age", "occupation", "city"],
    "additionalProperties": False,
}
PERSON_REGEX = r'\{"name": "[A-Za-z ]{1,30}", "age": [0-9]{1,3}, "city": "[A-Za-z ]{1,30}"\}'


def constraints() -> dict[str, Any]:
    """The constrained modes measured (name -> output_type)."""
    import grammars

    return {
        "json-schema": PERSON_SCHEMA,
        "json-schema-indent2": (PERSON_SCHEMA, {"indent": 2}),
        "regex": constrained.Regex(PERSON_REGEX),
        "lark-json": constrained.Lark(grammars.load("json")),
    }


def unconstrained_same_tokens(model: Any, prompts: list[str], counts: list[int]) -> float:
    """Seconds to decode exactly ``counts[i]`` greedy tokens per row, no masks, same session API."""
    info = model_info(model)
    from constrained.generate import _render_prompt

    ids = [_render_prompt(info.tokenizer, p, None, None) for p in prompts]
    lm = LMAdapter(model, info)
    t0 = time.perf_counter()
    logits = lm.start(ids)
    done = [0] * len(prompts)
    while True:
        feeds: list[list[int] | None] = []
        for i, n in enumerate(counts):
            if done[i] < n:
                feeds.append([int(np.argmax(logits[i]))])
                done[i] += 1
            else:
                feeds.append(None)
        if all(f is None for f in feeds) or all(done[i] >= counts[i] for i in range(len(counts))):
            break
        logits = lm.step(feeds)
    lm.close()
    return time.perf_counter() - t0


def run_mode(model: Any, prompts: list[str], output_type: Any, jump: bool, max_tokens: int) -> dict[str, Any]:
    """One batched constrained run (the same loop as generate(); truncated rows still count)."""
    from constrained.generate import _prepare

    options = None
    if isinstance(output_type, tuple):  # (schema, compile_json_schema options)
        output_type, options = output_type
    t0 = time.perf_counter()
    run, _, _ = _prepare(model, prompts, output_type, max_tokens=max_tokens, temperature=0.0, top_p=1.0,
                         top_k=0, seed=None, stop=None, chat=None, system=None, jump_forward=jump,
                         schema_options=options)
    run.run()
    wall = time.perf_counter() - t0
    stats = [row.stats for row in run.rows]
    return {
        "wall_s": wall,
        "tokens": [s.generated_tokens for s in stats],
        "complete": sum(row.accepted() for row in run.rows),
        "passes_saved": sum(s.passes_saved for s in stats),
        "forward_passes": max(s.forward_passes for s in stats),
        "model_s": stats[0].model_seconds,
        "constraint_s": stats[0].constraint_seconds,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=1, help="runs per cell (best time kept)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "bench_e2e.json"))
    args = parser.parse_args(argv)

    from engine import load_model

    model = load_model()
    modes = constraints()
    rows: list[dict[str, Any]] = []
    for batch in [int(b) for b in args.batches.split(",")]:
        # batch 1: every prompt alone, one after the other; batch B: the prompts in groups of B
        groups = [PROMPTS[i : i + batch] for i in range(0, len(PROMPTS), batch)]
        for name, ot in modes.items():
            for g in groups:
                run_mode(model, g, ot, True, args.max_tokens)  # warm-up: compile, fill mask caches
            best: dict[bool, dict[str, Any]] = {}
            for jump in (False, True):
                for _ in range(args.repeat):
                    parts = [run_mode(model, g, ot, jump, args.max_tokens) for g in groups]
                    r = {
                        "wall_s": sum(p["wall_s"] for p in parts),
                        "tokens": [t for p in parts for t in p["tokens"]],
                        "complete": sum(p["complete"] for p in parts),
                        "passes_saved": sum(p["passes_saved"] for p in parts),
                        "model_s": sum(p["model_s"] for p in parts),
                        "constraint_s": sum(p["constraint_s"] for p in parts),
                    }
                    if jump not in best or r["wall_s"] < best[jump]["wall_s"]:
                        best[jump] = r

            def baseline(counts: list[int]) -> float:
                return min(
                    sum(unconstrained_same_tokens(model, g, counts[i * batch : i * batch + len(g)])
                        for i, g in enumerate(groups))
                    for _ in range(args.repeat)
                )

            base_nojump = baseline(best[False]["tokens"])
            base_jump = baseline(best[True]["tokens"])
            tok_nj, tok_j = sum(best[False]["tokens"]), sum(best[True]["tokens"])
            rows.append({
                "batch": batch, "constraint": name,
                "unconstrained_tok_s": tok_nj / base_nojump,
                "constrained_tok_s": tok_nj / best[False]["wall_s"],
                "overhead_pct": 100.0 * (best[False]["wall_s"] / base_nojump - 1.0),
                "constraint_share_pct": 100.0 * best[False]["constraint_s"] / best[False]["model_s"],
                "jump_tok_s": tok_j / best[True]["wall_s"],
                "jump_speedup_vs_unconstrained": base_jump / best[True]["wall_s"],
                "passes_saved": best[True]["passes_saved"],
                "tokens_no_jump": tok_nj, "tokens_jump": tok_j,
                "complete_outputs": f"{best[True]['complete']}/{len(PROMPTS)}",
                "constraint_s_no_jump": best[False]["constraint_s"], "model_s_no_jump": best[False]["model_s"],
                "unconstrained_s_same_tokens": base_nojump,
                "constrained_s": best[False]["wall_s"], "jump_s": best[True]["wall_s"],
            })
            r = rows[-1]
            print(f"batch {batch} {name:12s} uncon {r['unconstrained_tok_s']:7.1f} tok/s  "
                  f"con {r['constrained_tok_s']:7.1f} tok/s  overhead {r['overhead_pct']:6.1f}% "
                  f"(mask/model time {r['constraint_share_pct']:.1f}%)  "
                  f"JF {r['jump_tok_s']:7.1f} tok/s (x{r['jump_speedup_vs_unconstrained']:.2f})  "
                  f"saved {r['passes_saved']}", flush=True)

    header = ("| batch | constraint | unconstrained tok/s | constrained tok/s | overhead % | mask/model time % | "
              "constrained+JF tok/s | JF vs unconstrained | passes saved | complete |")
    print()
    print(header)
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['batch']} | {r['constraint']} | {r['unconstrained_tok_s']:.1f} | {r['constrained_tok_s']:.1f} | "
              f"{r['overhead_pct']:+.1f} | {r['constraint_share_pct']:.1f} | {r['jump_tok_s']:.1f} | x{r['jump_speedup_vs_unconstrained']:.2f} | "
              f"{r['passes_saved']} | {r['complete_outputs']} |")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "benchmark": "bench_e2e", "model": "SmolLM2-135M-Instruct Q4_1 (default)",
        "threads": os.environ.get("OPENBLAS_NUM_THREADS"), "machine": platform.platform(),
        "python": platform.python_version(), "max_tokens": args.max_tokens, "rows": rows,
    }, indent=2))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
