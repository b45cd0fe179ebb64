"""Engine backends benchmark: decode tokens/s per backend and device, and bitmask-apply cost.

1. Decode throughput of SmolLM2-135M-Instruct for every backend available here —
   numpy (CPU), torch (CPU), torch (CUDA), CuPy (CUDA) — at several batch sizes,
   unconstrained (argmax of the raw logits) vs constrained (a JSON-records regex; the
   bitmask is filled on the CPU, applied and sampled on the device), both through
   ``constrained.integrations.device_decode.DeviceDecoder``. On a GPU the mask of step k+1
   is computed while the forward pass of step k runs (the forward call returns before the
   GPU finishes). The records regex cannot finish within the measured tokens, so every
   row decodes exactly ``--tokens`` tokens in both modes (prefill excluded).
2. Bitmask apply per step on ``float32[batch, 49152]`` logits: our torch apply (vectorised
   unpack + masked_fill), our numpy helper, and xgrammar's ``apply_token_bitmask_inplace``
   (when xgrammar is importable) on the same tensors and device.

Run: ``python bench/bench_gpu.py`` (prints tables, writes bench/results/bench_gpu.json).
Options: ``--tokens N``, ``--cpu-batches 1,8``, ``--gpu-batches 1,8,64``, ``--threads T``,
``--repeat R`` (fastest of R alternating runs per cell). xgrammar is compared when importable
(``bench/peers/setup.sh`` makes ``bench/.venv-peers``, whose python sees this project too).
"""
from __future__ import annotations

import argparse
import os
import sys

ARGS = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ARGS.add_argument("--tokens", type=int, default=32, help="decoded tokens per row and mode")
ARGS.add_argument("--cpu-batches", default="1,8")
ARGS.add_argument("--gpu-batches", default="1,8,64")
ARGS.add_argument("--threads", type=int, default=1, help="CPU threads (BLAS and torch)")
ARGS.add_argument("--apply-reps", type=int, default=200, help="repetitions of each bitmask apply")
ARGS.add_argument("--repeat", type=int, default=3, help="decode runs per cell; the fastest is kept")
ARGS.add_argument("--backends", default="numpy:cpu,torch:cpu,torch:cuda,cupy:cuda")
ARGS.add_argument("--out", default=None, help="JSON output path (default bench/results/bench_gpu.json)")

if __name__ == "__main__":
    _opts = ARGS.parse_args()
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(_opts.threads)

import json
import platform
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import constrained
from constrained.integrations.device_decode import DeviceDecoder
from constrained.masks.bitmask import apply_token_bitmask
from engine import load_model
from engine.errors import BackendUnavailable

# JSON records, one per line; exactly 40 of them, so no row can finish within the measured tokens
RECORDS = r'(\{"id": [0-9]{1,6}, "name": "[A-Za-z ]{1,20}", "ok": (true|false)\}\n){40}'
PROMPT = "Write a list of users as JSON lines with id, name and ok fields."


def decode_run(model: Any, batch: int, tokens: int, constraint: Any | None) -> dict[str, float]:
    """Decode ``tokens`` steps for ``batch`` rows with the library's DeviceDecoder."""
    prompt = model.tokenizer.encode(
        model.tokenizer.apply_chat_template([{"role": "user", "content": PROMPT}])
    )
    dec = DeviceDecoder(model, [prompt] * batch, constraint, max_new_tokens=tokens, ignore_eos=True)
    dec.run()
    st = dec.stats
    assert st.tokens == batch * tokens, "a constrained row finished early"
    return {"seconds": st.total_s, "tok_s": st.tokens / st.total_s,
            "mask_ms_per_step": 1e3 * st.mask_fill_s / max(1, len(st.per_step_mask_fill_s))}


def bench_decode(opts: argparse.Namespace, vocab_cache: dict[str, Any]) -> list[dict[str, Any]]:
    """Decode throughput rows for every available backend/device."""
    rows: list[dict[str, Any]] = []
    for spec in opts.backends.split(","):
        name, _, device = spec.partition(":")
        try:
            model = load_model(backend=name, device=device or None)
        except BackendUnavailable as exc:
            print(f"[skip] {spec}: {exc}")
            rows.append({"backend": name, "device": device, "skipped": str(exc)})
            continue
        if name == "torch":
            import torch

            torch.set_num_threads(opts.threads)
        if "vocab" not in vocab_cache:
            vocab_cache["vocab"] = constrained.Vocabulary.from_model(model)
            vocab_cache["constraint"] = constrained.compile_regex(RECORDS, vocab_cache["vocab"])
        constraint = vocab_cache["constraint"]
        batches = opts.gpu_batches if device.startswith("cuda") else opts.cpu_batches
        for batch in [int(b) for b in batches.split(",")]:
            decode_run(model, batch, 2, constraint)  # warm-up (allocations, kernels, DFA states)
            # alternate the two modes and keep each one's fastest run (shared, noisy CPUs)
            runs = [(decode_run(model, batch, opts.tokens, None), decode_run(model, batch, opts.tokens, constraint))
                    for _ in range(max(1, opts.repeat))]
            free = min((r[0] for r in runs), key=lambda r: r["seconds"])
            cons = min((r[1] for r in runs), key=lambda r: r["seconds"])
            row = {
                "backend": name, "device": device, "batch": batch, "tokens": opts.tokens,
                "unconstrained_tok_s": round(free["tok_s"], 2),
                "constrained_tok_s": round(cons["tok_s"], 2),
                "overhead_pct": round(100 * (cons["seconds"] / free["seconds"] - 1), 1),
                "mask_fill_ms_per_step": round(cons["mask_ms_per_step"], 3),
            }
            print(row)
            rows.append(row)
        del model
    return rows


def _time(fn: Callable[[], Any], sync: Callable[[], None], reps: int) -> tuple[float, float]:
    """Median and p90 microseconds of ``fn`` over ``reps`` calls (synchronised each time)."""
    for _ in range(5):
        fn()
    sync()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    arr = np.array(times) * 1e6
    return float(np.median(arr)), float(np.percentile(arr, 90))


def bench_apply(opts: argparse.Namespace) -> list[dict[str, Any]]:
    """Bitmask apply per step: ours (torch / numpy) vs xgrammar's kernel on the same tensors."""
    rows: list[dict[str, Any]] = []
    try:
        import torch
    except ImportError:
        print("[skip] bitmask apply: torch not installed")
        return rows
    try:
        from importlib.metadata import version

        import xgrammar

        xgr_apply = xgrammar.apply_token_bitmask_inplace
        xgr_version = version("xgrammar")
    except Exception as exc:  # noqa: BLE001 - not installed, or its native part failed to load
        print(f"[info] xgrammar not importable here ({exc!r}); comparing our implementations only")
        xgr_apply, xgr_version = None, None
    from engine.backends.torch_backend import TorchBackend

    width = 49152
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rng = np.random.default_rng(0)
    for device in devices:
        tb = TorchBackend(device)
        sync = tb.synchronize
        batches = opts.gpu_batches if device == "cuda" else opts.cpu_batches
        for batch in [int(b) for b in batches.split(",")]:
            allowed = rng.random((batch, width)) < 0.05
            packed = np.packbits(allowed, axis=-1, bitorder="little").view("<i4").astype(np.int32)
            base = torch.from_numpy(rng.normal(size=(batch, width)).astype(np.float32)).to(device)
            bits_dev = torch.from_numpy(packed).to(device)
            work = base.clone()
            row: dict[str, Any] = {"device": device, "batch": batch, "width": width}
            med, p90 = _time(partial(tb.apply_bitmask, work, bits_dev), sync, opts.apply_reps)
            row["ours_torch_us"], row["ours_torch_p90_us"] = round(med, 1), round(p90, 1)
            expected = work.clone()
            if device == "cpu":
                host = base.numpy().copy()
                med, _ = _time(partial(apply_token_bitmask, host, packed), lambda: None, opts.apply_reps)
                row["ours_numpy_us"] = round(med, 1)
            if xgr_apply is not None:
                work2 = base.clone()
                try:
                    med, p90 = _time(partial(xgr_apply, work2, bits_dev), sync, opts.apply_reps)
                    row["xgrammar_us"], row["xgrammar_p90_us"] = round(med, 1), round(p90, 1)
                    row["same_result"] = bool(torch.equal(torch.isinf(work2), torch.isinf(expected)))
                except Exception as exc:  # noqa: BLE001 - e.g. no kernel for this device in this build
                    row["xgrammar_error"] = repr(exc)[:200]
            print(row)
            rows.append(row)
    if xgr_version:
        for row in rows:
            row["xgrammar_version"] = xgr_version
    return rows


def device_info() -> dict[str, Any]:
    """Where the numbers were measured."""
    info: dict[str, Any] = {"python": platform.python_version(), "machine": platform.machine(),
                            "cpu_count": os.cpu_count()}
    try:
        import torch

        info["torch"] = torch.__version__
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
            info["cuda"] = torch.version.cuda
    except ImportError:
        pass
    try:
        import cupy

        info["cupy"] = cupy.__version__
    except ImportError:
        pass
    return info


def _table(rows: list[dict[str, Any]], keys: list[str]) -> str:
    """A plain text table of ``keys`` columns."""
    lines = [" | ".join(keys)]
    for row in rows:
        if "skipped" in row:
            lines.append(f"{row.get('backend')}:{row.get('device')} skipped: {row['skipped'][:80]}")
            continue
        lines.append(" | ".join(str(row.get(k, "-")) for k in keys))
    return "\n".join(lines)


def main(opts: argparse.Namespace) -> None:
    info = device_info()
    print("device:", info)
    decode = bench_decode(opts, {})
    apply = bench_apply(opts)
    print("\n== decode tokens/s (greedy; constrained = JSON-records regex) ==")
    print(_table(decode, ["backend", "device", "batch", "unconstrained_tok_s", "constrained_tok_s",
                          "overhead_pct", "mask_fill_ms_per_step"]))
    print("\n== bitmask apply per step, float32[batch, 49152], microseconds (median) ==")
    print(_table(apply, ["device", "batch", "ours_torch_us", "ours_numpy_us", "xgrammar_us", "same_result"]))
    out = Path(opts.out) if opts.out else ROOT / "bench" / "results" / "bench_gpu.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"device": info, "threads": opts.threads, "decode": decode,
                               "bitmask_apply": apply}, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main(_opts)
