"""llama / qwen2 / gemma3 code paths on tiny random-weight GGUFs vs an independent reference."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine import load_model
from tests.engine.tiny_models import TinySpec, reference_logits, write_tiny_gguf

SPECS = {
    "llama": TinySpec(arch="llama", seed=1),
    "qwen2": TinySpec(arch="qwen2", qkv_bias=True, tie=False, rope_theta=1e6, seed=2),
    "gemma3": TinySpec(
        arch="gemma3", n_layers=6, n_heads=4, n_kv_heads=1, head_dim=16, rope_theta=1e6,
        sliding_window=4, seed=3,
    ),
}
IDS = [5, 17, 260, 99, 3, 42, 42, 7, 200, 11, 64, 1]


@pytest.fixture(scope="module", params=sorted(SPECS))
def tiny(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[TinySpec, Path]:
    spec = SPECS[request.param]
    path = tmp_path_factory.mktemp("tiny") / f"{spec.arch}.gguf"
    write_tiny_gguf(path, spec)
    return spec, path


def test_config_read_from_metadata(tiny: tuple[TinySpec, Path]) -> None:
    spec, path = tiny
    cfg = load_model(path).config
    assert (cfg.arch, cfg.n_layers, cfg.d_model, cfg.n_heads, cfg.n_kv_heads, cfg.head_dim, cfg.d_ff) == (
        spec.arch, spec.n_layers, spec.d_model, spec.n_heads, spec.n_kv_heads, spec.head_dim, spec.d_ff,
    )
    assert cfg.tie_embeddings == spec.tie
    if spec.arch == "gemma3":
        assert [cfg.is_sliding(i) for i in range(6)] == [True] * 5 + [False]


def test_logits_match_reference(tiny: tuple[TinySpec, Path]) -> None:
    """Every prefix's next-token logits equal the float64 formula reference."""
    spec, path = tiny
    model = load_model(path)
    ref = reference_logits(spec, IDS)
    for t in range(1, len(IDS) + 1):
        ours = model.logits(IDS[:t])
        np.testing.assert_allclose(ours, ref[t - 1], atol=2e-4 * max(1.0, np.abs(ref[t - 1]).max()), rtol=0)


def test_incremental_batch_matches_reference(tiny: tuple[TinySpec, Path]) -> None:
    """A batch of different-length rows decoded token by token (beyond the sliding window)."""
    spec, path = tiny
    model = load_model(path)
    ref_full = reference_logits(spec, IDS)
    ref_short = reference_logits(spec, IDS[3:])
    session = model.start([IDS[:2], IDS[3:5]], max_new_tokens=2, prefill_chunk=1)
    for t in range(2, 9):
        logits = session.step([[IDS[t]], [IDS[t + 3]]])
        np.testing.assert_allclose(logits[0], ref_full[t], atol=1e-3, rtol=0)
        np.testing.assert_allclose(logits[1], ref_short[t], atol=1e-3, rtol=0)
    assert session.cache.capacity >= 10  # grew past the preallocated 4 positions
